package rgemma

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// feedAll feeds rows in chunks: chunks[i] tokens per row at step i (the same
// for every row), and returns the logits of every token per row.
func feedAll(t *testing.T, d *Decoder, rows [][]int32, chunks []int) [][][]float32 {
	out := make([][][]float32, len(rows))
	start := 0
	for _, n := range chunks {
		part := make([][]int32, len(rows))
		for b, row := range rows {
			part[b] = row[start:min(start+n, len(row))]
		}
		logits, err := d.Feed(part)
		require.NoError(t, err)
		for b := range rows {
			out[b] = append(out[b], logits[b]...)
		}
		start += n
	}
	return out
}

func flatten(rows [][]float32) []float32 {
	var out []float32
	for _, r := range rows {
		out = append(out, r...)
	}
	return out
}

func TestParityDecode(t *testing.T) {
	m, g := loadTiny(t)
	in := goldenInputs(t, g, "decode_input_ids", "decode_position_ids")
	d, err := m.NewDecoder(len(in.IDs))
	require.NoError(t, err)
	promptLen := 5
	chunks := []int{promptLen}
	for range len(in.IDs[0]) - promptLen {
		chunks = append(chunks, 1)
	}
	got := feedAll(t, d, in.IDs, chunks)

	want, _, err := g.Float32("decode_logits")
	require.NoError(t, err)
	requireClose(t, "decode_logits", want, append(flatten(got[0]), flatten(got[1])...), 1e-4, 0)

	full, _, err := g.Float32("decode_full_logits")
	require.NoError(t, err)
	requireClose(t, "decode vs decode_full_logits", full, append(flatten(got[0]), flatten(got[1])...), 1e-4, 0)
}

func TestDecodeChunkingInvariance(t *testing.T) {
	// One pass, token by token and arbitrary chunkings give the forward
	// logits, for prompts shorter than, equal to and several times longer
	// than the window (W = 8).
	m, _ := loadTiny(t)
	W := m.Config.AttentionWindow
	rng := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{3, W, W + 1, 4*W + 3} {
		ids := randomIDs(rng, n, m.Config.VocabSize)
		want := flatten(logitsRow(t, m, ids, positionsFrom(n)))

		chunkings := map[string][]int{"one pass": {n}, "token by token": nil, "random": nil}
		for range n {
			chunkings["token by token"] = append(chunkings["token by token"], 1)
		}
		for left := n; left > 0; {
			c := min(left, 1+rng.IntN(W+3))
			chunkings["random"] = append(chunkings["random"], c)
			left -= c
		}
		for name, chunks := range chunkings {
			d, err := m.NewDecoder(1)
			require.NoError(t, err)
			got := feedAll(t, d, [][]int32{ids}, chunks)
			requireClose(t, name, want, flatten(got[0]), 1e-4, 0)
		}
	}
}

func TestDecodeBatchRowEqualsAlone(t *testing.T) {
	// Prompts of different lengths in one batch: each row must match the
	// prompt run alone, whatever padding the batch needs. A non-zero pad
	// embedding makes leaked padding visible.
	m, _ := loadTiny(t)
	padRow := make([]float32, m.Config.HiddenSize)
	for i := range padRow {
		padRow[i] = 3
	}
	emb, err := m.Param("model.embed_tokens.weight")
	require.NoError(t, err)
	copy(emb[m.Config.PadTokenID*m.Config.HiddenSize:], padRow)
	require.NoError(t, m.SetParam("model.embed_tokens.weight", emb))

	rng := rand.New(rand.NewPCG(13, 14))
	lengths := []int{2, 19, 7}
	var prompts [][]int32
	for _, n := range lengths {
		prompts = append(prompts, randomIDs(rng, n, m.Config.VocabSize))
	}
	continuation := randomIDs(rng, 12, m.Config.VocabSize)

	batch, err := m.NewDecoder(len(prompts))
	require.NoError(t, err)
	promptLogits, err := batch.Feed(prompts)
	require.NoError(t, err)
	var steps [][][][]float32
	for _, id := range continuation {
		step, err := batch.Feed([][]int32{{id}, {id}, {id}})
		require.NoError(t, err)
		steps = append(steps, step)
	}

	for b, prompt := range prompts {
		alone, err := m.NewDecoder(1)
		require.NoError(t, err)
		want, err := alone.Feed([][]int32{prompt})
		require.NoError(t, err)
		requireClose(t, "prompt logits", flatten(want[0]), flatten(promptLogits[b]), 1e-4, 0)
		for i, id := range continuation {
			w, err := alone.Feed([][]int32{{id}})
			require.NoError(t, err)
			requireClose(t, "continuation logits", w[0][0], steps[i][b][0], 1e-4, 0)
		}
	}
}

func TestDecodeCompilesOncePerBatchSize(t *testing.T) {
	m, _ := loadTiny(t)
	d, err := m.NewDecoder(2)
	require.NoError(t, err)
	_, err = d.Feed([][]int32{{5, 6, 7}, {8}})
	require.NoError(t, err)
	before := stepCompilations.Load()
	for i := range 20 {
		_, err := d.Feed([][]int32{{int32(10 + i)}, {int32(20 + i)}})
		require.NoError(t, err)
	}
	require.Equal(t, int64(1), stepCompilations.Load()-before, "20 one-token steps at batch 2 must compile once")

	// Another batch size compiles once more; going back reuses the first graph.
	d3, err := m.NewDecoder(3)
	require.NoError(t, err)
	for range 5 {
		_, err := d3.Feed([][]int32{{1}, {2}, {3}})
		require.NoError(t, err)
	}
	_, err = d.Feed([][]int32{{4}, {5}})
	require.NoError(t, err)
	require.Equal(t, int64(2), stepCompilations.Load()-before)
}

func TestDecodeLongRunStaysFinite(t *testing.T) {
	m, _ := loadTiny(t)
	d, err := m.NewDecoder(1)
	require.NoError(t, err)
	rng := rand.New(rand.NewPCG(15, 16))
	for i := range 300 {
		logits, err := d.Feed([][]int32{{int32(3 + rng.IntN(250))}})
		require.NoError(t, err)
		for _, v := range logits[0][0] {
			require.False(t, math.IsNaN(float64(v)) || math.IsInf(float64(v), 0), "step %d", i)
		}
	}
}

func TestDecoderStartDocumentResets(t *testing.T) {
	// A new document in a row gives the logits of a fresh decoder.
	m, _ := loadTiny(t)
	rng := rand.New(rand.NewPCG(17, 18))
	first, second := randomIDs(rng, 11, 256), randomIDs(rng, 6, 256)
	d, err := m.NewDecoder(1)
	require.NoError(t, err)
	_, err = d.Feed([][]int32{first})
	require.NoError(t, err)
	d.StartDocument(0)
	got, err := d.Feed([][]int32{second})
	require.NoError(t, err)
	fresh, err := m.NewDecoder(1)
	require.NoError(t, err)
	want, err := fresh.Feed([][]int32{second})
	require.NoError(t, err)
	requireClose(t, "after StartDocument", flatten(want[0]), flatten(got[0]), 1e-5, 0)
}
