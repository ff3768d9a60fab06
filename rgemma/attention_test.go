package rgemma

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// TestBlockedAttentionMatchesFull checks that attention computed block by
// block gives the values and gradients of the single masked product, for
// query blocks of 1, W/2 and W tokens, with documents that start inside a
// block and on a block boundary.
func TestBlockedAttentionMatchesFull(t *testing.T) {
	backend := backendForTest(t)
	const B, W, KV, G, hd = 2, 4, 2, 2, 3
	for _, nb := range []int{3, 5} {
		T := nb * W
		rng := rand.New(rand.NewPCG(uint64(nb), 11))
		// Row 0 holds one document; row 1 starts new ones at 6 and at 2W.
		positions := make([]int32, B*T)
		for i := 0; i < T; i++ {
			positions[i] = int32(i)
			switch {
			case i >= 2*W:
				positions[T+i] = int32(i - 2*W)
			case i >= 6:
				positions[T+i] = int32(i - 6)
			default:
				positions[T+i] = int32(i)
			}
		}
		q, k, v := randomTensor(rng, B, T, KV*G, hd), randomTensor(rng, B, T, KV, hd), randomTensor(rng, B, T, KV, hd)
		weights := randomTensor(rng, B, T, KV, G, hd)
		pos := tensors.FromFlatDataAndDimensions(positions, B, T)

		for _, Q := range []int{1, 2, W} {
			outs := MustExecOnceN(backend, func(q, k, v, weights, pos *Node) []*Node {
				docIDs := documentIDs(ConvertDType(pos, dtypes.Int32))
				full := fullLocalAttention(q, k, v, docIDs, W, G)
				blocked := blockedLocalAttention(q, k, v, docIDs, W, Q, G)
				results := []*Node{full}
				results = append(results, Gradient(ReduceAllSum(Mul(full, weights)), q, k, v)...)
				results = append(results, blocked)
				return append(results, Gradient(ReduceAllSum(Mul(blocked, weights)), q, k, v)...)
			}, q, k, v, weights, pos)
			for i, name := range []string{"output", "d/dq", "d/dk", "d/dv"} {
				requireClose(t, fmt.Sprintf("T=%d Q=%d %s", T, Q, name), flat(t, outs[i]), flat(t, outs[4+i]), 1e-5, 1e-5)
			}
		}
	}
}
