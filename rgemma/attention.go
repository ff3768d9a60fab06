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

	qg := Reshape(q, batch, T, KV, G, hd)
	scores := attentionScores(qg, k) // [B,KV,G,T,S]
	scores = MulScalar(scores, 1/math.Sqrt(float64(hd)))
	mask := BroadcastToDims(localAttentionMask(docIDs, cfg.AttentionWindow), scores.Shape().Dimensions...)
	scores = Where(mask, scores, FillScalar(scores.Graph(), scores.Shape(), maskedScore))
	probs := Softmax(scores, -1)

	out := attentionValues(probs, v)
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
