package rgemma

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// The decoding state is a list of tensors in layer order, all float32:
//
//	recurrent layer: RG-LRU state [B,L], conv state [B,K-1,L] (the last K-1 conv inputs);
//	attention layer: keys [B,W,KV,hd] and values [B,W,KV,hd], a ring buffer
//	where the token with row index j (counting every token the row has seen)
//	sits in slot j mod W. Keys are stored after RoPE.
//
// The row counts [B] are kept by the caller and passed to Step.

// stateShapes returns the shapes of the decoding state for batch size B.
func stateShapes(cfg *Config, batch int) []shapes.Shape {
	var out []shapes.Shape
	L, K, W, KV, hd := cfg.LRUWidth, cfg.Conv1DWidth, cfg.AttentionWindow, cfg.NumKeyValueHeads, cfg.HeadDim()
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		switch cfg.LayerType(i) {
		case Recurrent:
			out = append(out, shapes.Make(dtypes.Float32, batch, L), shapes.Make(dtypes.Float32, batch, K-1, L))
		case Attention:
			kv := shapes.Make(dtypes.Float32, batch, W, KV, hd)
			out = append(out, kv, kv)
		}
	}
	return out
}

// Step runs a chunk of C tokens per row on top of a decoding state:
// ids, positions [B,C] int32; valid [B,C] bool, true on a prefix of each row
// (the rest is padding, which changes nothing); counts [B] int32, the number
// of tokens each row has seen; state as described above. It returns the
// logits [B,C,V] and the new state. A position of 0 starts a new document,
// which resets the recurrence and hides earlier tokens. Time and memory do not
// depend on the counts: attention reads W cached keys plus the chunk.
func Step(ctx *context.Context, cfg *Config, ids, positions, valid, counts *Node, state []*Node) (logits *Node, newState []*Node) {
	positions = ConvertDType(positions, dtypes.Int32)
	counts = ConvertDType(counts, dtypes.Int32)
	nValid := ReduceSum(ConvertDType(valid, dtypes.Int32), -1) // [B]
	x := embed(ctx, cfg, ids)

	next := 0
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		pre := LayerPrefix(i)
		h := rmsNorm(x, param(ctx, x.Graph(), pre+".temporal_pre_norm.weight"), cfg.RMSNormEps)
		var mixed *Node
		switch cfg.LayerType(i) {
		case Recurrent:
			var lru, conv *Node
			mixed, lru, conv = recurrentStep(ctx, h, positions, nValid, state[next], state[next+1], pre+".temporal_block")
			newState = append(newState, lru, conv)
		case Attention:
			var keys, values *Node
			mixed, keys, values = attentionStep(ctx, cfg, h, positions, valid, counts, nValid, state[next], state[next+1], pre+".temporal_block")
			newState = append(newState, keys, values)
		}
		next += 2
		x = residualMLP(ctx, cfg, Add(mixed, x), pre)
	}
	return lmHead(ctx, cfg, x), newState
}

// gatherRows returns x[b, index[b]+j] for j < n: x [B,N,...], index [B] int32
// -> [B,n,...]. Indices are clamped to [0,N).
func gatherRows(x, index *Node, n int) *Node {
	g := x.Graph()
	batch, N := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	rows := Iota(g, shapes.Make(dtypes.Int32, batch, n, 1), 0)
	cols := Add(Reshape(index, batch, 1, 1), Iota(g, shapes.Make(dtypes.Int32, batch, n, 1), 1))
	cols = MinScalar(MaxScalar(cols, 0), N-1)
	return Gather(x, Concatenate([]*Node{rows, cols}, -1))
}

// recurrentStep is recurrentBlock on a chunk with a cached state:
// h [B,C,D] -> out [B,C,D], new RG-LRU state [B,L], new conv state [B,K-1,L].
func recurrentStep(ctx *context.Context, h, positions, nValid, lruState, convState *Node, prefix string) (out, newLRU, newConv *Node) {
	g := h.Graph()
	C := h.Shape().Dimensions[1]
	y := geluTanh(linearParam(ctx, h, prefix+".linear_y", true))
	u := linearParam(ctx, h, prefix+".linear_x", true) // [B,C,L]

	// Convolution over [conv state, chunk]; tap k of token t reads ext[t+k],
	// which is j = K-1-k steps back, and is dropped when j > position[t]
	// (an earlier document, or before the first token).
	weight := param(ctx, g, prefix+".conv_1d.weight")
	L, K := weight.Shape().Dimensions[0], weight.Shape().Dimensions[2]
	w := Reshape(weight, L, K)
	ext := Concatenate([]*Node{convState, u}, 1) // [B,K-1+C,L]
	conv := ExpandLeftToRank(param(ctx, g, prefix+".conv_1d.bias"), 3)
	for k := 0; k < K; k++ {
		back := K - 1 - k
		tap := Mul(SliceAxis(ext, 1, AxisRange(k, k+C)), ExpandLeftToRank(Reshape(SliceAxis(w, 1, AxisElem(k)), L), 3))
		inDoc := ExpandAxes(GreaterOrEqual(positions, Scalar(g, dtypes.Int32, back)), -1)
		conv = Add(conv, Where(BroadcastToDims(inDoc, tap.Shape().Dimensions...), tap, ZerosLike(tap)))
	}
	newConv = gatherRows(ext, nValid, K-1) // The last K-1 inputs of the valid prefix.

	resets := Equal(positions, ZerosLike(positions))
	lru := rgLRU(ctx, conv, resets, lruState, prefix+".rg_lru")
	withInitial := Concatenate([]*Node{ExpandAxes(lruState, 1), lru.H}, 1) // [B,1+C,L]
	newLRU = Reshape(gatherRows(withInitial, nValid, 1), lruState.Shape().Dimensions...)

	out = linearParam(ctx, Mul(lru.H, y), prefix+".linear_out", true)
	return out, newLRU, newConv
}

