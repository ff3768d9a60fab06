//go:build prof

// Profiling aids for the XLA CPU backend, kept out of the normal test run by
// the prof build tag. They print times, not assertions. Run with the malloc
// settings that the rgemma command uses, for example:
//
//	GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=1099511627776 \
//	  go test -tags prof -run 'TestProfile$' -v ./rgemma
//
// TestProfile times pieces of the small preset alone. TestProfileAB compares
// two variants of the model (here the rotary embeddings by Slice and by the
// swap product) inside one process, in pairs of neighbouring calls. Only such
// a comparison stays meaningful on a machine whose speed drifts.
// TestProfileTrainLoop and TestProfileForwardLoop repeat one graph for
// `perf record`. TestProfileSplitDevices and TestProfileSplitGradient compare
// one device with a batch split over several (BatchExec).

package rgemma

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/distributed"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/stretchr/testify/require"
)

var profReps = 5

func randTensor(dims ...int) *tensors.Tensor {
	return randomTensor(rand.New(rand.NewPCG(3, 4)), dims...)
}

// profModel returns the small preset with random weights on the test backend.
func profModel(t *testing.T) (*Config, backends.Backend, *Model) {
	cfg, err := Preset("small")
	require.NoError(t, err)
	backend := backendForTest(t)
	m, err := NewModel(backend, cfg)
	require.NoError(t, err)
	require.NoError(t, m.InitRandom(1))
	return cfg, backend, m
}

