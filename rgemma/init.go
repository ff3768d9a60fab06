package rgemma

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// InitRandom sets every parameter from the initialisation of the original
// Griffin model (see ParamSpec.Init), with w_init_variance_scale and
// final_w_init_variance_scale from the config. Parameter i draws from its own
// PCG stream seeded by (seed, i), so the result does not depend on the
// number of goroutines.
//
// The Hugging Face _init_weights differs: it gives the embedding and the MLP
// projections std sqrt(w_init_variance_scale/conv1d_width).
func (m *Model) InitRandom(seed uint64) error {
	specs := m.Config.Params()
	values := make([][]float32, len(specs))

	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				values[i] = sampleParam(specs[i], rand.New(rand.NewPCG(seed, uint64(i))))
			}
		}()
	}
	for i := range specs {
		next <- i
	}
	close(next)
	wg.Wait()

	for i, spec := range specs {
		if err := m.setTensor(spec, tensors.FromFlatDataAndDimensions(values[i], spec.Shape...)); err != nil {
			return fmt.Errorf("initialising %q: %w", spec.Name, err)
		}
		values[i] = nil
	}
	return nil
}

// sampleParam draws the initial values of one parameter.
func sampleParam(spec ParamSpec, rng *rand.Rand) []float32 {
	out := make([]float32, spec.Size())
	switch spec.Init {
	case InitNormal:
		for i := range out {
			out[i] = float32(rng.NormFloat64() * spec.Std)
		}
	case InitRecurrentParam:
		// u ~ U[0.9², 0.999²]; softplus(param) = -0.5·log(u), so the decay
		// a = exp(-8·gate·softplus(param)) starts between 0.9 and 0.999 when
		// 8·gate = 1.
		lo, hi := 0.9*0.9, 0.999*0.999
		for i := range out {
			u := lo + (hi-lo)*rng.Float64()
			out[i] = float32(math.Log(math.Expm1(-0.5 * math.Log(u))))
		}
	case InitZeros:
	}
	return out
}