// ringSlotIndex returns the row index of the token held by each ring slot
// after `count` tokens: [B] -> [B,W], count-1 - ((count-1-s) mod W); negative
// means the slot is empty.
func ringSlotIndex(count *Node, window int) *Node {
	g := count.Graph()
	slots := Iota(g, shapes.Make(dtypes.Int32, 1, window), 1)
	last := ExpandAxes(SubScalar(count, 1), -1) // [B,1]
	back := Rem(AddScalar(Sub(last, slots), window), Scalar(g, dtypes.Int32, window))
	return Sub(last, back)
}

// attentionStep is attentionBlock on a chunk with cached keys and values:
// h [B,C,D] -> out [B,C,D], new keys and values [B,W,KV,hd].
func attentionStep(ctx *context.Context, cfg *Config, h, positions, valid, counts, nValid, keyCache, valueCache *Node, prefix string) (out, newKeys, newValues *Node) {
	g := h.Graph()
	dims := h.Shape().Dimensions
	batch, C := dims[0], dims[1]
	H, KV, hd, W := cfg.NumAttentionHeads, cfg.NumKeyValueHeads, cfg.HeadDim(), cfg.AttentionWindow
	G := H / KV

	q := Reshape(linearParam(ctx, h, prefix+".q_proj", false), batch, C, H, hd)
	k := Reshape(linearParam(ctx, h, prefix+".k_proj", false), batch, C, KV, hd)
	v := Reshape(linearParam(ctx, h, prefix+".v_proj", false), batch, C, KV, hd)
	q = applyRoPE(cfg, q, positions)
	k = applyRoPE(cfg, k, positions)

	// Keys: the W cached ones, then the chunk. Row indices of each key and query.
	keys := Concatenate([]*Node{keyCache, k}, 1)                                           // [B,W+C,KV,hd]
	values := Concatenate([]*Node{valueCache, v}, 1)                                       // [B,W+C,KV,hd]
	chunkIndex := Add(ExpandAxes(counts, -1), Iota(g, shapes.Make(dtypes.Int32, 1, C), 1)) // [B,C]
	slotIndex := ringSlotIndex(counts, W)                                                  // [B,W]
	keyIndex := Concatenate([]*Node{slotIndex, chunkIndex}, 1)                             // [B,W+C]
	keyValid := Concatenate([]*Node{GreaterOrEqual(slotIndex, ZerosLike(slotIndex)), valid}, 1)

	// Key s is allowed for query t when 0 ≤ t-s ≤ min(W, position[t]).
	diff := Sub(ExpandAxes(chunkIndex, -1), ExpandAxes(keyIndex, 1)) // [B,C,W+C]
	reach := ExpandAxes(MinScalar(positions, W), -1)
	allowed := And(And(GreaterOrEqual(diff, ZerosLike(diff)), LessOrEqual(diff, reach)), ExpandAxes(keyValid, 1))

	qg := Reshape(q, batch, C, KV, G, hd)
	scores := MulScalar(attentionScores(qg, keys), 1/math.Sqrt(float64(hd)))
	mask := BroadcastToDims(ExpandAxes(allowed, 1, 2), scores.Shape().Dimensions...)
	scores = Where(mask, scores, FillScalar(g, scores.Shape(), maskedScore))
	probs := Softmax(scores, -1)
	attended := Reshape(attentionValues(probs, values), batch, C, H*hd)
	out = linearParam(ctx, attended, prefix+".o_proj", true)

	// In the new ring, slot s contains row index j' for the new count. It comes
	// from the chunk when j' ≥ count, otherwise the slot keeps its old content.
	newIndex := ringSlotIndex(Add(counts, nValid), W)               // [B,W]
	fromChunk := GreaterOrEqual(newIndex, ExpandAxes(counts, -1))   // [B,W]
	chunkPos := MaxScalar(Sub(newIndex, ExpandAxes(counts, -1)), 0) // [B,W]
	rows := Iota(g, shapes.Make(dtypes.Int32, batch, W, 1), 0)
	idx := Concatenate([]*Node{rows, MinScalar(ExpandAxes(chunkPos, -1), C-1)}, -1)
	sel := BroadcastToDims(Reshape(fromChunk, batch, W, 1, 1), keyCache.Shape().Dimensions...)
	newKeys = Where(sel, Gather(k, idx), keyCache)
	newValues = Where(sel, Gather(v, idx), valueCache)
	return out, newKeys, newValues
}
