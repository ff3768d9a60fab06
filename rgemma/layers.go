package rgemma

// Shape letters used in this package:
//
//	B batch, T time (tokens in a row), S key time, D model width, L RG-LRU width,
//	F MLP width, V vocabulary, H query heads, KV key/value heads, G = H/KV,
//	hd head dimension, K conv1d width, W attention window.

import (
	"strings"

	"github.com/gomlx/exceptions"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers/activations"
)

// param returns the value of the parameter with the given Hugging Face name.
// It panics (graph-building convention) when the context lacks it.
func param(ctx *context.Context, g *Graph, hfName string) *Node {
	scope, name := scopeAndName(hfName)
	v := ctx.GetVariableByScopeAndName(scope, name)
	if v == nil {
		exceptions.Panicf("model parameter %q is not loaded", hfName)
	}
	return v.ValueGraph(g)
}

// linear computes x·Wᵀ (+ b): x [..., in], w [out, in] -> [..., out].
// Contracting both operands on their last axis keeps the weight in its
// checkpoint layout, which is also the faster layout on SimpleGo.
func linear(x, w, b *Node) *Node {
	y := dotGeneral(x, []int{x.Rank() - 1}, nil, w, []int{1}, nil)
	if b != nil {
		y = Add(y, ExpandLeftToRank(b, y.Rank()))
	}
	return y
}

// linearParam applies the linear layer stored under prefix (".weight" and,
// when withBias, ".bias").
func linearParam(ctx *context.Context, x *Node, prefix string, withBias bool) *Node {
	g := x.Graph()
	var b *Node
	if withBias {
		b = param(ctx, g, prefix+".bias")
	}
	w := param(ctx, g, prefix+".weight")
	if delta := loraDelta(ctx, g, prefix); delta != nil {
		w = Add(w, delta)
	}
	return linear(x, w, b)
}

// LoRAScope returns the context scope of the LoRA adapter of the linear layer
// with the given Hugging Face prefix (e.g. "model.layers.2.temporal_block.q_proj").
// The adapter holds variables "a" [r, in], "b" [out, r] and "scale" (alpha/r),
// and adds scale·B·A to the layer's weight.
func LoRAScope(prefix string) string {
	return "/lora/" + strings.ReplaceAll(prefix, ".", "/")
}

// loraDelta returns scale·B·A [out, in] when the layer has a LoRA adapter, else nil.
func loraDelta(ctx *context.Context, g *Graph, prefix string) *Node {
	scope := LoRAScope(prefix)
	a := ctx.GetVariableByScopeAndName(scope, "a")
	if a == nil {
		return nil
	}
	b := ctx.GetVariableByScopeAndName(scope, "b")
	scale := ctx.GetVariableByScopeAndName(scope, "scale")
	if b == nil || scale == nil {
		exceptions.Panicf("LoRA adapter %s is incomplete: needs variables a, b and scale", scope)
	}
	delta := dotGeneral(b.ValueGraph(g), []int{1}, nil, a.ValueGraph(g), []int{0}, nil)
	return Mul(delta, scale.ValueGraph(g))
}

// rmsNorm computes x / sqrt(mean(x²) + eps) · (1 + weight) over the last axis.
// It uses 1/Sqrt rather than Rsqrt because Rsqrt has no gradient in GoMLX v0.26.0.
func rmsNorm(x, weight *Node, eps float64) *Node {
	variance := ReduceAndKeep(Square(x), ReduceMean, -1)
	normed := Div(x, Sqrt(AddScalar(variance, eps)))
	return Mul(normed, ExpandLeftToRank(OnePlus(weight), x.Rank()))
}

// geluTanh is the tanh approximation of GELU ("gelu_pytorch_tanh").
func geluTanh(x *Node) *Node { return activations.GeluApproximate(x) }

// mlpBlock computes down(gelu(gate(h)) · up(h)): [B,T,D] -> [B,T,D].
func mlpBlock(ctx *context.Context, h *Node, prefix string) *Node {
	gate := geluTanh(linearParam(ctx, h, prefix+".gate_proj", true))
	up := linearParam(ctx, h, prefix+".up_proj", true)
	return linearParam(ctx, Mul(gate, up), prefix+".down_proj", true)
}

// shiftTime returns y with y[b,t] = x[b,t-d] where 0 ≤ t-d < T and zeros
// elsewhere: x [B,T,...]; d may be negative. It is written as a Gather
// because the gradient of Slice needs Pad, which the SimpleGo backend lacks,
// while the gradient of Gather is a scatter-sum, which every backend has.
func shiftTime(x *Node, d int) *Node {
	if d == 0 {
		return x
	}
	g := x.Graph()
	dims := x.Shape().Dimensions
	batch, T := dims[0], dims[1]
	if d >= T || -d >= T {
		return ZerosLike(x)
	}
	if hasPad(g) {
		return shiftTimeBySlice(x, d)
	}

	// indices [B,T,2] = (b, clamp(t-d)), then zero the rows whose source is outside [0,T).
	bIdx := Iota(g, shapes.Make(dtypes.Int32, batch, T, 1), 0)
	tIdx := Iota(g, shapes.Make(dtypes.Int32, batch, T, 1), 1)
	src := MinScalar(MaxScalar(SubScalar(tIdx, d), 0), T-1)
	gathered := Gather(x, Concatenate([]*Node{bIdx, src}, -1))

	t := Iota(g, shapes.Make(dtypes.Int32, T), 0)
	var valid *Node
	if d > 0 {
		valid = GreaterOrEqual(t, Scalar(g, dtypes.Int32, d))
	} else {
		valid = LessThan(t, Scalar(g, dtypes.Int32, T+d))
	}
	valid = BroadcastToDims(Reshape(valid, append([]int{1, T}, ones(len(dims)-2)...)...), dims...)
	return Where(valid, gathered, ZerosLike(gathered))
}

// hasPad reports whether the backend has Pad, which the gradient of Slice
// needs. XLA has it; SimpleGo (GoMLX v0.26.0) does not.
func hasPad(g *Graph) bool {
	return g.Backend().Capabilities().Operations[backends.OpTypePad]
}

// shiftTimeBySlice is shiftTime with Slice and Concatenate, which XLA runs
// much faster than Gather, whose gradient is a scatter.
func shiftTimeBySlice(x *Node, d int) *Node {
	T := x.Shape().Dimensions[1]
	if d > 0 {
		return padTime(SliceAxis(x, 1, AxisRange(0, T-d)), d, true)
	}
	return padTime(SliceAxis(x, 1, AxisRange(-d, T)), -d, false)
}

func ones(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = 1
	}
	return out
}

// documentIDs numbers the documents of each row: [B,T] positions -> [B,T]
// float32, the count of positions equal to 0 up to and including t. Two tokens
// of a row belong to the same document when their ids are equal. It is a
// product with a lower-triangular matrix of ones, which is exact for T < 2²⁴.
func documentIDs(positions *Node) *Node {
	g := positions.Graph()
	T := positions.Shape().Dimensions[1]
	starts := ConvertDType(Equal(positions, ZerosLike(positions)), dtypes.Float32) // [B,T]
	row := Iota(g, shapes.Make(dtypes.Int32, T, T), 0)
	col := Iota(g, shapes.Make(dtypes.Int32, T, T), 1)
	lower := ConvertDType(GreaterOrEqual(row, col), dtypes.Float32) // [T(t), T(s)]: 1 where s ≤ t.
	return Einsum("bs,ts->bt", starts, lower)
}
