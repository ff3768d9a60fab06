package rgemma

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// maskedScore is the score given to disallowed keys before the softmax. A
// finite value keeps rows finite; every query may attend at least to itself.
const maskedScore = -1e30

// applyRoPE rotates the first RotaryDim dims of each head by the segment
// positions: x [B,T,N,hd], positions [B,T] -> [B,T,N,hd]. With z1, z2 the two
// halves of the rotated part, the result is [z1·cos - z2·sin, z2·cos + z1·sin]
// followed by the unrotated dims. The half swap is a product with a constant
// [hd,hd] matrix, which avoids Slice (no gradient on SimpleGo).
func applyRoPE(cfg *Config, x, positions *Node) *Node {
	g := x.Graph()
	hd, rot := cfg.HeadDim(), cfg.RotaryDim()
	half := rot / 2
	if useSlicedRoPE && hasPad(g) {
		return applyRoPESliced(cfg, x, positions)
	}

	// Per-dimension inverse frequency, and masks for the rotated dims.
	invFreq := make([]float32, hd)
	rotated := make([]float32, hd)
	swap := make([][]float32, hd) // swap[i][j]: coefficient of x[i] in rotateHalf(x)[j].
	for i := range swap {
		swap[i] = make([]float32, hd)
	}
	for j := 0; j < rot; j++ {
		invFreq[j] = float32(math.Pow(cfg.RopeTheta, -2*float64(j%half)/float64(rot)))
		rotated[j] = 1
		if j < half {
			swap[j+half][j] = -1
		} else {
			swap[j-half][j] = 1
		}
	}

	pos := ConvertDType(positions, dtypes.Float32)                            // [B,T]
	angle := Mul(ExpandAxes(pos, -1), ExpandLeftToRank(Const(g, invFreq), 3)) // [B,T,hd]
	rotMask := ExpandLeftToRank(Const(g, rotated), 3)
	cos := Add(Mul(Cos(angle), rotMask), OneMinus(rotMask)) // 1 on the unrotated dims.
	sin := Mul(Sin(angle), rotMask)                         // 0 on the unrotated dims.
	cos, sin = ExpandAxes(cos, 2), ExpandAxes(sin, 2)       // [B,T,1,hd]

	swapped := dotGeneral(x, []int{3}, nil, Const(g, swap), []int{0}, nil)
	return Add(Mul(x, cos), Mul(swapped, sin))
}

// useSlicedRoPE lets benchmarks compare applyRoPESliced with the swap product.
var useSlicedRoPE = true

// applyRoPESliced is applyRoPE with the halves cut out by Slice, for backends
// that can differentiate Slice (XLA). It needs no [hd,hd] product and computes
// the sines and cosines of the rotated half only.
func applyRoPESliced(cfg *Config, x, positions *Node) *Node {
	g := x.Graph()
	hd, rot := cfg.HeadDim(), cfg.RotaryDim()
	half := rot / 2
	invFreq := make([]float32, half)
	for j := range invFreq {
		invFreq[j] = float32(math.Pow(cfg.RopeTheta, -2*float64(j)/float64(rot)))
	}
	pos := ConvertDType(positions, dtypes.Float32)                            // [B,T]
	angle := Mul(ExpandAxes(pos, -1), ExpandLeftToRank(Const(g, invFreq), 3)) // [B,T,half]
	cos, sin := ExpandAxes(Cos(angle), 2), ExpandAxes(Sin(angle), 2)          // [B,T,1,half]

	z1 := SliceAxis(x, 3, AxisRange(0, half))
	z2 := SliceAxis(x, 3, AxisRange(half, rot))
	parts := []*Node{
		Sub(Mul(z1, cos), Mul(z2, sin)),
		Add(Mul(z2, cos), Mul(z1, sin)),
	}
	if rot < hd {
		parts = append(parts, SliceAxis(x, 3, AxisRange(rot, hd)))
	}
	return Concatenate(parts, 3)
}

