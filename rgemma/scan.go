package rgemma

import (
	. "github.com/gomlx/gomlx/pkg/core/graph"
)

// linearScan solves h_t = a_t·h_{t-1} + x_t with h_{-1} = 0 along the time
// axis: a, x [B,T,L] -> h [B,T,L]. A reset (h_{t-1} taken as 0) is expressed
// by a_t = 0.
//
// GoMLX has no loop op, and an unrolled recurrence costs O(T²) memory in
// backpropagation, so this is a Hillis–Steele scan: ⌈log₂ T⌉ steps, each
// combining every element with the one 2^k steps earlier. Step k keeps
// (A, h) where A_t is the product of the a's and h_t the partial sum over the
// last 2^k inputs; composing (A₁,h₁) after (A₂,h₂) gives (A₁A₂, A₁h₂ + h₁).
func linearScan(a, x *Node) *Node {
	T := x.Shape().Dimensions[1]
	acc, h := a, x
	for d := 1; d < T; d *= 2 {
		hPrev := shiftTime(h, d)   // zeros for t < d.
		aPrev := shiftTime(acc, d) // zeros for t < d: A_t no longer matters there.
		h = Add(h, Mul(acc, hPrev))
		if 2*d < T {
			acc = Mul(acc, aPrev)
		}
	}
	return h
}

// linearScanSequential is the plain loop form of linearScan, unrolled over T.
// It serves as the reference in tests.
func linearScanSequential(a, x *Node) *Node {
	T := x.Shape().Dimensions[1]
	steps := make([]*Node, T)
	var h *Node
	for t := 0; t < T; t++ {
		at := SliceAxis(a, 1, AxisElem(t))
		xt := SliceAxis(x, 1, AxisElem(t))
		if h == nil {
			h = xt
		} else {
			h = Add(Mul(at, h), xt)
		}
		steps[t] = h
	}
	return Concatenate(steps, 1)
}
