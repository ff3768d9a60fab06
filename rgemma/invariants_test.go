package rgemma

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/require"
)

// randomIDs returns n ids in [3, vocab).
func randomIDs(rng *rand.Rand, n, vocab int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(3 + rng.IntN(vocab-3))
	}
	return out
}

func positionsFrom(n int) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = int32(i)
	}
	return out
}

// logitsRow runs one row and returns its logits [T][V].
func logitsRow(t *testing.T, m *Model, ids, positions []int32) [][]float32 {
	res, err := m.Forward(Inputs{IDs: [][]int32{ids}, Positions: [][]int32{positions}})
	require.NoError(t, err)
	values := flat(t, res.Logits)
	V := m.Config.VocabSize
	out := make([][]float32, len(ids))
	for i := range out {
		out[i] = values[i*V : (i+1)*V]
	}
	return out
}

func TestPackedRowEqualsDocumentsAlone(t *testing.T) {
	m, _ := loadTiny(t)
	rng := rand.New(rand.NewPCG(1, 2))
	// Both documents are longer than the window (W = 8), so the window and the
	// document mask both matter.
	docA := randomIDs(rng, 13, m.Config.VocabSize)
	docB := randomIDs(rng, 11, m.Config.VocabSize)
	packedIDs := append(append([]int32{}, docA...), docB...)
	packedPos := append(positionsFrom(len(docA)), positionsFrom(len(docB))...)

	packed := logitsRow(t, m, packedIDs, packedPos)
	aloneA := logitsRow(t, m, docA, positionsFrom(len(docA)))
	aloneB := logitsRow(t, m, docB, positionsFrom(len(docB)))
	for i := range docA {
		requireClose(t, "document A", aloneA[i], packed[i], 1e-5, 0)
	}
	for i := range docB {
		requireClose(t, "document B", aloneB[i], packed[len(docA)+i], 1e-5, 0)
	}
}

func TestBatchRowEqualsSingleRow(t *testing.T) {
	m, g := loadTiny(t)
	in := goldenInputs(t, g, "input_ids", "position_ids")
	batch, err := m.Forward(in)
	require.NoError(t, err)
	all := flat(t, batch.Logits)
	rowSize := len(all) / len(in.IDs)
	for b := range in.IDs {
		single := logitsRow(t, m, in.IDs[b], in.Positions[b])
		var got []float32
		for _, row := range single {
			got = append(got, row...)
		}
		requireClose(t, "row", all[b*rowSize:(b+1)*rowSize], got, 1e-5, 0)
	}
}

func TestWindowLimitsAttention(t *testing.T) {
	// Changing a token more than W+1 positions back, across attention layers
	// only, must not change the output. A model of attention layers alone
	// isolates the window from the recurrence.
	m, _ := loadTiny(t)
	cfg := m.Config.Clone()
	cfg.BlockTypes = []BlockType{Attention}
	cfg.NumHiddenLayers = 1
	att, err := NewModel(m.Backend, cfg)
	require.NoError(t, err)
	copyLayerParams(t, m, att, 2, 0)

	rng := rand.New(rand.NewPCG(3, 4))
	ids := randomIDs(rng, 20, cfg.VocabSize)
	changed := append([]int32{}, ids...)
	changed[2] = (ids[2]+1)%int32(cfg.VocabSize-3) + 3
	pos := positionsFrom(len(ids))
	base := logitsRow(t, att, ids, pos)
	other := logitsRow(t, att, changed, pos)

	W := cfg.AttentionWindow
	for i := range ids {
		if i >= 2 && i <= 2+W {
			require.NotEqual(t, base[i], other[i], "token %d sees index 2 (t-s=%d ≤ W)", i, i-2)
		} else {
			require.Equal(t, base[i], other[i], "token %d must not see index 2", i)
		}
	}
}

// copyLayerParams copies the parameters of layer `from` in src to layer `to`
// in dst, plus the embedding and final norm.
func copyLayerParams(t *testing.T, src, dst *Model, from, to int) {
	for _, spec := range dst.Config.Params() {
		name := spec.Name
		if spec.Layer == to {
			name = LayerPrefix(from) + spec.Name[len(LayerPrefix(to)):]
		}
		values, err := src.Param(name)
		require.NoError(t, err, name)
		require.NoError(t, dst.SetParam(spec.Name, values))
	}
}

