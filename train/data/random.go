package data

import (
	"math/bits"
	"math/rand/v2"
)

// splitStream is the second PCG seed word of Split. A Batcher uses the epoch
// number there, so Split and a Batcher draw different streams from one seed.
const splitStream = 0x73706c6974 // "split" in ASCII

// permutation returns a random permutation of [0, n) drawn from
// PCG(seed1, seed2). It implements Fisher-Yates itself, rather than calling
// rand.Perm, so the order depends only on PCG's output.
func permutation(n int, seed1, seed2 uint64) []int {
	src := rand.NewPCG(seed1, seed2)
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := int(uniformBelow(src, uint64(i+1)))
		perm[i], perm[j] = perm[j], perm[i]
	}
	return perm
}

// uniformBelow returns a uniform value in [0, n) for n > 0. It takes the high
// word of the 128-bit product of a random word and n, and rejects the draws
// whose low word falls below 2^64 mod n, which would bias the result.
func uniformBelow(src *rand.PCG, n uint64) uint64 {
	hi, lo := bits.Mul64(src.Uint64(), n)
	if lo < n {
		threshold := -n % n // 2^64 mod n
		for lo < threshold {
			hi, lo = bits.Mul64(src.Uint64(), n)
		}
	}
	return hi
}
