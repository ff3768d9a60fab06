package train

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/rgemma-toolkit/rgemma/rgemma"
)

// accumScope holds the gradient accumulators, one per trainable variable.
const accumScope = "/train/accum"

// steps holds the compiled graphs of a run. A training step is one
// accumulate call per micro-batch and then one apply call, so gradient
// accumulation needs no larger graphs:
//
//	accumulate(ids, positions, valid) -> loss, count:  accum += d(sum of token losses)
//	apply(lr) -> grad_norm:  g = accum/count, clipped to ClipNorm, AdamW update, accum = 0
type steps struct {
	cfg        *rgemma.Config
	trainable  []*mlctx.Variable
	accum      []*mlctx.Variable
	accumCount *mlctx.Variable
	accumulate *mlctx.Exec
	apply      *mlctx.Exec
	evaluate   *mlctx.Exec
}

func newSteps(m *rgemma.Model, c *Config) (*steps, error) {
	s := &steps{cfg: m.Config, trainable: trainableVariables(m.Context)}
	if len(s.trainable) == 0 {
		return nil, fmt.Errorf("no trainable parameters: the freeze patterns froze everything")
	}
	accumCtx := m.Context.InAbsPath(accumScope)
	for i, v := range s.trainable {
		a := accumCtx.VariableWithValue(fmt.Sprintf("g%04d", i), tensors.FromShape(v.Shape()))
		a.SetTrainable(false)
		s.accum = append(s.accum, a)
	}
	s.accumCount = accumCtx.VariableWithValue("count", float32(0))
	s.accumCount.SetTrainable(false)

	optimizer := optimizers.Adam().Betas(c.Beta1, c.Beta2).WeightDecay(c.WeightDecay).LearningRate(c.LearningRate).Done()
	adam, ok := optimizer.(interface {
		UpdateGraphWithGradients(ctx *mlctx.Context, grads []*Node, lossDType dtypes.DType)
	})
	if !ok {
		return nil, fmt.Errorf("the GoMLX Adam optimizer does not expose UpdateGraphWithGradients")
	}

	var err error
	s.accumulate, err = mlctx.NewExec(m.Backend, m.Context.Checked(false), func(ctx *mlctx.Context, ids, positions, valid *Node) (*Node, *Node) {
		g := ids.Graph()
		logits := rgemma.Forward(ctx, s.cfg, ids, positions).Logits
		loss, count := rgemma.NextTokenLoss(logits, ids, positions, valid)
		params := make([]*Node, len(s.trainable))
		for i, v := range s.trainable {
			params[i] = v.ValueGraph(g)
		}
		grads := Gradient(Mul(loss, count), params...)
		for i, a := range s.accum {
			a.SetValueGraph(Add(a.ValueGraph(g), grads[i]))
		}
		s.accumCount.SetValueGraph(Add(s.accumCount.ValueGraph(g), count))
		return loss, count
	})
	if err != nil {
		return nil, err
	}

	s.apply, err = mlctx.NewExec(m.Backend, m.Context.Checked(false), func(ctx *mlctx.Context, lr *Node) *Node {
		g := lr.Graph()
		// The optimizer updates the trainable variables that the graph uses.
		for _, v := range s.trainable {
			v.ValueGraph(g)
		}
		count := MaxScalar(s.accumCount.ValueGraph(g), 1)
		grads := make([]*Node, len(s.accum))
		sumSquares := ScalarZero(g, dtypes.Float32)
		for i, a := range s.accum {
			grads[i] = Div(a.ValueGraph(g), count)
			sumSquares = Add(sumSquares, ReduceAllSum(Square(grads[i])))
		}
		norm := Sqrt(sumSquares)
		if c.ClipNorm > 0 {
			scale := MinScalar(Div(Scalar(g, dtypes.Float32, c.ClipNorm), MaxScalar(norm, 1e-12)), 1)
			for i := range grads {
				grads[i] = Mul(grads[i], scale)
			}
		}
		optimizers.LearningRateVar(ctx, dtypes.Float32, c.LearningRate).SetValueGraph(lr)
		adam.UpdateGraphWithGradients(ctx, grads, dtypes.Float32)
		for _, a := range s.accum {
			a.SetValueGraph(ZerosLike(a.ValueGraph(g)))
		}
		s.accumCount.SetValueGraph(ScalarZero(g, dtypes.Float32))
		return norm
	})
	if err != nil {
		return nil, err
	}

	s.evaluate, err = newEvalExec(m)
	return s, err
}

// batchTensors converts a batch to [B,T] tensors.
func batchTensors(ids, positions [][]int32, valid [][]bool) (*tensors.Tensor, *tensors.Tensor, *tensors.Tensor) {
	B, T := len(ids), len(ids[0])
	flatIDs := make([]int32, 0, B*T)
	flatPos := make([]int32, 0, B*T)
	flatValid := make([]bool, 0, B*T)
	for b := range ids {
		flatIDs = append(flatIDs, ids[b]...)
		flatPos = append(flatPos, positions[b]...)
		flatValid = append(flatValid, valid[b]...)
	}
	return tensors.FromFlatDataAndDimensions(flatIDs, B, T),
		tensors.FromFlatDataAndDimensions(flatPos, B, T),
		tensors.FromFlatDataAndDimensions(flatValid, B, T)
}

// scalar reads a float32 scalar tensor and releases it.
func scalar(t *tensors.Tensor) float64 {
	v := tensors.ToScalar[float32](t)
	t.FinalizeAll()
	return float64(v)
}

// newEvalExec compiles the forward pass and loss of m: (ids, positions,
// valid) -> (mean loss, counted tokens).
func newEvalExec(m *rgemma.Model) (*mlctx.Exec, error) {
	return mlctx.NewExec(m.Backend, m.Context.Reuse(), func(ctx *mlctx.Context, ids, positions, valid *Node) (*Node, *Node) {
		logits := rgemma.Forward(ctx, m.Config, ids, positions).Logits
		return rgemma.NextTokenLoss(logits, ids, positions, valid)
	})
}