func TestGroupedQueryAttentionDuplicatedHeads(t *testing.T) {
	// KV = H with every key/value head a copy of the single head of KV = 1
	// must give the same logits.
	m, g := loadTiny(t)
	cfg := m.Config.Clone()
	cfg.NumKeyValueHeads = cfg.NumAttentionHeads
	gqa, err := NewModel(m.Backend, cfg)
	require.NoError(t, err)
	for _, spec := range cfg.Params() {
		values, err := m.Param(spec.Name)
		require.NoError(t, err)
		if spec.Block == Attention && (hasSuffix(spec.Name, "k_proj.weight") || hasSuffix(spec.Name, "v_proj.weight")) {
			var dup []float32
			for range cfg.NumKeyValueHeads {
				dup = append(dup, values...) // [hd, D] repeated: head-major rows.
			}
			values = dup
		}
		require.NoError(t, gqa.SetParam(spec.Name, values))
	}

	in := goldenInputs(t, g, "input_ids", "position_ids")
	want, err := m.Forward(in)
	require.NoError(t, err)
	got, err := gqa.Forward(in)
	require.NoError(t, err)
	requireClose(t, "logits", flat(t, want.Logits), flat(t, got.Logits), 1e-5, 0)
}

func TestGroupedQueryAttentionGrouping(t *testing.T) {
	// With KV = 2 and H = 4, query heads 0,1 use key/value head 0 and heads
	// 2,3 use head 1. Zeroing value head 1 must zero the attention output of
	// query heads 2 and 3 only, which the o_proj columns of those heads
	// then cannot reach: setting those columns to zero changes nothing.
	m, g := loadTiny(t)
	cfg := m.Config.Clone()
	cfg.NumKeyValueHeads = 2
	hd, D := cfg.HeadDim(), cfg.HiddenSize
	build := func(zeroOProjHeads bool) *Model {
		gqa, err := NewModel(m.Backend, cfg)
		require.NoError(t, err)
		rng := rand.New(rand.NewPCG(5, 6))
		for _, spec := range cfg.Params() {
			values, err := m.Param(spec.Name)
			if err != nil || len(values) != int(spec.Size()) {
				values = make([]float32, spec.Size())
				for i := range values {
					values[i] = float32(rng.NormFloat64() * 0.1)
				}
			}
			if hasSuffix(spec.Name, "v_proj.weight") {
				clear(values[hd*D:]) // value head 1 = 0.
			}
			if zeroOProjHeads && hasSuffix(spec.Name, "o_proj.weight") {
				for row := 0; row < D; row++ { // [D, H*hd]: zero columns of heads 2,3.
					clear(values[row*4*hd+2*hd : row*4*hd+4*hd])
				}
			}
			require.NoError(t, gqa.SetParam(spec.Name, values))
		}
		return gqa
	}
	in := goldenInputs(t, g, "input_ids", "position_ids")
	a, err := build(false).Forward(in)
	require.NoError(t, err)
	b, err := build(true).Forward(in)
	require.NoError(t, err)
	requireClose(t, "logits", flat(t, a.Logits), flat(t, b.Logits), 1e-6, 0)
}

func hasSuffix(s, suffix string) bool {
	return len(s) >= len(suffix) && s[len(s)-len(suffix):] == suffix
}

func TestLinearScanMatchesSequential(t *testing.T) {
	backend := backendForTest(t)
	for _, T := range []int{1, 2, 3, 7, 13, 16, 17, 31, 64, 100, 257} {
		rng := rand.New(rand.NewPCG(uint64(T), 7))
		const B, L = 2, 5
		a := make([]float32, B*T*L)
		x := make([]float32, B*T*L)
		for i := range a {
			a[i] = rng.Float32()
			x[i] = float32(rng.NormFloat64())
		}
		// Resets in the middle: a = 0 at t = T/2 of row 0 and t = 1 of row 1.
		for l := 0; l < L; l++ {
			a[(0*T+T/2)*L+l] = 0
			if T > 1 {
				a[(1*T+1)*L+l] = 0
			}
		}
		at := tensors.FromFlatDataAndDimensions(a, B, T, L)
		xt := tensors.FromFlatDataAndDimensions(x, B, T, L)
		outs := MustExecOnceN(backend, func(a, x *Node) []*Node {
			return []*Node{linearScan(a, x), linearScanSequential(a, x)}
		}, at, xt)
		requireClose(t, fmt.Sprintf("scan T=%d", T), flat(t, outs[1]), flat(t, outs[0]), 1e-5, 1e-6)
	}
}

