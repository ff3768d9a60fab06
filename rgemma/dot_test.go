package rgemma

import (
	"math/rand/v2"
	"testing"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/require"
)

func randomTensor(rng *rand.Rand, dims ...int) *tensors.Tensor {
	n := 1
	for _, d := range dims {
		n *= d
	}
	values := make([]float32, n)
	for i := range values {
		values[i] = float32(rng.NormFloat64())
	}
	return tensors.FromFlatDataAndDimensions(values, dims...)
}

func TestDotGeneralGradientMatchesGoMLX(t *testing.T) {
	// The replacement gradient must equal the one GoMLX derives for the
	// same product (through DotGeneral nodes it did not record).
	backend := backendForTest(t)
	rng := rand.New(rand.NewPCG(21, 22))
	cases := []struct {
		name                   string
		lhsDims, rhsDims       []int
		lhsC, lhsB, rhsC, rhsB []int
	}{
		{"linear", []int{2, 3, 5}, []int{4, 5}, []int{2}, nil, []int{1}, nil},
		{"block diagonal", []int{2, 3, 4, 5}, []int{4, 5, 6}, []int{3}, []int{2}, []int{1}, []int{0}},
		{"attention scores", []int{2, 3, 2, 2, 4}, []int{2, 5, 2, 4}, []int{4}, []int{0, 2}, []int{3}, []int{0, 2}},
		{"attention values", []int{2, 2, 2, 3, 5}, []int{2, 5, 2, 4}, []int{4}, []int{0, 1}, []int{1}, []int{0, 2}},
		{"two contracting axes, swapped", []int{3, 4, 5}, []int{5, 6, 3}, []int{0, 2}, nil, []int{2, 0}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lhs, rhs := randomTensor(rng, tc.lhsDims...), randomTensor(rng, tc.rhsDims...)
			usesBefore := recordedVJPUses.Load()
			outs := MustExecOnceN(backend, func(lhs, rhs *Node) []*Node {
				// A fixed random weighting makes every output element matter.
				ours := dotGeneral(lhs, tc.lhsC, tc.lhsB, rhs, tc.rhsC, tc.rhsB)
				theirs := DotGeneral(lhs, tc.lhsC, tc.lhsB, rhs, tc.rhsC, tc.rhsB)
				weights := Sin(AddScalar(MulScalar(Iota(lhs.Graph(), ours.Shape(), 0), 0.7), 0.3))
				gOurs := Gradient(ReduceAllSum(Mul(ours, weights)), lhs, rhs)
				gTheirs := Gradient(ReduceAllSum(Mul(theirs, weights)), lhs, rhs)
				return []*Node{ours, theirs, gOurs[0], gTheirs[0], gOurs[1], gTheirs[1]}
			}, lhs, rhs)
			requireClose(t, "value", flat(t, outs[1]), flat(t, outs[0]), 1e-5, 0)
			requireClose(t, "d lhs", flat(t, outs[3]), flat(t, outs[2]), 1e-4, 0)
			requireClose(t, "d rhs", flat(t, outs[5]), flat(t, outs[4]), 1e-4, 0)
			require.Equal(t, int64(1), recordedVJPUses.Load()-usesBefore, "the recorded product must use the two-product gradient")
		})
	}
}
