package rgemma

import (
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/require"
)

// lossAndGradients runs NextTokenLoss and the gradient of every parameter.
func lossAndGradients(t *testing.T, m *Model, in Inputs) (loss float32, grads map[string][]float32) {
	var names []string
	exec, err := context.NewExec(m.Backend, m.Context.Reuse(), func(ctx *context.Context, ids, positions *Node) []*Node {
		out := Forward(ctx, m.Config, ids, positions)
		loss, _ := NextTokenLoss(out.Logits, ids, positions, nil)
		var params []*Node
		names = names[:0]
		for _, spec := range m.Config.Params() {
			scope, name := spec.ScopeAndName()
			params = append(params, ctx.GetVariableByScopeAndName(scope, name).ValueGraph(loss.Graph()))
			names = append(names, spec.Name)
		}
		return append([]*Node{loss}, Gradient(loss, params...)...)
	})
	require.NoError(t, err)
	ids, positions := in.Tensors()
	outputs, err := exec.Exec(ids, positions)
	require.NoError(t, err)

	grads = map[string][]float32{}
	for i, name := range names {
		grads[name] = flat(t, outputs[i+1])
	}
	return flat(t, outputs[0])[0], grads
}

func TestParityLossAndGradients(t *testing.T) {
	m, g := loadTiny(t)
	in := goldenInputs(t, g, "input_ids", "position_ids")
	loss, grads := lossAndGradients(t, m, in)

	wantLoss, _, err := g.Float32("loss")
	require.NoError(t, err)
	require.InDelta(t, wantLoss[0], loss, 1e-5, "loss")

	for _, spec := range m.Config.Params() {
		want, shape, err := g.Float32("grad." + spec.Name)
		require.NoError(t, err)
		require.Equal(t, spec.Shape, shape, spec.Name)
		requireClose(t, "grad."+spec.Name, want, grads[spec.Name], 1e-5, 1e-3)
	}
}

func TestParityRGLRUDecay(t *testing.T) {
	m, g := loadTiny(t)
	in := goldenInputs(t, g, "input_ids", "position_ids")
	// The logits are returned too: SimpleGo (GoMLX v0.26.0) fails with an index
	// out of range when a graph computes nodes that reach no output.
	exec, err := context.NewExec(m.Backend, m.Context.Reuse(), func(ctx *context.Context, ids, positions *Node) (*Node, *Node) {
		out := Forward(ctx, m.Config, ids, positions)
		return out.Decays[0], out.Logits
	})
	require.NoError(t, err)
	ids, positions := in.Tensors()
	out, err := exec.Exec(ids, positions)
	require.NoError(t, err)
	want, _, err := g.Float32("layer0_rglru_decay")
	require.NoError(t, err)
	requireClose(t, "layer0_rglru_decay", want, flat(t, out[0]), 1e-5, 0)
}
