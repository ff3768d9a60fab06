package rgemma

import (
	"math"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/rgemma-toolkit/rgemma/internal/golden"
)

var (
	testBackendOnce sync.Once
	testBackend     backends.Backend
	testBackendErr  error
)

// backendForTest returns one shared backend chosen like NewBackend("") does:
// $GOMLX_BACKEND, else XLA when a plugin is installed, else SimpleGo.
func backendForTest(t testing.TB) backends.Backend {
	testBackendOnce.Do(func() { testBackend, testBackendErr = NewBackend("") })
	require.NoError(t, testBackendErr)
	return testBackend
}

// loadTiny loads the reference checkpoint and its golden data.
func loadTiny(t testing.TB) (*Model, *golden.Data) {
	m, err := LoadModel(backendForTest(t), golden.TinyDir())
	require.NoError(t, err)
	g, err := golden.Open(golden.TinyDir())
	require.NoError(t, err)
	t.Cleanup(func() { g.Close() })
	return m, g
}

// goldenInputs returns the [B,T] ids and positions stored under the two names.
func goldenInputs(t testing.TB, g *golden.Data, idsName, posName string) Inputs {
	ids, shape, err := g.Int32(idsName)
	require.NoError(t, err)
	pos, posShape, err := g.Int32(posName)
	require.NoError(t, err)
	require.Equal(t, shape, posShape)
	return Inputs{IDs: golden.Rows(ids, shape), Positions: golden.Rows(pos, posShape)}
}

// flat copies a float32 tensor.
func flat(t testing.TB, x *tensors.Tensor) []float32 {
	values, err := tensors.CopyFlatData[float32](x)
	require.NoError(t, err)
	return values
}

// requireClose fails when any |got-want| > atol + rtol·max|want|, naming the
// worst element.
func requireClose(t testing.TB, name string, want, got []float32, atol, rtol float64) {
	t.Helper()
	require.Equal(t, len(want), len(got), "%s: length", name)
	maxRef := 0.0
	for _, w := range want {
		maxRef = math.Max(maxRef, math.Abs(float64(w)))
	}
	tol := atol + rtol*maxRef
	worst, worstIdx := 0.0, -1
	for i := range want {
		d := math.Abs(float64(want[i]) - float64(got[i]))
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > worst {
			worst, worstIdx = d, i
		}
	}
	if worst > tol {
		t.Fatalf("%s: max |diff| %.3g at flat index %d (want %g, got %g) exceeds tolerance %.3g",
			name, worst, worstIdx, want[worstIdx], got[worstIdx], tol)
	}
}
