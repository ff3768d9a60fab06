package rgemma

import (
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParityGreedy(t *testing.T) {
	m, g := loadTiny(t)
	prompt, _, err := g.Int32("greedy_prompt_ids")
	require.NoError(t, err)
	want, _, err := g.Int32("greedy_ids")
	require.NoError(t, err)
	margins, _, err := g.Float32("greedy_margins")
	require.NoError(t, err)
	for i, gap := range margins {
		require.Greater(t, gap, float32(1e-3), "step %d: the reference top-2 gap is too small for a stable comparison", i)
	}
	res, err := m.Generate([][]int32{prompt}, GenerateOptions{MaxNewTokens: len(want), EOSID: -1})
	require.NoError(t, err)
	require.Equal(t, want, res.IDs[0])
	require.Equal(t, StopMaxTokens, res.StopReasons[0])
}

func TestParityScore(t *testing.T) {
	m, g := loadTiny(t)
	ids, _, err := g.Int32("score_ids")
	require.NoError(t, err)
	want, _, err := g.Float32("score_logprobs")
	require.NoError(t, err)
	res, err := m.Score(ids)
	require.NoError(t, err)
	got := make([]float32, len(res.LogProbs))
	var sum float64
	for i, v := range res.LogProbs {
		got[i] = float32(v)
		sum += v
	}
	requireClose(t, "score_logprobs", want, got, 1e-4, 0)
	require.InDelta(t, math.Exp(-sum/float64(len(got))), res.Perplexity, 1e-9)
}

func TestSamplerRepeatableAndRestricted(t *testing.T) {
	logits := []float32{0, 3, 2.5, 1, -1, 2.9}
	draw := func(opts SamplingOptions, n int) []int32 {
		s := NewSampler(opts, 0)
		out := make([]int32, n)
		for i := range out {
			out[i] = s.Sample(logits)
		}
		return out
	}
	opts := SamplingOptions{Temperature: 1, Seed: 7}
	require.Equal(t, draw(opts, 50), draw(opts, 50), "same seed, same tokens")
	require.NotEqual(t, draw(opts, 50), draw(SamplingOptions{Temperature: 1, Seed: 8}, 50))

	require.Equal(t, []int32{1, 1, 1}, draw(SamplingOptions{}, 3), "temperature 0 is greedy")
	for _, id := range draw(SamplingOptions{Temperature: 5, TopK: 2, Seed: 1}, 200) {
		require.Contains(t, []int32{1, 5}, id, "top-k 2 keeps ids 1 and 5")
	}
	// softmax: p(1) ≈ 0.37, p(5) ≈ 0.33, p(2) ≈ 0.22: top-p 0.6 keeps {1, 5}.
	seen := map[int32]bool{}
	for _, id := range draw(SamplingOptions{Temperature: 1, TopP: 0.6, Seed: 2}, 300) {
		seen[id] = true
	}
	require.Equal(t, map[int32]bool{1: true, 5: true}, seen)

	// The empirical frequency follows the softmax at temperature 1.
	counts := map[int32]int{}
	const n = 20000
	for _, id := range draw(SamplingOptions{Temperature: 1, Seed: 3}, n) {
		counts[id]++
	}
	var z float64
	for _, l := range logits {
		z += math.Exp(float64(l))
	}
	for id, l := range logits {
		p := math.Exp(float64(l)) / z
		require.InDelta(t, p, float64(counts[int32(id)])/n, 0.02, "id %d", id)
	}
}

func TestSamplingOptionsValidate(t *testing.T) {
	for _, bad := range []SamplingOptions{{Temperature: -1}, {TopK: -2}, {TopP: 1.5}} {
		require.Error(t, bad.Validate(), fmt.Sprint(bad))
	}
}

func TestGenerateStops(t *testing.T) {
	m, _ := loadTiny(t)
	prompt := []int32{200, 41, 172}
	greedy, err := m.Generate([][]int32{prompt}, GenerateOptions{MaxNewTokens: 6, EOSID: -1})
	require.NoError(t, err)
	first := greedy.IDs[0][0]

	// The greedy first token used as EOS ends the row at once.
	res, err := m.Generate([][]int32{prompt}, GenerateOptions{MaxNewTokens: 6, EOSID: int(first)})
	require.NoError(t, err)
	require.Empty(t, res.IDs[0])
	require.Equal(t, StopEOS, res.StopReasons[0])

	// A stop string made of the second token's text.
	decode := func(ids []int32) string {
		s := ""
		for _, id := range ids {
			s += fmt.Sprintf("<%d>", id)
		}
		return s
	}
	stop := fmt.Sprintf("<%d>", greedy.IDs[0][1])
	res, err = m.Generate([][]int32{prompt}, GenerateOptions{MaxNewTokens: 6, EOSID: -1, StopStrings: []string{stop}, Decode: decode})
	require.NoError(t, err)
	require.Equal(t, StopString, res.StopReasons[0])
	full := decode(greedy.IDs[0][:2])
	require.Equal(t, full[:strings.Index(full, stop)], res.Texts[0])
	require.LessOrEqual(t, len(res.IDs[0]), 2)

	// The streaming callback receives every token in order.
	var streamed []int32
	_, err = m.Generate([][]int32{prompt}, GenerateOptions{MaxNewTokens: 6, EOSID: -1, OnToken: func(_ int, id int32) { streamed = append(streamed, id) }})
	require.NoError(t, err)
	require.Equal(t, greedy.IDs[0], streamed)
}

func TestGenerateBatchMatchesAlone(t *testing.T) {
	m, _ := loadTiny(t)
	prompts := [][]int32{{200, 41}, {5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, {99}}
	opts := GenerateOptions{MaxNewTokens: 10, EOSID: -1}
	batch, err := m.Generate(prompts, opts)
	require.NoError(t, err)
	for b, p := range prompts {
		alone, err := m.Generate([][]int32{p}, opts)
		require.NoError(t, err)
		require.Equal(t, alone.IDs[0], batch.IDs[b], "row %d", b)
	}
}

func TestGenerateRejectsBadInput(t *testing.T) {
	m, _ := loadTiny(t)
	_, err := m.Generate([][]int32{{}}, GenerateOptions{MaxNewTokens: 3})
	require.ErrorContains(t, err, "prompt 0 is empty")
	_, err = m.Generate([][]int32{{1, 999}}, GenerateOptions{MaxNewTokens: 3})
	require.ErrorContains(t, err, "token id 999")
	_, err = m.Generate([][]int32{{1}}, GenerateOptions{MaxNewTokens: 0})
	require.ErrorContains(t, err, "max new tokens")
	_, err = m.Score([]int32{5})
	require.ErrorContains(t, err, "at least 2 tokens")
}
