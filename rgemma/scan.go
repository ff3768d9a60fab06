package rgemma

import (
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

// scanChunk is the number of steps solved one after another inside a chunk
// by linearScan. On XLA CPU at [4,512,256] (the bench's forward shape) the
// forward scan took 1.2 ms with chunks of 16 or 32, 19–29 ms with chunks of 4
// or 8, and 25 ms as a Hillis–Steele scan over the whole row.
const scanChunk = 16

// linearScan solves h_t = a_t·h_{t-1} + x_t with h_{-1} = 0 along the time
// axis: a, x [B,T,L] -> h [B,T,L]. A reset (h_{t-1} taken as 0) is expressed
// by a_t = 0.
//
// GoMLX has no loop op, and automatic differentiation of an unrolled
// recurrence (or of any scan built from slices) costs O(T²) memory, so the
// gradient is given by hand: with adjoint g of h, the adjoint of x is
// λ_t = g_t + a_{t+1}·λ_{t+1}, a scan in reverse time, and the adjoint of a
// is λ_t·h_{t-1}. Both directions use blockedScan.
func linearScan(a, x *Node) *Node {
	// The gradient must not enter blockedScan: its slices would get
	// gradients built from Pad, which SimpleGo lacks, even if unused. Stopping
	// the output (not only the inputs) keeps autodiff out of it.
	aConst := StopGradient(a)
	h := StopGradient(blockedScan(a, x, false))

	// Both custom gradients below receive the adjoint of h; the reverse scan
	// is built once per adjoint node.
	var lambda, lambdaFor *Node
	adjointOfX := func(g *Node) *Node {
		if lambdaFor != g {
			lambda, lambdaFor = blockedScan(shiftTime(aConst, -1), g, true), g
		}
		return lambda
	}
	xID := IdentityWithCustomGradient(x, func(_, g *Node) *Node { return adjointOfX(g) })
	aID := IdentityWithCustomGradient(a, func(_, g *Node) *Node { return Mul(adjointOfX(g), shiftTime(h, 1)) })
	// Each difference is zero in value and passes the adjoint of h to its identity.
	zero := Add(Sub(xID, StopGradient(xID)), Sub(aID, StopGradient(aID)))
	return Add(h, zero)
}

// blockedScan computes the scan without a gradient of its own: forward
// (h_t = a_t·h_{t-1} + x_t) or, with reverse, h_t = a_t·h_{t+1} + x_t.
// Time is cut into chunks of scanChunk steps. Inside each chunk the steps run
// one after another, for all chunks at once. A Hillis–Steele scan over the
// chunk end states then gives the state entering each chunk, and one
// multiply-add corrects every step. The depth is scanChunk + log₂(T/scanChunk)
// and the work O(T).
func blockedScan(a, x *Node, reverse bool) *Node {
	dims := x.Shape().Dimensions
	B, T, L := dims[0], dims[1], dims[2]
	c := min(scanChunk, T)
	nc := (T + c - 1) / c
	padded := nc * c
	if padded != T {
		// Padding goes after the last step in scan order, so it never feeds a real step.
		a = padTime(a, padded-T, reverse)
		x = padTime(x, padded-T, reverse)
	}
	a4 := Reshape(a, B, nc, c, L)
	x4 := Reshape(x, B, nc, c, L)

	// In-chunk pass from a zero state: hs[j] the state, ps[j] the product of
	// the decays since the chunk began, both [B,nc,1,L].
	hs := make([]*Node, c)
	ps := make([]*Node, c)
	var h, p *Node
	for i := range c {
		j := i
		if reverse {
			j = c - 1 - i
		}
		aj := SliceAxis(a4, 2, AxisElem(j))
		xj := SliceAxis(x4, 2, AxisElem(j))
		if h == nil {
			h, p = xj, aj
		} else {
			h = Add(Mul(aj, h), xj)
			p = Mul(aj, p)
		}
		hs[j], ps[j] = h, p
	}
	out := Concatenate(hs, 2) // [B,nc,c,L]
	if nc > 1 {
		// The true end state of chunk n is the scan over chunks of
		// (decay product, local end state); it enters chunk n+1.
		endState, endDecay := Reshape(h, B, nc, L), Reshape(p, B, nc, L)
		ends := hillisSteele(endDecay, endState, reverse)
		entering := Reshape(shiftTime(ends, scanDirection(reverse)), B, nc, 1, L)
		out = Add(out, Mul(Concatenate(ps, 2), entering))
	}
	out = Reshape(out, B, padded, L)
	if padded != T {
		if reverse {
			return SliceAxis(out, 1, AxisRange(padded-T, padded))
		}
		return SliceAxis(out, 1, AxisRange(0, T))
	}
	return out
}

// hillisSteele is the log-depth scan over axis 1 of a, x [B,n,L]: ⌈log₂ n⌉
// steps, each combining every element with the one 2^k steps earlier (later,
// with reverse). Step k keeps (A, h), where A_t is the product of the a's and
// h_t the partial sum over the last 2^k inputs. Composing (A₁,h₁) after
// (A₂,h₂) gives (A₁A₂, A₁h₂ + h₁).
func hillisSteele(a, x *Node, reverse bool) *Node {
	n := x.Shape().Dimensions[1]
	acc, h := a, x
	for d := 1; d < n; d *= 2 {
		shift := scanDirection(reverse) * d
		hPrev := shiftTime(h, shift)   // zeros where the source is outside the row.
		aPrev := shiftTime(acc, shift) // zeros there too: A no longer matters.
		h = Add(h, Mul(acc, hPrev))
		if 2*d < n {
			acc = Mul(acc, aPrev)
		}
	}
	return h
}

// scanDirection returns the time step of a scan: 1 forward, -1 in reverse.
func scanDirection(reverse bool) int {
	if reverse {
		return -1
	}
	return 1
}

// padTime appends n zero steps on axis 1 of x, or prepends them when atStart.
func padTime(x *Node, n int, atStart bool) *Node {
	dims := append([]int{}, x.Shape().Dimensions...)
	dims[1] = n
	zeros := Zeros(x.Graph(), shapes.Make(x.DType(), dims...))
	if atStart {
		return Concatenate([]*Node{zeros, x}, 1)
	}
	return Concatenate([]*Node{x, zeros}, 1)
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