// TestLinearScanGradient checks the hand-written gradient of linearScan
// against loops on the host: for the loss Σ w·h, the adjoint of x is
// λ_t = w_t + a_{t+1}·λ_{t+1} and the adjoint of a is λ_t·h_{t-1}.
func TestLinearScanGradient(t *testing.T) {
	backend := backendForTest(t)
	for _, T := range []int{1, 5, 16, 37, 300} {
		rng := rand.New(rand.NewPCG(uint64(T), 9))
		const B, L = 2, 3
		n := B * T * L
		a, x, w := make([]float32, n), make([]float32, n), make([]float32, n)
		for i := range a {
			a[i] = rng.Float32()
			x[i] = float32(rng.NormFloat64())
			w[i] = float32(rng.NormFloat64())
		}
		a[(1*T+T/3)*L+1] = 0 // A reset in the middle of row 1.
		at := tensors.FromFlatDataAndDimensions(a, B, T, L)
		xt := tensors.FromFlatDataAndDimensions(x, B, T, L)
		wt := tensors.FromFlatDataAndDimensions(w, B, T, L)
		outs := MustExecOnceN(backend, func(a, x, w *Node) []*Node {
			h := linearScan(a, x)
			return append([]*Node{h}, Gradient(ReduceAllSum(Mul(h, w)), a, x)...)
		}, at, xt, wt)

		idx := func(b, t, l int) int { return (b*T+t)*L + l }
		h, lambda, da := make([]float64, n), make([]float64, n), make([]float64, n)
		for b := 0; b < B; b++ {
			for l := 0; l < L; l++ {
				prev := 0.0
				for t := 0; t < T; t++ {
					i := idx(b, t, l)
					h[i] = float64(a[i])*prev + float64(x[i])
					prev = h[i]
				}
				next := 0.0 // a_{t+1}·λ_{t+1}
				for t := T - 1; t >= 0; t-- {
					i := idx(b, t, l)
					lambda[i] = float64(w[i]) + next
					next = float64(a[i]) * lambda[i]
					if t > 0 {
						da[i] = lambda[i] * h[idx(b, t-1, l)]
					}
				}
			}
		}
		toF32 := func(v []float64) []float32 {
			out := make([]float32, len(v))
			for i := range v {
				out[i] = float32(v[i])
			}
			return out
		}
		name := fmt.Sprintf("T=%d", T)
		requireClose(t, name+" h", toF32(h), flat(t, outs[0]), 1e-5, 1e-5)
		requireClose(t, name+" d/da", toF32(da), flat(t, outs[1]), 1e-5, 1e-5)
		requireClose(t, name+" d/dx", toF32(lambda), flat(t, outs[2]), 1e-5, 1e-5)
	}
}

func TestClippedSqrtGradientAtZero(t *testing.T) {
	// d sqrt(v)/dv is clipped to 1/sqrt(max(4v, 1e-6)): 1000 at v = 0 and
	// the usual 1/(2 sqrt v) where 4v ≥ 1e-6.
	backend := backendForTest(t)
	v := tensors.FromValue([]float32{0, 1e-8, 0.25, 1})
	outs := MustExecOnceN(backend, func(v *Node) []*Node {
		y := sqrtClippedGradient(v)
		return []*Node{y, Gradient(ReduceAllSum(y), v)[0]}
	}, v)
	require.InDeltaSlice(t, []float32{0, 1e-4, 0.5, 1}, flat(t, outs[0]), 1e-7)
	require.InDeltaSlice(t, []float32{1000, 1000, 1, 0.5}, flat(t, outs[1]), 1e-3)
}

func TestInitRandomStatistics(t *testing.T) {
	cfg, err := Preset("small")
	require.NoError(t, err)
	m, err := NewModel(backendForTest(t), cfg)
	require.NoError(t, err)
	require.NoError(t, m.InitRandom(42))

	for _, spec := range cfg.Params() {
		values, err := m.Param(spec.Name)
		require.NoError(t, err)
		var sum, sumSq float64
		for _, v := range values {
			sum += float64(v)
			sumSq += float64(v) * float64(v)
		}
		n := float64(len(values))
		std := math.Sqrt(sumSq/n - (sum/n)*(sum/n))
		switch spec.Init {
		case InitZeros:
			require.Zero(t, sumSq, spec.Name)
		case InitNormal:
			require.InDelta(t, spec.Std, std, 0.1*spec.Std+3*spec.Std/math.Sqrt(n), spec.Name)
		case InitRecurrentParam:
			for _, v := range values {
				softplus := math.Log1p(math.Exp(float64(v)))
				u := math.Exp(-2 * softplus)
				require.True(t, u >= 0.81-1e-5 && u <= 0.998001+1e-5, "%s: u=%g", spec.Name, u)
			}
		}
	}

	// The same seed gives the same weights.
	again, err := NewModel(m.Backend, cfg)
	require.NoError(t, err)
	require.NoError(t, again.InitRandom(42))
	a, _ := m.Param("model.layers.1.temporal_block.linear_x.weight")
	b, _ := again.Param("model.layers.1.temporal_block.linear_x.weight")
	require.Equal(t, a, b)
}