func timeExec(t *testing.T, name string, flops float64, exec *context.Exec, args ...any) {
	_, err := exec.Exec(args...)
	require.NoError(t, err)
	best := time.Duration(1 << 62)
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	wall0 := time.Now()
	for range profReps {
		start := time.Now()
		out, err := exec.Exec(args...)
		require.NoError(t, err)
		for _, o := range out {
			o.FinalizeAll()
		}
		if d := time.Since(start); d < best {
			best = d
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	fmt.Printf("%-40s %8.2f ms  %6.1f GFLOP/s  cpu/wall %.2f\n", name, best.Seconds()*1000, flops/best.Seconds()/1e9, cpu.Seconds()/time.Since(wall0).Seconds())
}

// attentionCoreInputs cuts the attention inputs of the small preset out of
// x [B,T,256]: q [B,T,4,64], k and v [B,T,1,64], and the document ids of the
// positions pos [B,T].
func attentionCoreInputs(x, pos *Node) (q, k, v, docIDs *Node) {
	B, T := x.Shape().Dimensions[0], x.Shape().Dimensions[1]
	q = Reshape(x, B, T, 4, 64)
	k = Reshape(SliceAxis(x, 2, AxisRange(0, 64)), B, T, 1, 64)
	v = Reshape(SliceAxis(x, 2, AxisRange(64, 128)), B, T, 1, 64)
	return q, k, v, documentIDs(ConvertDType(pos, dtypes.Int32))
}

// TestProfile times pieces of the small preset on the test backend.
func TestProfile(t *testing.T) {
	cfg, backend, m := profModel(t)
	ctx := m.Context.Reuse()

	for _, bt := range [][2]int{{4, 512}, {4, 256}} {
		B, T := bt[0], bt[1]
		N := float64(B * T)
		x := randTensor(B, T, 256)
		pos := tensors.FromFlatDataAndDimensions(make([]int32, B*T), B, T)
		{
			p := make([]int32, B*T)
			for i := range p {
				p[i] = int32(i % T)
			}
			pos = tensors.FromFlatDataAndDimensions(p, B, T)
		}
		ids := randomInputs(B, T, 256)
		idsT, posT := ids.Tensors()
		tag := fmt.Sprintf("%dx%d", B, T)

		mk := func(f func(ctx *context.Context, x, pos *Node) *Node, grad bool) *context.Exec {
			e, err := context.NewExec(backend, ctx, func(ctx *context.Context, x, pos *Node) []*Node {
				out := f(ctx, x, pos)
				if !grad {
					return []*Node{out}
				}
				loss := ReduceAllSum(Mul(out, out))
				wrt := []*Node{x}
				for v := range ctx.IterVariables() {
					if v.Trainable && v.InUseByGraph(x.Graph()) {
						wrt = append(wrt, v.ValueGraph(x.Graph()))
					}
				}
				return Gradient(loss, wrt...)
			})
			require.NoError(t, err)
			return e
		}
		pieces := []struct {
			name  string
			flops float64
			f     func(ctx *context.Context, x, pos *Node) *Node
		}{
			{"matmul 256->768", 2 * 256 * 768 * N, func(ctx *context.Context, x, pos *Node) *Node {
				return linearParam(ctx, x, "model.layers.0.mlp_block.gate_proj", true)
			}},
			{"mlp", 3 * 2 * 256 * 768 * N, func(ctx *context.Context, x, pos *Node) *Node {
				return mlpBlock(ctx, x, "model.layers.0.mlp_block")
			}},
			{"rmsnorm", 0, func(ctx *context.Context, x, pos *Node) *Node {
				return rmsNorm(x, param(ctx, x.Graph(), "model.layers.0.channel_pre_norm.weight"), 1e-6)
			}},
			{"recurrent block", 458e3 * N, func(ctx *context.Context, x, pos *Node) *Node {
				p := ConvertDType(pos, dtypes.Int32)
				out, _ := recurrentBlock(ctx, x, Equal(p, ZerosLike(p)), documentIDs(p), "model.layers.0.temporal_block")
				return out
			}},
			{"conv1d", 0, func(ctx *context.Context, x, pos *Node) *Node {
				p := ConvertDType(pos, dtypes.Int32)
				g := x.Graph()
				return causalConv1D(x, param(ctx, g, "model.layers.0.temporal_block.conv_1d.weight"), param(ctx, g, "model.layers.0.temporal_block.conv_1d.bias"), documentIDs(p))
			}},
			{"rglru", 65e3 * N, func(ctx *context.Context, x, pos *Node) *Node {
				p := ConvertDType(pos, dtypes.Int32)
				return rgLRU(ctx, x, Equal(p, ZerosLike(p)), nil, "model.layers.0.temporal_block.rg_lru").H
			}},
			{"blockdiag x2", 0, func(ctx *context.Context, x, pos *Node) *Node {
				g := x.Graph()
				pre := "model.layers.0.temporal_block.rg_lru"
				return Add(blockDiagonal(x, param(ctx, g, pre+".input_gate_weight"), param(ctx, g, pre+".input_gate_bias")),
					blockDiagonal(x, param(ctx, g, pre+".recurrent_gate_weight"), param(ctx, g, pre+".recurrent_gate_bias")))
			}},
			{"rope q", 0, func(ctx *context.Context, x, pos *Node) *Node {
				p := ConvertDType(pos, dtypes.Int32)
				return applyRoPE(cfg, Reshape(x, 4, -1, 4, 64), p)
			}},
			{"attn core blocked", 0, func(ctx *context.Context, x, pos *Node) *Node {
				q, k, v, docIDs := attentionCoreInputs(x, pos)
				return blockedLocalAttention(q, k, v, docIDs, 128, attentionQueryBlock, 4)
			}},
			{"attn core full", 0, func(ctx *context.Context, x, pos *Node) *Node {
				q, k, v, docIDs := attentionCoreInputs(x, pos)
				return fullLocalAttention(q, k, v, docIDs, 128, 4)
			}},
			{"scan", 0, func(ctx *context.Context, x, pos *Node) *Node {
				return linearScan(Sigmoid(x), x)
			}},
			{"embed", 0, func(ctx *context.Context, x, pos *Node) *Node {
				ids := ConvertDType(pos, dtypes.Int32)
				return Mul(embed(ctx, cfg, ids), x)
			}},
			{"lmhead+loss", 0, func(ctx *context.Context, x, pos *Node) *Node {
				p := ConvertDType(pos, dtypes.Int32)
				loss, _ := NextTokenLoss(lmHead(ctx, cfg, x), p, p, nil)
				return loss
			}},
			{"attention block", (328e3 + 4*256*float64(T)) * N, func(ctx *context.Context, x, pos *Node) *Node {
				p := ConvertDType(pos, dtypes.Int32)
				return attentionBlock(ctx, cfg, x, p, documentIDs(p), "model.layers.2.temporal_block")
			}},
		}
		for _, p := range pieces {
			timeExec(t, tag+" fwd "+p.name, p.flops, mk(p.f, false), x, pos)
			timeExec(t, tag+" f+b "+p.name, 3*p.flops, mk(p.f, true), x, pos)
		}
		timeExec(t, tag+" full forward", 10.75e6*N, forwardExec(t, m), idsT, posT)
		timeExec(t, tag+" full loss+grad", 3*10.2e6*N, lossGradientExec(t, m), idsT, posT)
	}
}

func TestProfileScan(t *testing.T) {
	backend := backendForTest(t)
	for _, T := range []int{256, 512} {
		a := randTensor(4, T, 256)
		x := randTensor(4, T, 256)
		tag := fmt.Sprintf("4x%d", T)
		mk := func(f func(a, x *Node) *Node) *context.Exec {
			e, err := context.NewExec(backend, context.New(), func(ctx *context.Context, a, x *Node) *Node {
				return f(Sigmoid(a), x)
			})
			require.NoError(t, err)
			return e
		}
		timeExec(t, tag+" linearScan", 0, mk(linearScan), a, x)
		timeExec(t, tag+" blockedScan", 0, mk(func(a, x *Node) *Node { return blockedScan(a, x, false) }), a, x)
		timeExec(t, tag+" blockedScan reverse", 0, mk(func(a, x *Node) *Node { return blockedScan(a, x, true) }), a, x)
	}
}

func TestProfileDots(t *testing.T) {
	backend := backendForTest(t)
	const N = 1024
	profReps = 30
	for _, F := range []int{256, 512, 768} {
		x := randTensor(N, 256)
		w := randTensor(F, 256)
		dy := randTensor(N, F)
		flops := 2 * float64(N*256*F)
		mk := func(f func(a, b *Node) *Node) *context.Exec {
			e, err := context.NewExec(backend, context.New(), func(ctx *context.Context, a, b *Node) *Node { return f(a, b) })
			require.NoError(t, err)
			return e
		}
		timeExec(t, fmt.Sprintf("F=%d fwd x·wT", F), flops, mk(func(a, b *Node) *Node { return dotGeneral(a, []int{1}, nil, b, []int{1}, nil) }), x, w)
		wt := randTensor(256, F)
		timeExec(t, fmt.Sprintf("F=%d fwd x·w", F), flops, mk(func(a, b *Node) *Node { return dotGeneral(a, []int{1}, nil, b, []int{0}, nil) }), x, wt)
		timeExec(t, fmt.Sprintf("F=%d bwd dx = dy·w", F), flops, mk(func(a, b *Node) *Node { return dotGeneral(a, []int{1}, nil, b, []int{0}, nil) }), dy, w)
		timeExec(t, fmt.Sprintf("F=%d bwd dw = dyT·x", F), flops, mk(func(a, b *Node) *Node { return dotGeneral(a, []int{0}, nil, b, []int{0}, nil) }), dy, x)
		timeExec(t, fmt.Sprintf("F=%d bwd dwT = xT·dy", F), flops, mk(func(a, b *Node) *Node { return dotGeneral(a, []int{0}, nil, b, []int{0}, nil) }), x, dy)
	}
}

type gradOpt interface {
	UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType)
}

// forwardExec compiles the forward pass of m that returns the logits only.
func forwardExec(t *testing.T, m *Model) *context.Exec {
	exec, err := context.NewExec(m.Backend, m.Context.Reuse(), func(ctx *context.Context, ids, positions *Node) *Node {
		return Forward(ctx, m.Config, ids, positions).Logits
	})
	require.NoError(t, err)
	return exec
}

// lossGradientExec compiles the loss and the gradients of every trainable
// variable of m.
func lossGradientExec(t *testing.T, m *Model) *context.Exec {
	exec, err := context.NewExec(m.Backend, m.Context.Reuse(), func(ctx *context.Context, ids, positions *Node) []*Node {
		out := Forward(ctx, m.Config, ids, positions)
		loss, _ := NextTokenLoss(out.Logits, ids, positions, nil)
		return append([]*Node{loss}, ctx.BuildTrainableVariablesGradientsGraph(loss)...)
	})
	require.NoError(t, err)
	return exec
}

// trainStepExec compiles the training step of `rgemma bench`: loss,
// gradients and the AdamW update of opt.
func trainStepExec(t *testing.T, m *Model, opt gradOpt) *context.Exec {
	exec, err := context.NewExec(m.Backend, m.Context.Checked(false), func(ctx *context.Context, ids, positions *Node) *Node {
		out := Forward(ctx, m.Config, ids, positions)
		loss, _ := NextTokenLoss(out.Logits, ids, positions, nil)
		opt.UpdateGraphWithGradients(ctx, ctx.BuildTrainableVariablesGradientsGraph(loss), dtypes.Float32)
		return loss
	})
	require.NoError(t, err)
	return exec
}

func TestProfileTrainStep(t *testing.T) {
	_, backend, m := profModel(t)
	idsT, posT := randomInputs(4, 256, 256).Tensors()
	profReps = 10

	lossGradient := lossGradientExec(t, m)
	timeExec(t, "4x256 loss+grad", 0, lossGradient, idsT, posT)

	opt := optimizers.Adam().WeightDecay(0.1).Done().(gradOpt)
	timeExec(t, "4x256 train step", 0, trainStepExec(t, m, opt), idsT, posT)

	adamOnly, err := context.NewExec(backend, m.Context.Checked(false), func(ctx *context.Context, ids *Node) *Node {
		var grads []*Node
		for v := range ctx.IterVariables() {
			if v.Trainable {
				grads = append(grads, MulScalar(v.ValueGraph(ids.Graph()), 1e-3))
			}
		}
		opt.UpdateGraphWithGradients(ctx, grads, dtypes.Float32)
		return ReduceAllSum(ids)
	})
	require.NoError(t, err)
	timeExec(t, "adam only", 0, adamOnly, idsT)
	timeExec(t, "4x256 loss+grad", 0, lossGradient, idsT, posT)
}

func TestProfileTrainLoop(t *testing.T) {
	_, _, m := profModel(t)
	idsT, posT := randomInputs(4, 256, 256).Tensors()
	step := trainStepExec(t, m, optimizers.Adam().WeightDecay(0.1).Done().(gradOpt))
	_, err := step.Exec(idsT, posT)
	require.NoError(t, err)
	fmt.Println("compiled")

	profReps = 40
	timeExec(t, "4x256 train step", 0, step, idsT, posT)
}

func TestProfileAB(t *testing.T) {
	// Compile both variants first: a graph is built at its first call, so
	// the switch must hold its value until then.
	_, _, m := profModel(t)
	idsT, posT := randomInputs(4, 512, 256).Tensors()
	idsT2, posT2 := randomInputs(4, 256, 256).Tensors()
	variants := []bool{false, true} // useSlicedRoPE
	fwd := make([]*context.Exec, len(variants))
	fb := make([]*context.Exec, len(variants))
	for i, sliced := range variants {
		useSlicedRoPE = sliced
		fwd[i] = forwardExec(t, m)
		_, err := fwd[i].Exec(idsT, posT)
		require.NoError(t, err)
		fb[i] = lossGradientExec(t, m)
		_, err = fb[i].Exec(idsT2, posT2)
		require.NoError(t, err)
	}
	useSlicedRoPE = true

	pairedAB(t, "fwd 4x512 (a: RoPE by swap product, b: sliced)", 30, fwd[0], fwd[1], idsT, posT)
	pairedAB(t, "f+b 4x256 (a: RoPE by swap product, b: sliced)", 16, fb[0], fb[1], idsT2, posT2)
}

// pairedAB times n pairs of single calls of a and b, alternating which goes
// first, and prints the median ratio b/a with its quartiles. Neighbouring
// calls cancel most of the drift of a shared machine, whose speed changed by
// up to 30% within a minute here.
func pairedAB(t *testing.T, name string, n int, a, b *context.Exec, args ...any) {
	pairedCalls(name, n, execCall(t, a, args...), execCall(t, b, args...))
}

// execCall returns a function that runs e on args and frees the outputs.
func execCall(t *testing.T, e *context.Exec, args ...any) func() {
	return func() {
		out, err := e.Exec(args...)
		require.NoError(t, err)
		for _, o := range out {
			o.FinalizeAll()
		}
	}
}

// pairedCalls times and prints n pairs of calls of a and b like pairedAB,
// for any two functions.
func pairedCalls(name string, n int, a, b func()) {
	call := func(f func()) float64 {
		start := time.Now()
		f()
		return time.Since(start).Seconds() * 1000
	}
	call(a)
	call(b)
	var ratios, timesA, timesB []float64
	for i := range n {
		var ta, tb float64
		if i%2 == 0 {
			ta, tb = call(a), call(b)
		} else {
			tb, ta = call(b), call(a)
		}
		ratios = append(ratios, tb/ta)
		timesA = append(timesA, ta)
		timesB = append(timesB, tb)
	}
	slices.Sort(ratios)
	slices.Sort(timesA)
	slices.Sort(timesB)
	fmt.Printf("%s: b/a median %.3f (quartiles %.3f, %.3f); a median %.1f ms, b median %.1f ms\n",
		name, ratios[n/2], ratios[n/4], ratios[3*n/4], timesA[n/2], timesB[n/2])
}

func TestProfileForwardLoop(t *testing.T) {
	_, _, m := profModel(t)
	idsT, posT := randomInputs(4, 512, 256).Tensors()
	fwd := forwardExec(t, m)
	_, err := fwd.Exec(idsT, posT)
	require.NoError(t, err)
	profReps = 60
	timeExec(t, "4x512 forward", 0, fwd, idsT, posT)
}

// TestProfileKernelChain times chains of n small steps that XLA compiles as
// separate kernels (a reduce between elementwise operations keeps them
// apart), to estimate the cost of running one kernel.
func TestProfileKernelChain(t *testing.T) {
	backend := backendForTest(t)
	profReps = 20
	for _, n := range []int{10, 200} {
		exec, err := context.NewExec(backend, context.New(), func(ctx *context.Context, x *Node) *Node {
			y := x
			for range n {
				y = Add(Sin(y), ReduceAndKeep(y, ReduceMax, -1))
			}
			return y
		})
		require.NoError(t, err)
		timeExec(t, fmt.Sprintf("64x64, chain of %d kernels", n), 0, exec, randTensor(64, 64))
	}
}

// TestProfileSplitBatch compares the forward pass at 4x512 with the same pass
// run as two independent halves of one graph on one device.
func TestProfileSplitBatch(t *testing.T) {
	_, _, m := profModel(t)
	idsT, posT := randomInputs(4, 512, 256).Tensors()
	whole := forwardExec(t, m)
	split, err := context.NewExec(m.Backend, m.Context.Reuse(), func(ctx *context.Context, ids, positions *Node) *Node {
		var parts []*Node
		for i := 0; i < 4; i += 2 {
			parts = append(parts, Forward(ctx, m.Config, Slice(ids, AxisRange(i, i+2)), Slice(positions, AxisRange(i, i+2))).Logits)
		}
		return Concatenate(parts, 0)
	})
	require.NoError(t, err)
	pairedAB(t, "fwd 4x512 (a: whole, b: two halves)", 30, whole, split, idsT, posT)
}

// clientModel returns the small preset with random weights on a new XLA CPU
// client with the given number of devices. Tensors cannot move between
// clients, so each client gets its own inputs.
func clientModel(t *testing.T, devices int) *Model {
	cfg, err := Preset("small")
	require.NoError(t, err)
	t.Setenv(CPUDevicesEnvVar, fmt.Sprint(devices))
	b, err := newXLABackend("xla:cpu")
	require.NoError(t, err)
	m, err := NewModel(b, cfg)
	require.NoError(t, err)
	require.NoError(t, m.InitRandom(1))
	return m
}

// TestProfileSplitDevices compares the forward pass at 4x512 on a one-device
// client with the same pass split by BatchExec over a client with
// $PROF_DEVICES devices (default 2), then the unsplit graphs on both clients.
func TestProfileSplitDevices(t *testing.T) {
	n := 2
	if v := os.Getenv("PROF_DEVICES"); v != "" {
		fmt.Sscan(v, &n)
	}
	m1, mN := clientModel(t, 1), clientModel(t, n)
	in := randomInputs(4, 512, 256)
	ids1, pos1 := in.Tensors()
	idsN, posN := in.Tensors()
	split, err := NewBatchExec(mN, func(ctx *context.Context, ids, positions *Node) *Node {
		return Forward(ctx, mN.Config, ids, positions).Logits
	})
	require.NoError(t, err)
	require.True(t, split.Splits(4))
	splitCall := func() {
		_, err := split.Exec(idsN, posN)
		require.NoError(t, err)
	}
	pairedCalls(fmt.Sprintf("fwd 4x512 (a: 1 device, b: split over %d)", n), 40,
		execCall(t, forwardExec(t, m1), ids1, pos1), splitCall)

	in2, in3 := randomInputs(4, 256, 256), randomInputs(1, 64, 256)
	pairedCalls("fwd 4x512 unsplit (a: 1 device, b: N)", 20,
		execCall(t, forwardExec(t, m1), in.IDs, in.Positions), execCall(t, forwardExec(t, mN), in.IDs, in.Positions))
	pairedCalls("f+b 4x256 unsplit (a: 1 device, b: N)", 16,
		execCall(t, lossGradientExec(t, m1), in2.IDs, in2.Positions), execCall(t, lossGradientExec(t, mN), in2.IDs, in2.Positions))
	pairedCalls("fwd 1x64 (a: 1 device, b: N)", 40,
		execCall(t, forwardExec(t, m1), in3.IDs, in3.Positions), execCall(t, forwardExec(t, mN), in3.IDs, in3.Positions))
}

// TestProfileSplitGradient compares the loss gradient at 4x256 on a
// one-device client with the gradient split over the batch on a two-device
// client by GoMLX's AutoSharding (the SPMD partitioner adds the sums of the
// gradients over the devices).
func TestProfileSplitGradient(t *testing.T) {
	m1, m2 := clientModel(t, 1), clientModel(t, 2)
	in := randomInputs(4, 256, 256)
	mesh, err := distributed.NewDeviceMesh([]int{2}, []string{"batch"})
	require.NoError(t, err)
	batchSpec, err := distributed.BuildSpec(mesh).S("batch").Done()
	require.NoError(t, err)
	split := lossGradientExec(t, m2).AutoSharding(mesh).WithInputShardingSpecs(batchSpec, batchSpec)
	idsN, posN := in.Tensors()
	dIDs, err := distributed.ShardTensor(batchSpec, idsN)
	require.NoError(t, err)
	dPos, err := distributed.ShardTensor(batchSpec, posN)
	require.NoError(t, err)
	splitCall := func() {
		outs, err := split.DistributedExec(dIDs, dPos)
		require.NoError(t, err)
		for _, o := range outs {
			for _, s := range o.Shards() {
				s.FinalizeAll()
			}
		}
	}
	pairedCalls("f+b 4x256 (a: 1 device, b: split over 2)", 20,
		execCall(t, lossGradientExec(t, m1), in.IDs, in.Positions), splitCall)
}
