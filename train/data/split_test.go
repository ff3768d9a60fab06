package data

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rowIDs returns the first token of each row, which identifies rows packed
// from makeDocs.
func rowIDs(p *Packed) []int32 {
	out := make([]int32, p.Rows())
	for r := range out {
		out[r] = p.IDs[r][0]
	}
	return out
}

// packRows packs n documents of 2 tokens each into n full rows of length 2.
func packRows(t *testing.T, n int) *Packed {
	t.Helper()
	lengths := make([]int, n)
	for i := range lengths {
		lengths[i] = 2
	}
	p, err := Pack(makeDocs(lengths...), 2, 0)
	require.NoError(t, err)
	require.Equal(t, n, p.Rows())
	return p
}

func TestSplitSizes(t *testing.T) {
	cases := []struct {
		name     string
		rows     int
		fraction float64
		wantEval int
	}{
		{"tenth of 100 rows", 100, 0.1, 10},
		{"rounds to nearest", 10, 0.25, 3},
		{"at least one row", 10, 0.01, 1},
		{"two rows", 2, 0.5, 1},
		{"keeps one training row", 3, 0.99, 2},
		{"zero fraction", 10, 0, 0},
		{"single row", 1, 0.5, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := packRows(t, tc.rows)

			train, eval, err := Split(p, tc.fraction, 7)
			require.NoError(t, err)
			assert.Equal(t, tc.wantEval, eval.Rows())
			assert.Equal(t, tc.rows-tc.wantEval, train.Rows())
			assert.Equal(t, p.SeqLen, train.SeqLen)
			assert.Equal(t, p.SeqLen, eval.SeqLen)

			// Every row lands in exactly one set, in the original order.
			all := append(rowIDs(train), rowIDs(eval)...)
			assert.ElementsMatch(t, rowIDs(p), all)
			assert.IsIncreasing(t, rowIDs(train))
			if eval.Rows() > 1 {
				assert.IsIncreasing(t, rowIDs(eval))
			}
		})
	}
}

func TestSplitDeterministic(t *testing.T) {
	p := packRows(t, 50)

	train1, eval1, err := Split(p, 0.2, 3)
	require.NoError(t, err)
	train2, eval2, err := Split(p, 0.2, 3)
	require.NoError(t, err)
	_, eval3, err := Split(p, 0.2, 4)
	require.NoError(t, err)

	assert.Equal(t, rowIDs(train1), rowIDs(train2))
	assert.Equal(t, rowIDs(eval1), rowIDs(eval2))
	assert.NotEqual(t, rowIDs(eval1), rowIDs(eval3), "another seed holds out other rows")
}

func TestSplitKeepsDocumentsWhole(t *testing.T) {
	// Rows of length 4: document 1 spans rows 1-3 and document 3 rows 5-6.
	lengths := []int{3, 10, 4, 6, 2, 3}
	p, err := Pack(makeDocs(lengths...), 4, 0)
	require.NoError(t, err)
	require.Equal(t, [][]int{{0}, {1}, {1}, {1}, {2}, {3}, {3, 4}, {5}}, p.Docs)

	for seed := range uint64(20) {
		train, eval, err := Split(p, 0.4, seed)
		require.NoError(t, err)
		assert.Positive(t, eval.Rows(), "seed %d", seed)
		assert.LessOrEqual(t, eval.Rows(), 3, "seed %d: at most round(0.4*8) rows", seed)

		trainDocs := map[int]bool{}
		for _, docs := range train.Docs {
			for _, d := range docs {
				trainDocs[d] = true
			}
		}
		for _, docs := range eval.Docs {
			for _, d := range docs {
				assert.False(t, trainDocs[d], "seed %d: document %d is in both sets", seed, d)
			}
		}
	}
}

func TestSplitOneLongDocument(t *testing.T) {
	// Every row contains the same document, so no whole group fits the target
	// and the evaluation set takes the last rows.
	p, err := Pack(makeDocs(20), 4, 0)
	require.NoError(t, err)

	train, eval, err := Split(p, 0.4, 1)
	require.NoError(t, err)
	assert.Equal(t, 3, train.Rows())
	assert.Equal(t, 2, eval.Rows())
	assert.Equal(t, rowIDs(p)[3:], rowIDs(eval))
}

func TestSplitErrors(t *testing.T) {
	p := packRows(t, 4)
	cases := []struct {
		name     string
		p        *Packed
		fraction float64
		wantErr  string
	}{
		{"nil rows", nil, 0.1, "packed rows are nil"},
		{"negative fraction", p, -0.1, "invalid evaluation fraction -0.1"},
		{"fraction of one", p, 1, "invalid evaluation fraction 1"},
		{"ragged rows", &Packed{SeqLen: 2, IDs: [][]int32{{1}}, Positions: [][]int32{{0}}, Valid: [][]bool{{true}}}, 0.1, "invalid packed row 0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			train, eval, err := Split(tc.p, tc.fraction, 0)
			require.ErrorContains(t, err, tc.wantErr)
			assert.Nil(t, train)
			assert.Nil(t, eval)
		})
	}
}