// localAttentionMask returns the allowed (query t, key s) pairs of a row:
// docIDs [B,T] -> [B,1,1,T,T] booleans, true where s ≤ t, t-s ≤ W and both
// tokens are in the same document. t-s counts positions in the row.
func localAttentionMask(docIDs *Node, window int) *Node {
	g := docIDs.Graph()
	T := docIDs.Shape().Dimensions[1]
	t := Iota(g, shapes.Make(dtypes.Int32, T, T), 0)
	s := Iota(g, shapes.Make(dtypes.Int32, T, T), 1)
	diff := Sub(t, s)
	inWindow := And(GreaterOrEqual(diff, ZerosLike(diff)), LessOrEqual(diff, Scalar(g, dtypes.Int32, window)))
	sameDoc := Equal(ExpandAxes(docIDs, -1), ExpandAxes(docIDs, 1)) // [B,T,T]
	mask := And(sameDoc, ExpandLeftToRank(inWindow, 3))
	return ExpandAxes(mask, 1, 2)
}

// attentionBlock is the temporal block of an attention layer:
// h [B,T,D], positions [B,T], docIDs [B,T] -> [B,T,D]. Query heads are
// grouped onto the KV key/value heads: head n uses key/value head n/(H/KV).
func attentionBlock(ctx *context.Context, cfg *Config, h, positions, docIDs *Node, prefix string) *Node {
	dims := h.Shape().Dimensions
	batch, T := dims[0], dims[1]
	H, KV, hd := cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.HeadDim()
	G := H / KV

	q := Reshape(linearParam(ctx, h, prefix+".q_proj", false), batch, T, H, hd)
	k := Reshape(linearParam(ctx, h, prefix+".k_proj", false), batch, T, KV, hd)
	v := Reshape(linearParam(ctx, h, prefix+".v_proj", false), batch, T, KV, hd)
	q = applyRoPE(cfg, q, positions)
	k = applyRoPE(cfg, k, positions)

	var out *Node
	if Q := queryBlock(cfg.AttentionWindow, T); Q > 0 {
		out = blockedLocalAttention(q, k, v, docIDs, cfg.AttentionWindow, Q, G)
	} else {
		out = fullLocalAttention(q, k, v, docIDs, cfg.AttentionWindow, G)
	}
	out = Reshape(out, batch, T, H*hd)
	return linearParam(ctx, out, prefix+".o_proj", true)
}

// attentionScores returns q·k per head pair: q [B,T,KV,G,hd], k [B,S,KV,hd]
// -> [B,KV,G,T,S].
func attentionScores(q, k *Node) *Node {
	scores := dotGeneral(q, []int{4}, []int{0, 2}, k, []int{3}, []int{0, 2}) // [B,KV,T,G,S]
	return TransposeAllAxes(scores, 0, 1, 3, 2, 4)
}

// attentionValues returns the probability-weighted values:
// probs [B,KV,G,T,S], v [B,S,KV,hd] -> [B,T,KV,G,hd].
func attentionValues(probs, v *Node) *Node {
	out := dotGeneral(probs, []int{4}, []int{0, 1}, v, []int{1}, []int{0, 2}) // [B,KV,G,T,hd]
	return TransposeAllAxes(out, 0, 3, 1, 2, 4)
}

// queryBlock returns the query block size Q for blockedLocalAttention on
// sequences of T tokens with window W, or 0 when the full product should be
// used. Q must divide both W and T, and W+Q < T, so that the blocks score
// fewer keys than the full product.
func queryBlock(W, T int) int {
	Q := min(attentionQueryBlock, W)
	if Q <= 0 || W%Q != 0 || T%Q != 0 || W+Q >= T {
		return 0
	}
	return Q
}

// fullLocalAttention is the local attention of a full sequence as one masked
// product of all queries with all keys: q [B,T,H,hd], k and v [B,T,KV,hd],
// docIDs [B,T] -> [B,T,KV,G,hd].
func fullLocalAttention(q, k, v, docIDs *Node, W, G int) *Node {
	dims := k.Shape().Dimensions
	B, T, KV, hd := dims[0], dims[1], dims[2], dims[3]
	qg := Reshape(q, B, T, KV, G, hd)
	scores := attentionScores(qg, k) // [B,KV,G,T,S]
	scores = MulScalar(scores, 1/math.Sqrt(float64(hd)))
	mask := BroadcastToDims(localAttentionMask(docIDs, W), scores.Shape().Dimensions...)
	scores = Where(mask, scores, FillScalar(scores.Graph(), scores.Shape(), maskedScore))
	return attentionValues(Softmax(scores, -1), v)
}

