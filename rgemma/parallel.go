package rgemma

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/distributed"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// MaxReplicatedWeightBytes is the largest model, in bytes of weights, whose
// batches NewBatchExec prepares to split over several devices. Each device
// then gets its own copy of the weights, which a 2B model (about 10 GiB of
// float32 weights) cannot afford on a machine of 24 GiB. Set it to 0 to never
// split.
var MaxReplicatedWeightBytes int64 = 1 << 30

// BatchExec runs a read-only graph of the model whose inputs and outputs all
// have the batch on axis 0, such as the forward pass. On a backend with more
// than one device, it splits the batch into equal parts, one per device, and
// runs them at once. Each device gets a copy of the weights and computes its
// own rows. The XLA CPU plugin has two devices on two or more cores (see
// CPUDevicesEnvVar). On 2 cores, the split made the forward pass at 4x512
// about 8% faster than the whole batch on one device (docs/xla.md).
//
// It runs the whole batch on the first device instead when there is one
// device, when the batch does not divide by the device count, or when the
// weights exceed MaxReplicatedWeightBytes. Both ways give the same values,
// since rows do not interact.
//
// The graph must not change any variable: a split graph would update one copy
// per device. A BatchExec is not safe for concurrent use.
type BatchExec struct {
	single  *context.Exec
	split   *context.Exec // The split graph, or nil when the batch is never split.
	spec    *distributed.ShardingSpec
	devices int
	// splitInputs is the number of inputs of the split graph, set at its
	// first call.
	splitInputs int
}

// NewBatchExec prepares graphFn (a function accepted by context.NewExec,
// taking the context and one *Node per input) for m's backend and weights.
// The graph is built and compiled at the first call of each input shape.
func NewBatchExec[F context.ExecGraphFn](m *Model, graphFn F) (*BatchExec, error) {
	single, err := context.NewExec(m.Backend, m.Context.Reuse(), graphFn)
	if err != nil {
		return nil, err
	}
	e := &BatchExec{single: single, devices: m.Backend.NumDevices()}
	if e.devices < 2 || m.weightBytes() > MaxReplicatedWeightBytes {
		return e, nil
	}

	// All split graphs of a model share one mesh: the context's default
	// sharding, which replicates the weights, refers to it.
	if m.batchMesh == nil {
		if m.batchMesh, err = distributed.NewDeviceMesh([]int{e.devices}, []string{"batch"}); err != nil {
			return nil, err
		}
	}
	if e.spec, err = distributed.BuildSpec(m.batchMesh).S("batch").Done(); err != nil {
		return nil, err
	}

	split, err := context.NewExec(m.Backend, m.Context.Reuse(), graphFn)
	if err != nil {
		return nil, err
	}
	// Inputs and outputs get their batch split. AutoSharding makes replication
	// the context's default, which covers the weights. The input specs are
	// set at the first call, when their count is known. GoMLX repeats the
	// last output spec for every output when it compiles.
	e.split = split.AutoSharding(m.batchMesh).WithOutputShardingSpecs(e.spec)
	return e, nil
}

// Splits reports whether a batch of the given size runs split over the
// devices.
func (e *BatchExec) Splits(batch int) bool {
	return e.split != nil && batch%e.devices == 0
}

// WholeReason returns why a batch of the given size runs whole on a backend
// with several devices, or "" when it is split or the backend has one device.
func (e *BatchExec) WholeReason(batch int) string {
	switch {
	case e.devices < 2:
		return ""
	case e.split == nil:
		return fmt.Sprintf("weights above rgemma.MaxReplicatedWeightBytes (%d)", MaxReplicatedWeightBytes)
	case batch%e.devices != 0:
		return fmt.Sprintf("%d rows do not divide by %d devices", batch, e.devices)
	}
	return ""
}

// Devices returns the number of devices a batch of the given size runs on:
// all of the backend's when it is split, else 1.
func (e *BatchExec) Devices(batch int) int {
	if e.Splits(batch) {
		return e.devices
	}
	return 1
}

// Exec runs the graph on inputs whose axis 0 is the batch and returns its
// outputs, whole.
func (e *BatchExec) Exec(inputs ...*tensors.Tensor) ([]*tensors.Tensor, error) {
	if len(inputs) == 0 || inputs[0].Rank() == 0 || !e.Splits(inputs[0].Shape().Dimensions[0]) {
		return e.single.Exec(toAny(inputs)...)
	}
	if e.splitInputs == 0 {
		specs := make([]*distributed.ShardingSpec, len(inputs))
		for i := range specs {
			specs[i] = e.spec
		}
		e.split.WithInputShardingSpecs(specs...)
		e.splitInputs = len(inputs)
	} else if e.splitInputs != len(inputs) {
		return nil, fmt.Errorf("the graph was first run with %d inputs, now with %d", e.splitInputs, len(inputs))
	}
	parts := make([]any, len(inputs))
	for i, in := range inputs {
		d, err := distributed.ShardTensor(e.spec, in)
		if err != nil {
			return nil, fmt.Errorf("splitting input %d (shape %s) over %d devices: %w", i, in.Shape(), e.devices, err)
		}
		parts[i] = d
	}
	outs, err := e.split.DistributedExec(parts...)
	for _, p := range parts {
		p.(*distributed.Tensor).FinalizeAll() // The parts are copies made by ShardTensor.
	}
	if err != nil {
		return nil, err
	}
	merged := make([]*tensors.Tensor, len(outs))
	for i, out := range outs {
		// GoMLX v0.26.0 labels the outputs after the first as replicated,
		// though they were compiled split like the first: label them again.
		d, err := distributed.NewTensor(e.spec, out.Shards())
		if err == nil {
			merged[i], err = d.Merge()
		}
		if err != nil {
			return nil, fmt.Errorf("joining output %d from %d devices: %w", i, e.devices, err)
		}
		for _, s := range out.Shards() {
			s.FinalizeAll()
		}
	}
	return merged, nil
}

func toAny(ts []*tensors.Tensor) []any {
	out := make([]any, len(ts))
	for i, t := range ts {
		out[i] = t
	}
	return out
}

// weightBytes returns the size of the model's variables in bytes.
func (m *Model) weightBytes() int64 {
	var n int64
	for v := range m.Context.IterVariables() {
		n += int64(v.Shape().Memory())
	}
	return n
}
