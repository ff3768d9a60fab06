package data

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestUnigramEntropy(t *testing.T) {
	const a, b, c, d = 10, 11, 12, 13
	cases := []struct {
		name string
		docs [][]int32
		want float64
	}{
		{"two equally likely targets", [][]int32{{c, a, a, b, b}}, math.Ln2},
		{"first tokens are not targets", [][]int32{{a, b}, {c, b}, {d, b}}, 0},
		{"four equally likely targets", [][]int32{{d, a, b}, {d, c, d}}, math.Log(4)},
		// Targets a, a, a, b: -(3/4 ln 3/4 + 1/4 ln 1/4).
		{"skewed targets", [][]int32{{b, a, a}, {b, a, b}}, -(0.75*math.Log(0.75) + 0.25*math.Log(0.25))},
		{"ids outside the vocabulary", [][]int32{{a, -5, 300}}, math.Ln2},
		{"one-token documents add nothing", [][]int32{{a}, {c, a, b}, {}}, math.Ln2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.InDelta(t, tc.want, UnigramEntropy(tc.docs, 256), 1e-12)
		})
	}
}

func TestUnigramEntropyNoTargets(t *testing.T) {
	assert.True(t, math.IsNaN(UnigramEntropy(nil, 256)))
	assert.True(t, math.IsNaN(UnigramEntropy([][]int32{{5}, {}}, 256)))
}
