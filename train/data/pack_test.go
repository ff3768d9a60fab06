package data

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// makeDocs returns documents with the given lengths whose tokens are unique
// across all documents: token k of document i is 1000*(i+1)+k.
func makeDocs(lengths ...int) [][]int32 {
	docs := make([][]int32, len(lengths))
	for i, n := range lengths {
		docs[i] = make([]int32, n)
		for k := range n {
			docs[i][k] = int32(1000*(i+1) + k)
		}
	}
	return docs
}

// tokenOrigin is the document and offset of a packed token.
type tokenOrigin struct{ doc, offset int }

// checkPackInvariants checks every packing invariant of p against the input
// docs and returns the origin of each valid token, [rows][SeqLen] with
// doc = -1 on padding.
func checkPackInvariants(t *testing.T, docs [][]int32, seqLen int, padID int32, p *Packed) [][]tokenOrigin {
	t.Helper()
	require.Equal(t, seqLen, p.SeqLen)
	require.Len(t, p.Positions, p.Rows())
	require.Len(t, p.Valid, p.Rows())
	require.Len(t, p.Docs, p.Rows())

	// Every row has length seqLen, and padding only ends a row.
	for r := range p.Rows() {
		require.Len(t, p.IDs[r], seqLen, "row %d ids", r)
		require.Len(t, p.Positions[r], seqLen, "row %d positions", r)
		require.Len(t, p.Valid[r], seqLen, "row %d valid", r)
		for c := 1; c < seqLen; c++ {
			if !p.Valid[r][c-1] {
				assert.False(t, p.Valid[r][c], "row %d: valid token at column %d after padding", r, c)
			}
		}
		for c := range seqLen {
			if !p.Valid[r][c] {
				assert.Equal(t, padID, p.IDs[r][c], "row %d column %d: padding id", r, c)
				assert.Zero(t, p.Positions[r][c], "row %d column %d: padding position", r, c)
			}
		}
	}

	// The valid tokens, in row order, are the concatenated documents, and the
	// positions restart at each document start and at each chunk start.
	origins := make([][]tokenOrigin, p.Rows())
	doc, offset := 0, 0
	skipEmpty := func() {
		for doc < len(docs) && offset == len(docs[doc]) {
			doc, offset = doc+1, 0
		}
	}
	skipEmpty()
	for r := range p.Rows() {
		origins[r] = make([]tokenOrigin, seqLen)
		for c := range seqLen {
			if !p.Valid[r][c] {
				origins[r][c] = tokenOrigin{doc: -1}
				continue
			}
			require.Less(t, doc, len(docs), "row %d column %d: more valid tokens than the documents have", r, c)
			assert.Equal(t, docs[doc][offset], p.IDs[r][c], "row %d column %d: token of document %d offset %d", r, c, doc, offset)
			switch {
			case offset == 0:
				assert.Zero(t, p.Positions[r][c], "row %d column %d: document %d start", r, c, doc)
			case c == 0:
				assert.Zero(t, p.Positions[r][c], "row %d: chunk of document %d must restart at 0", r, doc)
				assert.Greater(t, len(docs[doc]), seqLen, "row %d: only documents longer than a row may be split", r)
			default:
				assert.Equal(t, p.Positions[r][c-1]+1, p.Positions[r][c], "row %d column %d: position must increase by 1", r, c)
			}
			origins[r][c] = tokenOrigin{doc: doc, offset: offset}
			offset++
			skipEmpty()
		}
	}
	assert.Equal(t, len(docs), doc, "the rows end before all documents are packed")

	// Docs lists the documents of each row, and the rows of a document are
	// consecutive.
	rowsOfDoc := map[int][]int{}
	for r := range p.Rows() {
		var want []int
		for c := range seqLen {
			if d := origins[r][c].doc; d >= 0 && (len(want) == 0 || want[len(want)-1] != d) {
				want = append(want, d)
			}
		}
		assert.Equal(t, want, p.Docs[r], "row %d documents", r)
		for _, d := range want {
			rowsOfDoc[d] = append(rowsOfDoc[d], r)
		}
	}
	for d, rows := range rowsOfDoc {
		assert.Equal(t, rows[len(rows)-1]-rows[0]+1, len(rows), "document %d spans non-consecutive rows %v", d, rows)
	}
	return origins
}

// checkLossMask checks that the loss mask of each row counts len-1 targets
// for each document or chunk in the row.
func checkLossMask(t *testing.T, p *Packed, origins [][]tokenOrigin) {
	t.Helper()
	for r := range p.Rows() {
		masked := 0
		for c := 0; c+1 < p.SeqLen; c++ {
			if p.Valid[r][c] && p.Valid[r][c+1] && p.Positions[r][c+1] != 0 {
				masked++
			}
		}

		// Sum len-1 over the runs of tokens from one document in the row.
		want, runLength := 0, 0
		for c := range p.SeqLen {
			d := origins[r][c].doc
			if d >= 0 {
				runLength++
			}
			if runLength > 0 && (c+1 == p.SeqLen || origins[r][c+1].doc != d) {
				want += runLength - 1
				runLength = 0
			}
		}
		assert.Equal(t, want, masked, "row %d: loss targets", r)
	}
}

