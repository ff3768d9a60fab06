package rgemma

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/stretchr/testify/require"
)

// randomSmallModel returns the `small` preset with random weights.
func randomSmallModel(b *testing.B) *Model {
	cfg, err := Preset("small")
	require.NoError(b, err)
	m, err := NewModel(backendForTest(b), cfg)
	require.NoError(b, err)
	require.NoError(b, m.InitRandom(1))
	return m
}

func randomInputs(batch, T, vocab int) Inputs {
	rng := rand.New(rand.NewPCG(1, 1))
	ids := make([][]int32, batch)
	for b := range ids {
		ids[b] = randomIDs(rng, T, vocab)
	}
	return Inputs{IDs: ids, Positions: SequentialPositions(ids)}
}

// BenchmarkForwardSmall measures the forward pass of the small preset at
// batch 4 × 512 tokens; tokens/s is reported as a metric.
func BenchmarkForwardSmall(b *testing.B) {
	m := randomSmallModel(b)
	in := randomInputs(4, 512, m.Config.VocabSize)
	_, err := m.Forward(in) // Compile outside the timing.
	require.NoError(b, err)
	b.ResetTimer()
	for range b.N {
		_, err := m.Forward(in)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(4*512*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkLossGradientSmall measures loss plus gradients of the small
// preset at batch 4 × 256 (the work of one training step without the
// optimizer update).
func BenchmarkLossGradientSmall(b *testing.B) {
	m := randomSmallModel(b)
	in := randomInputs(4, 256, m.Config.VocabSize)
	exec, err := context.NewExec(m.Backend, m.Context.Reuse(), func(ctx *context.Context, ids, positions *Node) []*Node {
		out := Forward(ctx, m.Config, ids, positions)
		loss, _ := NextTokenLoss(out.Logits, ids, positions, nil)
		return append([]*Node{loss}, ctx.BuildTrainableVariablesGradientsGraph(loss)...)
	})
	require.NoError(b, err)
	ids, positions := in.Tensors()
	_, err = exec.Exec(ids, positions)
	require.NoError(b, err)
	b.ResetTimer()
	for range b.N {
		_, err := exec.Exec(ids, positions)
		require.NoError(b, err)
	}
	b.ReportMetric(float64(4*256*b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkDecodeSmall measures single-token decoding of the small preset at
// batch 1.
func BenchmarkDecodeSmall(b *testing.B) {
	m := randomSmallModel(b)
	d, err := m.NewDecoder(1)
	require.NoError(b, err)
	_, err = d.Feed([][]int32{{5, 6, 7}})
	require.NoError(b, err)
	_, err = d.Feed([][]int32{{8}}) // Compile the one-token step outside the timing.
	require.NoError(b, err)
	b.ResetTimer()
	for i := range b.N {
		_, err := d.Feed([][]int32{{int32(3 + i%200)}})
		require.NoError(b, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
