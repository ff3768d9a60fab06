package rgemma

import (
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/require"
)

// splitTestModel returns the reference checkpoint and a BatchExec of its
// logits, or skips the test on a backend with one device.
func splitTestModel(t *testing.T) (*Model, *BatchExec) {
	m, _ := loadTiny(t)
	if m.Backend.NumDevices() < 2 {
		t.Skipf("backend %s has one device; set GOMLX_BACKEND=xla (2 devices by default)", m.Backend.Name())
	}
	e, err := NewBatchExec(m, func(ctx *context.Context, ids, positions *Node) *Node {
		return Forward(ctx, m.Config, ids, positions).Logits
	})
	require.NoError(t, err)
	return m, e
}

// TestBatchExecSplitMatchesWhole runs one batch split over the devices and
// whole on the first device, and expects the same logits. It then changes a
// weight and expects both ways to see the new value, so the copies of the
// weights on the other devices must not go stale.
func TestBatchExecSplitMatchesWhole(t *testing.T) {
	m, e := splitTestModel(t)
	devices := m.Backend.NumDevices()
	in := randomInputs(2*devices, 40, m.Config.VocabSize)
	require.True(t, e.Splits(2*devices))
	require.Equal(t, devices, e.Devices(2*devices))
	require.Empty(t, e.WholeReason(2*devices))
	compare := func(stage string) []float32 {
		ids, positions := in.Tensors()
		split, err := e.Exec(ids, positions)
		require.NoError(t, err)
		whole, err := e.single.Exec(ids, positions)
		require.NoError(t, err)
		requireClose(t, stage, flat(t, whole[0]), flat(t, split[0]), 1e-6, 0)
		return flat(t, split[0])
	}
	before := compare("before the change")

	const name = "model.final_norm.weight"
	w, err := m.Param(name)
	require.NoError(t, err)
	for i := range w {
		w[i] += 0.5
	}
	require.NoError(t, m.SetParam(name, w))
	after := compare("after the change")
	require.NotEqual(t, before, after, "changing %s must change the logits", name)
}

// TestBatchExecUnevenBatch checks that a batch that does not divide by the
// device count runs whole, with the rows' own logits.
func TestBatchExecUnevenBatch(t *testing.T) {
	m, e := splitTestModel(t)
	devices := m.Backend.NumDevices()
	in := randomInputs(devices+1, 24, m.Config.VocabSize)
	require.False(t, e.Splits(devices+1))
	require.Equal(t, 1, e.Devices(devices+1))
	require.Contains(t, e.WholeReason(devices+1), "do not divide")
	ids, positions := in.Tensors()
	got, err := e.Exec(ids, positions)
	require.NoError(t, err)
	all := flat(t, got[0])
	rowSize := len(all) / len(in.IDs)
	for b := range in.IDs {
		var want []float32
		for _, row := range logitsRow(t, m, in.IDs[b], in.Positions[b]) {
			want = append(want, row...)
		}
		requireClose(t, "row", want, all[b*rowSize:(b+1)*rowSize], 1e-5, 0)
	}
}

// TestBatchExecLargeModelStaysWhole checks that a model above
// MaxReplicatedWeightBytes never splits its batch.
func TestBatchExecLargeModelStaysWhole(t *testing.T) {
	m, _ := splitTestModel(t)
	old := MaxReplicatedWeightBytes
	MaxReplicatedWeightBytes = m.weightBytes() - 1
	t.Cleanup(func() { MaxReplicatedWeightBytes = old })
	e, err := NewBatchExec(m, func(ctx *context.Context, ids, positions *Node) *Node {
		return Forward(ctx, m.Config, ids, positions).Logits
	})
	require.NoError(t, err)
	require.False(t, e.Splits(2*m.Backend.NumDevices()))
	require.Contains(t, e.WholeReason(2*m.Backend.NumDevices()), "MaxReplicatedWeightBytes")
}
