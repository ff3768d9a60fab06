package rgemma

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// SamplingOptions choose the next token from the logits.
type SamplingOptions struct {
	// Temperature divides the logits; 0 means greedy (the arg max).
	Temperature float64
	// TopK keeps the K most likely tokens; 0 keeps all.
	TopK int
	// TopP keeps the smallest set of most likely tokens whose probabilities
	// sum to at least TopP; 0 or 1 keeps all.
	TopP float64
	// Seed makes sampling repeatable: the same seed, options and model give
	// the same tokens.
	Seed uint64
}

// Validate checks the ranges of the options.
func (o SamplingOptions) Validate() error {
	switch {
	case o.Temperature < 0 || math.IsNaN(o.Temperature):
		return fmt.Errorf("temperature must be >= 0 (0 is greedy), got %g", o.Temperature)
	case o.TopK < 0:
		return fmt.Errorf("top-k must be >= 0 (0 disables it), got %d", o.TopK)
	case o.TopP < 0 || o.TopP > 1 || math.IsNaN(o.TopP):
		return fmt.Errorf("top-p must be in [0, 1] (0 or 1 disables it), got %g", o.TopP)
	}
	return nil
}

// Sampler draws tokens from logits with fixed options and its own random stream.
type Sampler struct {
	opts SamplingOptions
	rng  *rand.Rand
}

// NewSampler returns a sampler whose random stream is (opts.Seed, stream):
// give each batch row its own stream.
func NewSampler(opts SamplingOptions, stream uint64) *Sampler {
	return &Sampler{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, stream))}
}

// Sample returns the next token for one row of logits [V].
func (s *Sampler) Sample(logits []float32) int32 {
	if s.opts.Temperature == 0 {
		return argMax(logits)
	}

	// Candidates sorted by decreasing logit (ties by id for determinism).
	ids := make([]int32, len(logits))
	for i := range ids {
		ids[i] = int32(i)
	}
	sort.SliceStable(ids, func(a, b int) bool { return logits[ids[a]] > logits[ids[b]] })
	if s.opts.TopK > 0 && s.opts.TopK < len(ids) {
		ids = ids[:s.opts.TopK]
	}

	// Softmax of logits / T over the candidates, in float64.
	probs := make([]float64, len(ids))
	top := float64(logits[ids[0]])
	var sum float64
	for i, id := range ids {
		probs[i] = math.Exp((float64(logits[id]) - top) / s.opts.Temperature)
		sum += probs[i]
	}
	for i := range probs {
		probs[i] /= sum
	}
	if p := s.opts.TopP; p > 0 && p < 1 {
		var cum float64
		for i := range probs {
			cum += probs[i]
			if cum >= p {
				ids, probs = ids[:i+1], probs[:i+1]
				break
			}
		}
		sum = cum
	} else {
		sum = 1
	}

	r := s.rng.Float64() * sum
	for i, pr := range probs {
		r -= pr
		if r < 0 {
			return ids[i]
		}
	}
	return ids[len(ids)-1]
}

// argMax returns the index of the largest value (the first one on ties).
func argMax(values []float32) int32 {
	best := 0
	for i, v := range values {
		if v > values[best] {
			best = i
		}
	}
	return int32(best)
}
