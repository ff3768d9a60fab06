package rgemma

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// ForwardOutputs are the results of Forward.
type ForwardOutputs struct {
	Logits *Node         // [B,T,V], soft-capped when logits_soft_cap > 0.
	Hidden []*Node       // Hidden[i] [B,T,D]: output of residual block i.
	Decays map[int]*Node // Recurrent layer index -> RG-LRU decay a_t [B,T,L].
}

// Forward builds the full-sequence forward pass: ids, positions [B,T] int32
// -> logits [B,T,V]. A position of 0 starts a new document, so several
// documents may be packed in one row; nothing crosses a document boundary.
// The parameters are read from ctx under their Hugging Face names.
func Forward(ctx *context.Context, cfg *Config, ids, positions *Node) ForwardOutputs {
	x := embed(ctx, cfg, ids)
	positions = ConvertDType(positions, dtypes.Int32)
	resets := Equal(positions, ZerosLike(positions))
	docIDs := documentIDs(positions)

	out := ForwardOutputs{Decays: map[int]*Node{}}
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		pre := LayerPrefix(i)
		h := rmsNorm(x, param(ctx, x.Graph(), pre+".temporal_pre_norm.weight"), cfg.RMSNormEps)
		var mixed *Node
		switch cfg.LayerType(i) {
		case Recurrent:
			var decay *Node
			mixed, decay = recurrentBlock(ctx, h, resets, docIDs, pre+".temporal_block")
			out.Decays[i] = decay
		case Attention:
			mixed = attentionBlock(ctx, cfg, h, positions, docIDs, pre+".temporal_block")
		}
		x = residualMLP(ctx, cfg, Add(mixed, x), pre)
		out.Hidden = append(out.Hidden, x)
	}
	out.Logits = lmHead(ctx, cfg, x)
	return out
}

// embed looks up and scales the token embeddings: ids [B,T] -> [B,T,D].
func embed(ctx *context.Context, cfg *Config, ids *Node) *Node {
	table := param(ctx, ids.Graph(), "model.embed_tokens.weight")
	x := Gather(table, ExpandAxes(ConvertDType(ids, dtypes.Int32), -1))
	if scale := cfg.EmbeddingScale(); scale != 1 {
		x = MulScalar(x, float64(scale))
	}
	return x
}

// residualMLP adds the MLP branch to the residual r: [B,T,D] -> [B,T,D].
func residualMLP(ctx *context.Context, cfg *Config, r *Node, layerPrefix string) *Node {
	normed := rmsNorm(r, param(ctx, r.Graph(), layerPrefix+".channel_pre_norm.weight"), cfg.RMSNormEps)
	return Add(mlpBlock(ctx, normed, layerPrefix+".mlp_block"), r)
}

// lmHead applies the final norm, the output projection (the embedding when
// tied) and the soft cap: x [B,T,D] -> [B,T,V].
func lmHead(ctx *context.Context, cfg *Config, x *Node) *Node {
	g := x.Graph()
	x = rmsNorm(x, param(ctx, g, "model.final_norm.weight"), cfg.RMSNormEps)
	name := "model.embed_tokens.weight"
	if !cfg.TieWordEmbeddings {
		name = "lm_head.weight"
	}
	logits := linear(x, param(ctx, g, name), nil)
	return softCap(logits, cfg.LogitsSoftCap)
}

// softCap returns tanh(x/c)·c, or x when c is 0.
func softCap(x *Node, c float64) *Node {
	if c <= 0 {
		return x
	}
	return MulScalar(Tanh(DivScalar(x, c)), c)
}

// NextTokenLoss returns the mean next-token cross entropy: logits [B,T,V],
// ids and positions [B,T], valid [B,T] booleans marking real (non-padding)
// tokens, or nil when every token is real -> scalar. Position t counts when
// its target t+1 exists, is real and lies in the same document
// (positions[t+1] ≠ 0). Also returns the number of counted positions.
func NextTokenLoss(logits, ids, positions, valid *Node) (loss, count *Node) {
	g := logits.Graph()
	ids = ConvertDType(ids, dtypes.Int32)
	positions = ConvertDType(positions, dtypes.Int32)

	// Target of t is ids[t+1]; shiftTime(·, -1) moves t+1 to t and zero-fills the last step.
	targets := shiftTime(ids, -1)
	counted := NotEqual(shiftTime(positions, -1), ZerosLike(positions))
	if valid != nil {
		validNext := shiftTime(ConvertDType(valid, dtypes.Int32), -1)
		counted = And(counted, NotEqual(validNext, ZerosLike(validNext)))
		counted = And(counted, valid)
	}

	// The target log-probability is picked with a one-hot mask rather than a
	// Gather: the gradient of Gather is a scatter, which XLA's CPU backend runs
	// orders of magnitude slower.
	logProbs := LogSoftmax(logits, -1)
	vocab := Iota(g, shapes.Make(dtypes.Int32, 1, 1, logits.Shape().Dimensions[2]), 2)
	isTarget := Equal(vocab, ExpandAxes(targets, -1))                               // [B,T,V]
	targetLogProbs := ReduceSum(Where(isTarget, logProbs, ZerosLike(logProbs)), -1) // [B,T]

	weights := ConvertDType(counted, dtypes.Float32)
	count = ReduceAllSum(weights)
	total := Neg(ReduceAllSum(Mul(targetLogProbs, weights)))
	loss = Div(total, MaxScalar(count, 1))
	return loss, count
}