// attentionQueryBlock is the number of queries that blockedLocalAttention
// scores together, when it divides the window. Each block of Q queries needs
// W+Q keys, so smaller blocks waste fewer masked scores but make more, smaller
// products. Blocks of 32 made the forward pass of the small preset at 4×512
// about 4% faster than blocks of 128 on XLA CPU.
const attentionQueryBlock = 32

// blockedLocalAttention is the local attention of a full sequence computed
// block by block: q [B,T,H,hd], k and v [B,T,KV,hd], docIDs [B,T] ->
// [B,T,KV,G,hd], for T a multiple of the query block size Q, which divides
// the window W. The Q queries of block n (positions nQ to nQ+Q-1) can only
// see keys from nQ-W to nQ+Q-1, so each block scores Q queries against W+Q
// keys instead of all T.
func blockedLocalAttention(q, k, v, docIDs *Node, W, Q, G int) *Node {
	g := q.Graph()
	dims := k.Shape().Dimensions
	B, T, KV, hd := dims[0], dims[1], dims[2], dims[3]
	nb := T / Q
	S := W + Q // keys per block

	// Keys, values and their document ids for each block: the W/Q previous
	// blocks, then the block itself, [B,nb,S,...]. Blocks before the row
	// start are zeros, masked below.
	withPrevious := func(x *Node) *Node {
		blocked := Reshape(x, append([]int{B, nb, Q}, x.Shape().Dimensions[2:]...)...)
		parts := make([]*Node, 0, W/Q+1)
		for back := W / Q; back >= 1; back-- {
			parts = append(parts, shiftTime(blocked, back))
		}
		return Concatenate(append(parts, blocked), 2)
	}
	keys, values := withPrevious(k), withPrevious(v) // [B,nb,S,KV,hd]
	keyDocs := withPrevious(docIDs)                  // [B,nb,S]
	queryDocs := Reshape(docIDs, B, nb, Q)

	qb := Reshape(MulScalar(q, 1/math.Sqrt(float64(hd))), B, nb, Q, KV, G, hd)
	scores := dotGeneral(qb, []int{5}, []int{0, 1, 3}, keys, []int{4}, []int{0, 1, 3}) // [B,nb,KV,Q,G,S]

	// Query i of block n is at nQ+i, key j at nQ-W+j: the distance is W+i-j.
	i := Iota(g, shapes.Make(dtypes.Int32, Q, S), 0)
	j := Iota(g, shapes.Make(dtypes.Int32, Q, S), 1)
	distance := Sub(AddScalar(i, W), j)
	inWindow := And(GreaterOrEqual(distance, ZerosLike(distance)), LessOrEqual(distance, Scalar(g, dtypes.Int32, W)))
	// The key exists when its position nQ-W+j is not negative.
	block := Iota(g, shapes.Make(dtypes.Int32, 1, nb, 1, 1), 1)
	keyPosition := Add(MulScalar(block, float64(Q)), Reshape(AddScalar(j, -W), 1, 1, Q, S))
	exists := GreaterOrEqual(keyPosition, ZerosLike(keyPosition))
	sameDoc := Equal(ExpandAxes(queryDocs, -1), ExpandAxes(keyDocs, 2)) // [B,nb,Q,S]
	mask := And(And(sameDoc, exists), ExpandLeftToRank(inWindow, 4))
	mask = BroadcastToDims(Reshape(mask, B, nb, 1, Q, 1, S), scores.Shape().Dimensions...)
	scores = Where(mask, scores, FillScalar(g, scores.Shape(), maskedScore))
	probs := Softmax(scores, -1)

	out := dotGeneral(probs, []int{5}, []int{0, 1, 2}, values, []int{2}, []int{0, 1, 3}) // [B,nb,KV,Q,G,hd]
	out = TransposeAllAxes(out, 0, 1, 3, 2, 4, 5)                                        // [B,nb,Q,KV,G,hd]
	return Reshape(out, B, T, KV, G, hd)
}