func TestPackLayouts(t *testing.T) {
	cases := []struct {
		name        string
		lengths     []int
		seqLen      int
		padID       int32
		wantDocs    [][]int
		wantPadding int
	}{
		{"exact fit", []int{2, 3}, 5, 0, [][]int{{0, 1}}, 0},
		{"two documents share a row", []int{3, 2, 4}, 5, 0, [][]int{{0, 1}, {2}}, 1},
		{"document that does not fit starts a row", []int{3, 3}, 5, 7, [][]int{{0}, {1}}, 4},
		{"long document split into chunks", []int{12}, 5, 0, [][]int{{0}, {0}, {0}}, 3},
		{"document follows last chunk", []int{2, 12, 3}, 5, 0, [][]int{{0}, {1}, {1}, {1, 2}}, 3},
		{"long document of exact multiple", []int{10, 1}, 5, 0, [][]int{{0}, {0}, {1}}, 4},
		{"empty documents ignored", []int{0, 2, 0, 2}, 4, 0, [][]int{{1, 3}}, 0},
		{"minimum sequence length", []int{1, 1, 3}, 2, 9, [][]int{{0, 1}, {2}, {2}}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs := makeDocs(tc.lengths...)
			p, err := Pack(docs, tc.seqLen, tc.padID)
			require.NoError(t, err)

			origins := checkPackInvariants(t, docs, tc.seqLen, tc.padID, p)
			checkLossMask(t, p, origins)
			assert.Equal(t, tc.wantDocs, p.Docs)

			stats := p.Stats()
			assert.Equal(t, len(tc.wantDocs), stats.Rows)
			assert.Equal(t, tc.wantPadding, stats.PaddingTokens)
			assert.InDelta(t, float64(tc.wantPadding)/float64(stats.Rows*tc.seqLen), stats.PaddingFraction, 1e-12)
		})
	}
}

func TestPackStats(t *testing.T) {
	// Rows: [d0 d0 d0 d1 d1] [d2 d2 d2 d2 d2] [d2 d2 pad pad pad].
	p, err := Pack(makeDocs(3, 2, 7), 5, 0)
	require.NoError(t, err)

	stats := p.Stats()
	assert.Equal(t, 3, stats.Rows)
	assert.Equal(t, 5, stats.SeqLen)
	assert.Equal(t, 3, stats.Documents)
	assert.Equal(t, 4, stats.Segments)
	assert.Equal(t, 12, stats.Tokens)
	assert.Equal(t, 3, stats.PaddingTokens)
	assert.InDelta(t, 0.2, stats.PaddingFraction, 1e-12)
	assert.Equal(t, 2+1+4+1, stats.LossTargets)
}

func TestPackRandomDocuments(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, seqLen := range []int{2, 3, 7, 16, 64} {
		for trial := range 20 {
			lengths := make([]int, 1+rng.IntN(30))
			for i := range lengths {
				lengths[i] = rng.IntN(3 * seqLen)
			}
			lengths[rng.IntN(len(lengths))]++ // at least one token
			docs := makeDocs(lengths...)

			p, err := Pack(docs, seqLen, -1)
			require.NoError(t, err, "seqLen %d trial %d", seqLen, trial)
			origins := checkPackInvariants(t, docs, seqLen, -1, p)
			checkLossMask(t, p, origins)

			total := 0
			for _, n := range lengths {
				total += n
			}
			stats := p.Stats()
			assert.Equal(t, total, stats.Tokens, "seqLen %d trial %d", seqLen, trial)
			assert.Equal(t, stats.Rows*seqLen, stats.Tokens+stats.PaddingTokens)
			assert.Equal(t, stats.Tokens-stats.Segments, stats.LossTargets)
		}
	}
}

func TestPackErrors(t *testing.T) {
	cases := []struct {
		name    string
		docs    [][]int32
		seqLen  int
		wantErr string
	}{
		{"sequence length 1", makeDocs(3), 1, "invalid sequence length 1"},
		{"sequence length 0", makeDocs(3), 0, "invalid sequence length 0"},
		{"negative sequence length", makeDocs(3), -4, "invalid sequence length -4"},
		{"no documents", nil, 8, "no tokens to pack"},
		{"only empty documents", makeDocs(0, 0), 8, "no tokens to pack"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Pack(tc.docs, tc.seqLen, 0)
			require.ErrorContains(t, err, tc.wantErr)
			assert.Nil(t, p)
		})
	}
}
