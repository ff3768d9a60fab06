package rgemma

import (
	"fmt"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Model is a RecurrentGemma model: its config, the backend that runs it and a
// GoMLX context that holds the weights under their Hugging Face names
// ("model.layers.0.mlp_block.up_proj.weight" is scope
// "/model/layers/0/mlp_block/up_proj", variable "weight").
type Model struct {
	Config  *Config
	Backend backends.Backend
	Context *context.Context

	forwardExec   *BatchExec
	stepExecCache *context.Exec
	batchMesh     *distributed.DeviceMesh // The mesh that the model's BatchExecs share.
}

// NewModel returns a model without weights; set them with SetParam, InitRandom
// or use LoadModel.
func NewModel(backend backends.Backend, cfg *Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Model{Config: cfg.Clone(), Backend: backend, Context: context.New()}, nil
}

// SetParam stores the values of the parameter called name, which must be one
// of Config.Params, with its shape.
func (m *Model) SetParam(name string, values []float32) error {
	spec, ok := m.paramSpec(name)
	if !ok {
		return fmt.Errorf("%q is not a parameter of this model", name)
	}
	if int64(len(values)) != spec.Size() {
		return fmt.Errorf("parameter %q: got %d values, shape %v needs %d", name, len(values), spec.Shape, spec.Size())
	}
	return m.setTensor(spec, tensors.FromFlatDataAndDimensions(values, spec.Shape...))
}

func (m *Model) setTensor(spec ParamSpec, t *tensors.Tensor) error {
	scope, name := spec.ScopeAndName()
	if v := m.Context.GetVariableByScopeAndName(scope, name); v != nil {
		return v.SetValue(t)
	}
	m.Context.InAbsPath(scope).VariableWithValue(name, t)
	return nil
}

// Param returns a copy of the values of the parameter called name.
func (m *Model) Param(name string) ([]float32, error) {
	scope, varName := scopeAndName(name)
	v := m.Context.GetVariableByScopeAndName(scope, varName)
	if v == nil {
		return nil, fmt.Errorf("parameter %q is not loaded", name)
	}
	value, err := v.Value()
	if err != nil {
		return nil, fmt.Errorf("parameter %q: %w", name, err)
	}
	return tensors.CopyFlatData[float32](value)
}

func (m *Model) paramSpec(name string) (ParamSpec, bool) {
	for _, p := range m.Config.Params() {
		if p.Name == name {
			return p, true
		}
	}
	return ParamSpec{}, false
}

// CheckComplete returns an error naming every parameter that is not set.
func (m *Model) CheckComplete() error {
	var missing []string
	for _, p := range m.Config.Params() {
		scope, name := p.ScopeAndName()
		if m.Context.GetVariableByScopeAndName(scope, name) == nil {
			missing = append(missing, p.Name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%d model parameters are not set: %v", len(missing), missing)
	}
	return nil
}

// Inputs is a batch of token rows: IDs and Positions are [B][T], every row of
// the same length T. A position of 0 starts a document.
type Inputs struct {
	IDs       [][]int32
	Positions [][]int32
}

// SequentialPositions returns positions 0, 1, ..., T-1 for each row of ids:
// each row is one document.
func SequentialPositions(ids [][]int32) [][]int32 {
	out := make([][]int32, len(ids))
	for b, row := range ids {
		out[b] = make([]int32, len(row))
		for t := range row {
			out[b][t] = int32(t)
		}
	}
	return out
}

// Validate checks the batch shape and that every id lies in [0, vocabSize).
func (in Inputs) Validate(vocabSize int) error {
	if len(in.IDs) == 0 || len(in.IDs[0]) == 0 {
		return fmt.Errorf("empty input: need at least one row with at least one token")
	}
	if len(in.Positions) != len(in.IDs) {
		return fmt.Errorf("inputs have %d rows of ids but %d rows of positions", len(in.IDs), len(in.Positions))
	}
	T := len(in.IDs[0])
	for b := range in.IDs {
		if len(in.IDs[b]) != T || len(in.Positions[b]) != T {
			return fmt.Errorf("input row %d has %d ids and %d positions, expected %d of each (pad rows to one length)",
				b, len(in.IDs[b]), len(in.Positions[b]), T)
		}
		for t, id := range in.IDs[b] {
			if id < 0 || int(id) >= vocabSize {
				return fmt.Errorf("token id %d at row %d, index %d is out of range [0, vocab_size=%d)", id, b, t, vocabSize)
			}
			if in.Positions[b][t] < 0 {
				return fmt.Errorf("position %d at row %d, index %d is negative", in.Positions[b][t], b, t)
			}
		}
	}
	return nil
}

// Tensors returns the ids and positions as [B,T] int32 tensors.
func (in Inputs) Tensors() (ids, positions *tensors.Tensor) {
	return int32Matrix(in.IDs), int32Matrix(in.Positions)
}

func int32Matrix(rows [][]int32) *tensors.Tensor {
	T := len(rows[0])
	flat := make([]int32, 0, len(rows)*T)
	for _, row := range rows {
		flat = append(flat, row...)
	}
	return tensors.FromFlatDataAndDimensions(flat, len(rows), T)
}

// ForwardResult holds the host-side outputs of Model.Forward.
type ForwardResult struct {
	Logits *tensors.Tensor   // [B,T,V]
	Hidden []*tensors.Tensor // Hidden[i] [B,T,D]: output of residual block i.
}

// Forward runs the full-sequence forward pass. The graph is compiled once per
// input shape and cached. On a backend with several devices, a batch that
// divides by the device count is split over them, each with a copy of the
// weights, unless the weights exceed MaxReplicatedWeightBytes (see BatchExec).
func (m *Model) Forward(in Inputs) (*ForwardResult, error) {
	if err := in.Validate(m.Config.VocabSize); err != nil {
		return nil, err
	}
	if err := m.CheckComplete(); err != nil {
		return nil, err
	}
	if m.forwardExec == nil {
		exec, err := NewBatchExec(m, func(ctx *context.Context, ids, positions *Node) []*Node {
			out := Forward(ctx, m.Config, ids, positions)
			return append([]*Node{out.Logits}, out.Hidden...)
		})
		if err != nil {
			return nil, fmt.Errorf("building the forward graph: %w", err)
		}
		m.forwardExec = exec
	}
	ids, positions := in.Tensors()
	outputs, err := m.forwardExec.Exec(ids, positions)
	if err != nil {
		return nil, fmt.Errorf("running the forward pass: %w", err)
	}
	return &ForwardResult{Logits: outputs[0], Hidden: outputs[1:]}, nil
}
