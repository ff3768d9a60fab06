package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"

	"github.com/rgemma-toolkit/rgemma/rgemma"
)

// Benchmark phases, in the order they run. Training runs after the phases
// that only read the weights, because its optimizer steps change them.
const (
	phaseForward = "forward"
	phaseDecode  = "decode"
	phaseLatency = "latency"
	phaseMemory  = "memory"
	phaseTrain   = "train"
	phase2B      = "2b"
	phaseLogits  = "logits"
)

var (
	allPhases     = []string{phaseLogits, phaseForward, phaseDecode, phaseLatency, phaseMemory, phaseTrain, phase2B}
	defaultPhases = "forward,train,decode,latency,memory"
)

// bigPreset is the model of the "2b" phase.
const bigPreset = "recurrentgemma-2b"

// benchSettings is the exact settings of a run, printed with the figures.
type benchSettings struct {
	Phases           []string `json:"phases"`
	Reps             int      `json:"reps"`
	Warmup           int      `json:"warmup"` // Untimed calls after the compiling one.
	Seed             uint64   `json:"seed"`
	ForwardBatch     int      `json:"forward_batch"`
	ForwardSeq       int      `json:"forward_seq"`
	TrainBatch       int      `json:"train_batch"`
	TrainSeq         int      `json:"train_seq"`
	Optimizer        string   `json:"optimizer"`
	DecodeBatches    []int    `json:"decode_batches"`
	DecodePrompt     int      `json:"decode_prompt"`
	DecodeSteps      int      `json:"decode_steps"`
	LatencyPositions []int    `json:"latency_positions"`
	LatencySteps     int      `json:"latency_steps"`
	Chunk            int      `json:"chunk"`
	MemoryTokens     []int    `json:"memory_tokens"`
	BigTokens        int      `json:"big_tokens"`
	LogitsIDs        []int32  `json:"logits_ids,omitempty"`
}

// timing summarises repeated measurements of one figure.
type timing struct {
	CompileSeconds float64   `json:"compile_s"` // First call: graph compilation plus one run.
	Seconds        []float64 `json:"seconds"`   // One value per repetition.
	MedianSeconds  float64   `json:"median_s"`
	// PageFaultsPerCall is the mean count of minor page faults (pages the
	// kernel had to map and zero) of the process per timed call. Without
	// the malloc settings of rgemma.MallocTunables, XLA's per-call buffers
	// show up here as thousands of faults.
	PageFaultsPerCall float64 `json:"page_faults_per_call"`
}

type forwardResult struct {
	Batch        int     `json:"batch"`
	Seq          int     `json:"seq"`
	Devices      int     `json:"devices"`                // The number of devices the batch ran split over, or 1 when it ran whole.
	WholeReason  string  `json:"whole_reason,omitempty"` // The reason a backend with several devices ran the batch whole.
	TokensPerSec float64 `json:"tokens_per_s"`
	timing
}

type trainResult struct {
	Batch        int     `json:"batch"`
	Seq          int     `json:"seq"`
	TokensPerSec float64 `json:"tokens_per_s"`
	FirstLoss    float64 `json:"first_loss"` // Loss of the compile step.
	LastLoss     float64 `json:"last_loss"`  // Loss of the last timed step, on the same batch.
	timing
}

type decodeResult struct {
	Batch        int       `json:"batch"`
	Prompt       int       `json:"prompt"`
	Steps        int       `json:"steps"` // Timed steps per repetition, one token per row each.
	TokensPerSec float64   `json:"tokens_per_s"`
	RepsTokens   []float64 `json:"reps_tokens_per_s"`
	timing
}

type latencyResult struct {
	Position      int       `json:"position"` // Tokens fed before the timed steps.
	Steps         int       `json:"steps"`    // Timed single-token steps per repetition.
	MsPerToken    float64   `json:"ms_per_token"`
	RepsMs        []float64 `json:"reps_ms_per_token"`
	PrefillSec    float64   `json:"prefill_s"`            // Feeding the prompt, compilation included.
	PrefillTokens float64   `json:"prefill_tokens_per_s"` // Over the chunks after the first, when there are several.
}

type memoryResult struct {
	Tokens    int     `json:"tokens"` // Generated tokens at the time of the reading.
	RSSMiB    float64 `json:"rss_mib"`
	HWMMiB    float64 `json:"hwm_mib"`
	GoHeapMiB float64 `json:"go_heap_mib"`
}

type memoryPhase struct {
	Batch        int            `json:"batch"`
	Prompt       int            `json:"prompt"`
	BeforeRSSMiB float64        `json:"before_rss_mib"` // After warm-up, when the peak was reset.
	HWMReset     bool           `json:"hwm_reset"`      // Whether VmHWM could be reset before the phase.
	Readings     []memoryResult `json:"readings"`
	GrowthMiB    float64        `json:"rss_growth_mib"` // Last reading minus first reading.
}

type bigResult struct {
	Preset        string  `json:"preset"`
	Parameters    int64   `json:"parameters"`
	Tokens        int     `json:"tokens"`
	InitSeconds   float64 `json:"init_s"`         // Random initialisation on the host.
	MoveSeconds   float64 `json:"move_s"`         // Moving the weights to the backend's buffers.
	FirstSeconds  float64 `json:"first_s"`        // First forward: compilation and one run.
	SecondSeconds float64 `json:"second_s"`       // Second forward of the same tokens.
	RSSMiB        float64 `json:"rss_mib"`        // After the forward passes.
	HWMMiB        float64 `json:"hwm_mib"`        // Peak of the phase (of the process, when hwm_reset is false).
	HWMReset      bool    `json:"hwm_reset"`      // Whether VmHWM could be reset before the phase.
	WeightsMiB    float64 `json:"weights_mib"`    // float32 weights.
	BeforeRSSMiB  float64 `json:"before_rss_mib"` // At the start of the phase.
}

// logitsResult holds the logits of one row, for cross-checks with other
// implementations: Forward from the full-sequence pass, Decode from one
// Decoder.Feed of the whole row.
type logitsResult struct {
	IDs              []int32     `json:"ids"`
	Forward          [][]float32 `json:"forward"`
	Decode           [][]float32 `json:"decode"`
	MaxAbsDiff       float64     `json:"max_abs_diff_forward_decode"`
	MaxAbsLogitValue float64     `json:"max_abs_logit"`
}

type benchReport struct {
	Backend            string          `json:"backend"`
	BackendDescription string          `json:"backend_description"`
	Preset             string          `json:"preset,omitempty"`
	ModelDir           string          `json:"model_dir,omitempty"`
	Config             string          `json:"config"`
	Parameters         int64           `json:"parameters"`
	GoVersion          string          `json:"go_version"`
	GoMLXVersion       string          `json:"gomlx_version"`
	NumCPU             int             `json:"num_cpu"`
	GOMAXPROCS         int             `json:"gomaxprocs"`
	GlibcTunables      string          `json:"glibc_tunables"` // The malloc settings the process started with (see rgemma.MallocTunables).
	Settings           benchSettings   `json:"settings"`
	Forward            *forwardResult  `json:"forward,omitempty"`
	Train              *trainResult    `json:"train,omitempty"`
	Decode             []decodeResult  `json:"decode,omitempty"`
	Latency            []latencyResult `json:"latency,omitempty"`
	Memory             *memoryPhase    `json:"memory,omitempty"`
	Big                *bigResult      `json:"2b,omitempty"`
	Logits             *logitsResult   `json:"logits,omitempty"`
}

func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	preset := fs.String("preset", "small", "model preset with random weights (ignored with -model)")
	modelDir := fs.String("model", "", "model directory with config.json and model.safetensors, instead of -preset")
	backendFlag := fs.String("backend", "", "execution backend: auto, go or xla[:PLUGIN] (default: $GOMLX_BACKEND, else auto)")
	only := fs.String("only", defaultPhases, "comma-separated phases: forward, train, decode, latency, memory, and the optional 2b and logits")
	reps := fs.Int("reps", 5, "timed repetitions per figure; the median is reported")
	warmup := fs.Int("warmup", 1, "untimed calls per figure after the compiling one (0 or more)")
	format := fs.String("format", "text", "output format: text (a table) or json (one object)")
	seed := fs.Uint64("seed", 1, "seed of the random weights and of the input tokens")
	batch := fs.Int("batch", 4, "batch size of the forward and training phases")
	seq := fs.Int("seq", 512, "tokens per row of the forward phase")
	trainSeq := fs.Int("train-seq", 256, "tokens per row of the training phase")
	decodeBatches := fs.String("decode-batches", "1,8", "comma-separated batch sizes of the decode phase")
	prompt := fs.Int("prompt", 16, "prompt tokens per row fed before the decode and memory phases")
	decodeSteps := fs.Int("decode-steps", 64, "timed single-token steps per repetition of the decode phase")
	positions := fs.String("positions", "64,8192", "comma-separated prompt lengths after which the latency phase times single-token steps")
	latencySteps := fs.Int("latency-steps", 32, "timed single-token steps per repetition of the latency phase")
	chunk := fs.Int("chunk", 512, "tokens per decoder call when feeding the long prompts of the latency phase")
	memoryTokens := fs.String("memory-tokens", "1000,10000", "comma-separated generated-token counts at which the memory phase reads VmRSS and VmHWM")
	bigTokens := fs.Int("big-tokens", 16, "tokens of the forward pass of the 2b phase")
	logitsIDs := fs.String("logits-ids", "", "comma-separated token ids whose logits the logits phase prints (default: 64 random ids)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rgemma bench [-preset small | -model DIR] [-backend B] [-only LIST] [-reps N] [-format text|json]\n\n"+
			"Measures forward, training and decoding speed and the memory of decoding. Compilation is timed\n"+
			"separately and excluded from the speeds. Progress goes to stderr, the figures to stdout.\n"+
			"The phases 2b (a forward pass through the full recurrentgemma-2b preset, about 14 GB of memory at its\n"+
			"peak) and logits (the logits of one row, for cross-checks with other implementations)\n"+
			"run only when -only names them.\n"+
			"On a backend with several devices, the forward batch is split over them when it divides by their\n"+
			"count (rgemma.BatchExec); the output says how it ran (json: devices, whole_reason).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: see rgemma bench -h", fs.Arg(0))
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	presetSet := false
	fs.Visit(func(f *flag.Flag) { presetSet = presetSet || f.Name == "preset" })
	if presetSet && *modelDir != "" {
		return errors.New("give either -preset or -model, not both")
	}

	s := benchSettings{
		Reps: *reps, Warmup: *warmup, Seed: *seed,
		ForwardBatch: *batch, ForwardSeq: *seq, TrainBatch: *batch, TrainSeq: *trainSeq,
		Optimizer:    "AdamW (GoMLX optimizers.Adam, learning rate 0.001, weight decay 0.1), update inside the step graph",
		DecodePrompt: *prompt, DecodeSteps: *decodeSteps, LatencySteps: *latencySteps, Chunk: *chunk,
		BigTokens: *bigTokens,
	}
	var err error
	if s.Phases, err = parsePhases(*only); err != nil {
		return err
	}
	if s.DecodeBatches, err = parsePositiveInts("-decode-batches", *decodeBatches); err != nil {
		return err
	}
	if s.LatencyPositions, err = parsePositiveInts("-positions", *positions); err != nil {
		return err
	}
	if s.MemoryTokens, err = parsePositiveInts("-memory-tokens", *memoryTokens); err != nil {
		return err
	}
	if *logitsIDs != "" {
		if s.LogitsIDs, err = parseIDs(*logitsIDs); err != nil {
			return fmt.Errorf("invalid -logits-ids: %w", err)
		}
	}
	for _, p := range []struct {
		name  string
		value int
	}{{"-reps", *reps}, {"-batch", *batch}, {"-seq", *seq}, {"-train-seq", *trainSeq}, {"-prompt", *prompt},
		{"-decode-steps", *decodeSteps}, {"-latency-steps", *latencySteps}, {"-chunk", *chunk}, {"-big-tokens", *bigTokens}} {
		if p.value <= 0 {
			return fmt.Errorf("invalid %s %d: it must be > 0", p.name, p.value)
		}
	}
	if *warmup < 0 {
		return fmt.Errorf("invalid -warmup %d: it must be >= 0", *warmup)
	}
	if *trainSeq < 2 {
		return fmt.Errorf("invalid -train-seq %d: the next-token loss needs at least 2 tokens per row", *trainSeq)
	}

	backend, err := rgemma.NewBackend(*backendFlag)
	if err != nil {
		return err
	}
	report := &benchReport{
		Backend: backend.Name(), BackendDescription: backend.Description(),
		GoVersion: runtime.Version(), GoMLXVersion: moduleVersion("github.com/gomlx/gomlx"),
		NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Settings: s,
		GlibcTunables: os.Getenv("GLIBC_TUNABLES"),
	}

	needsModel := slices.ContainsFunc(s.Phases, func(p string) bool { return p != phase2B })
	if needsModel {
		var m *rgemma.Model
		if *modelDir != "" {
			if st, err := os.Stat(*modelDir); err != nil || !st.IsDir() {
				return fmt.Errorf("model directory %s not found: create one with `rgemma init -out DIR` or use -preset", *modelDir)
			}
			if m, err = rgemma.LoadModel(backend, *modelDir); err != nil {
				return err
			}
			report.ModelDir = *modelDir
		} else {
			if m, err = randomModel(backend, *preset, *seed); err != nil {
				return err
			}
			report.Preset = *preset
		}
		report.Config = m.Config.Summary()
		report.Parameters = m.Config.NumParams()
		b := &bencher{m: m, s: s, rng: rand.New(rand.NewPCG(*seed, 7))}
		if err := b.run(report); err != nil {
			return err
		}
	}
	if slices.Contains(s.Phases, phase2B) {
		if report.Big, err = benchBig(backend, s); err != nil {
			return err
		}
	}

	if *format == "json" {
		return printJSON(report)
	}
	return printBenchTable(report)
}

// parsePhases checks a -only list and returns it in the order phases run.
func parsePhases(list string) ([]string, error) {
	want := map[string]bool{}
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !slices.Contains(allPhases, p) {
			return nil, fmt.Errorf("unknown phase %q in -only: use %s", p, strings.Join(allPhases, ", "))
		}
		want[p] = true
	}
	var out []string
	for _, p := range allPhases {
		if want[p] {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("-only %q names no phase: use %s", list, strings.Join(allPhases, ", "))
	}
	return out, nil
}

func parsePositiveInts(flagName, list string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(list, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.Atoi(part)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("invalid value %q in %s: use positive integers separated by commas", part, flagName)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s is empty: give at least one positive integer", flagName)
	}
	return out, nil
}

func moduleVersion(path string) string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == path {
				return dep.Version
			}
		}
	}
	return "unknown"
}

// randomModel returns a preset with the random initialisation that
// `rgemma init` writes for the same seed.
func randomModel(backend backends.Backend, preset string, seed uint64) (*rgemma.Model, error) {
	cfg, err := rgemma.Preset(preset)
	if err != nil {
		return nil, err
	}
	m, err := rgemma.NewModel(backend, cfg)
	if err != nil {
		return nil, err
	}
	slog.Info("bench: initialising random weights", "preset", preset, "seed", seed, "parameters", cfg.NumParams())
	if err := m.InitRandom(seed); err != nil {
		return nil, fmt.Errorf("initialising preset %q: %w", preset, err)
	}
	return m, nil
}

// bencher runs the phases that use the benchmarked model.
type bencher struct {
	m   *rgemma.Model
	s   benchSettings
	rng *rand.Rand
}

func (b *bencher) run(r *benchReport) error {
	var err error
	for _, phase := range b.s.Phases {
		start := time.Now()
		slog.Info("bench: phase started", "phase", phase)
		switch phase {
		case phaseForward:
			r.Forward, err = b.forward()
		case phaseDecode:
			r.Decode, err = b.decode()
		case phaseLatency:
			r.Latency, err = b.latency()
		case phaseMemory:
			r.Memory, err = b.memory()
		case phaseTrain:
			r.Train, err = b.train()
		case phaseLogits:
			r.Logits, err = b.logits()
		default:
			continue
		}
		if err != nil {
			return fmt.Errorf("bench phase %s: %w", phase, err)
		}
		slog.Info("bench: phase done", "phase", phase, "seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	}
	return nil
}

// randomRows returns `batch` rows of n random token ids.
func (b *bencher) randomRows(batch, n int) [][]int32 {
	V := b.m.Config.VocabSize
	rows := make([][]int32, batch)
	for i := range rows {
		rows[i] = make([]int32, n)
		for t := range rows[i] {
			rows[i][t] = int32(b.rng.IntN(V))
		}
	}
	return rows
}

// timeCalls runs call once untimed to compile, s.Warmup more times untimed,
// and then s.Reps timed times. Warm-up matters on XLA CPU: without it, the
// first training step after compilation took 700 to 900 ms instead of
// 240 ms, while the heap was still growing.
func (b *bencher) timeCalls(name string, call func() error) (timing, error) {
	var out timing
	start := time.Now()
	if err := call(); err != nil {
		return out, err
	}
	out.CompileSeconds = time.Since(start).Seconds()
	slog.Info("bench: compiled", "figure", name, "seconds", fmt.Sprintf("%.2f", out.CompileSeconds))
	for range b.s.Warmup {
		if err := call(); err != nil {
			return out, err
		}
	}
	faultsBefore := minorPageFaults()
	for i := range b.s.Reps {
		start := time.Now()
		if err := call(); err != nil {
			return out, err
		}
		out.Seconds = append(out.Seconds, time.Since(start).Seconds())
		slog.Debug("bench: repetition", "figure", name, "rep", i+1, "seconds", out.Seconds[i])
	}
	out.MedianSeconds = median(out.Seconds)
	if b.s.Reps > 0 {
		out.PageFaultsPerCall = float64(minorPageFaults()-faultsBefore) / float64(b.s.Reps)
	}
	return out, nil
}

// splitNote describes how the forward batch ran: "" on a one-device backend.
func splitNote(f *forwardResult) string {
	switch {
	case f.Devices > 1:
		return fmt.Sprintf(", split over %d devices", f.Devices)
	case f.WholeReason != "":
		return fmt.Sprintf(", whole on 1 device (%s)", f.WholeReason)
	}
	return ""
}

// forward times the full-sequence forward pass (logits only).
func (b *bencher) forward() (*forwardResult, error) {
	m := b.m
	exec, err := rgemma.NewBatchExec(m, func(ctx *context.Context, ids, positions *Node) *Node {
		return rgemma.Forward(ctx, m.Config, ids, positions).Logits
	})
	if err != nil {
		return nil, fmt.Errorf("building the forward graph: %w", err)
	}
	rows := b.randomRows(b.s.ForwardBatch, b.s.ForwardSeq)
	ids, positions := rgemma.Inputs{IDs: rows, Positions: rgemma.SequentialPositions(rows)}.Tensors()
	t, err := b.timeCalls("forward", func() error {
		out, err := exec.Exec(ids, positions)
		if err != nil {
			return fmt.Errorf("running the forward pass: %w", err)
		}
		// Reading the logits waits for the computation to end.
		_, err = firstValue(out[0])
		for _, o := range out {
			o.FinalizeAll()
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &forwardResult{
		Batch: b.s.ForwardBatch, Seq: b.s.ForwardSeq, timing: t,
		Devices:      exec.Devices(b.s.ForwardBatch),
		WholeReason:  exec.WholeReason(b.s.ForwardBatch),
		TokensPerSec: float64(b.s.ForwardBatch*b.s.ForwardSeq) / t.MedianSeconds,
	}, nil
}

// gradientOptimizer is an optimizer that takes the gradients computed by the
// caller (GoMLX's Adam implements it).
type gradientOptimizer interface {
	UpdateGraphWithGradients(ctx *context.Context, grads []*Node, lossDType dtypes.DType)
}

// train times one training step: forward, next-token loss, the gradients of
// every trainable variable and an AdamW update, all in one graph. It changes
// the weights of the model in memory.
func (b *bencher) train() (*trainResult, error) {
	m := b.m
	opt, ok := optimizers.Adam().WeightDecay(0.1).Done().(gradientOptimizer)
	if !ok {
		return nil, errors.New("GoMLX's Adam optimizer has no UpdateGraphWithGradients method: check the GoMLX version (v0.26.0 has it)")
	}
	// The optimizer creates its variables (moments, step counter, learning
	// rate) on the first build, so the context is not in Reuse mode.
	exec, err := context.NewExec(m.Backend, m.Context.Checked(false), func(ctx *context.Context, ids, positions *Node) *Node {
		out := rgemma.Forward(ctx, m.Config, ids, positions)
		loss, _ := rgemma.NextTokenLoss(out.Logits, ids, positions, nil)
		grads := ctx.BuildTrainableVariablesGradientsGraph(loss)
		opt.UpdateGraphWithGradients(ctx, grads, dtypes.Float32)
		return loss
	})
	if err != nil {
		return nil, fmt.Errorf("building the training step graph: %w", err)
	}

	rows := b.randomRows(b.s.TrainBatch, b.s.TrainSeq)
	ids, positions := rgemma.Inputs{IDs: rows, Positions: rgemma.SequentialPositions(rows)}.Tensors()
	var losses []float64
	t, err := b.timeCalls("train", func() error {
		out, err := exec.Exec(ids, positions)
		if err != nil {
			return fmt.Errorf("running the training step: %w", err)
		}
		loss, err := firstValue(out[0])
		for _, o := range out {
			o.FinalizeAll()
		}
		if err != nil {
			return err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return fmt.Errorf("training step %d gave a non-finite loss %g", len(losses)+1, loss)
		}
		losses = append(losses, loss)
		return nil
	})
	if err != nil {
		return nil, err
	}

	return &trainResult{
		Batch: b.s.TrainBatch, Seq: b.s.TrainSeq, timing: t,
		TokensPerSec: float64(b.s.TrainBatch*b.s.TrainSeq) / t.MedianSeconds,
		FirstLoss:    losses[0], LastLoss: losses[len(losses)-1],
	}, nil
}

// greedyRows returns, for each row, the most likely next token after its
// last fed token, as one-token rows for the next Feed.
func greedyRows(logits [][][]float32) [][]int32 {
	next := make([][]int32, len(logits))
	for b, row := range logits {
		last := row[len(row)-1]
		best := 0
		for i, v := range last {
			if v > last[best] {
				best = i
			}
		}
		next[b] = []int32{int32(best)}
	}
	return next
}

// decode times greedy single-token steps at each decode batch size.
func (b *bencher) decode() ([]decodeResult, error) {
	var results []decodeResult
	for _, batch := range b.s.DecodeBatches {
		d, err := b.m.NewDecoder(batch)
		if err != nil {
			return nil, err
		}
		logits, err := d.Feed(b.randomRows(batch, b.s.DecodePrompt))
		if err != nil {
			return nil, fmt.Errorf("feeding the prompt at batch %d: %w", batch, err)
		}
		next := greedyRows(logits)
		steps := 1
		t, err := b.timeCalls(fmt.Sprintf("decode batch %d", batch), func() error {
			for range steps {
				logits, err := d.Feed(next)
				if err != nil {
					return fmt.Errorf("decode step at batch %d: %w", batch, err)
				}
				next = greedyRows(logits)
			}
			steps = b.s.DecodeSteps // The first (compiling) call is a single step.
			return nil
		})
		if err != nil {
			return nil, err
		}
		res := decodeResult{Batch: batch, Prompt: b.s.DecodePrompt, Steps: b.s.DecodeSteps, timing: t}
		for _, sec := range t.Seconds {
			res.RepsTokens = append(res.RepsTokens, float64(batch*b.s.DecodeSteps)/sec)
		}
		res.TokensPerSec = float64(batch*b.s.DecodeSteps) / t.MedianSeconds
		results = append(results, res)
	}
	return results, nil
}

// latency feeds prompts of each length in chunks, then times single-token
// steps at batch 1.
func (b *bencher) latency() ([]latencyResult, error) {
	var results []latencyResult
	for _, pos := range b.s.LatencyPositions {
		d, err := b.m.NewDecoder(1)
		if err != nil {
			return nil, err
		}
		prompt := b.randomRows(1, pos)[0]
		start := time.Now()
		var afterFirst time.Time
		var logits [][][]float32
		for from := 0; from < pos; from += b.s.Chunk {
			to := min(from+b.s.Chunk, pos)
			if logits, err = d.Feed([][]int32{prompt[from:to]}); err != nil {
				return nil, fmt.Errorf("feeding the prompt of %d tokens at token %d: %w", pos, from, err)
			}
			if from == 0 {
				afterFirst = time.Now()
			}
			if to%(8*b.s.Chunk) == 0 || to == pos {
				slog.Info("bench: feeding the latency prompt", "tokens", to, "of", pos)
			}
		}
		res := latencyResult{Position: pos, Steps: b.s.LatencySteps, PrefillSec: time.Since(start).Seconds()}
		if pos > b.s.Chunk {
			res.PrefillTokens = float64(pos-b.s.Chunk) / time.Since(afterFirst).Seconds()
		}
		next := greedyRows(logits)
		// Two untimed steps: the first may compile the single-token graph.
		for range 2 {
			if logits, err = d.Feed(next); err != nil {
				return nil, err
			}
			next = greedyRows(logits)
		}
		for range b.s.Reps {
			start := time.Now()
			for range b.s.LatencySteps {
				if logits, err = d.Feed(next); err != nil {
					return nil, err
				}
				next = greedyRows(logits)
			}
			res.RepsMs = append(res.RepsMs, 1000*time.Since(start).Seconds()/float64(b.s.LatencySteps))
		}
		res.MsPerToken = median(res.RepsMs)
		results = append(results, res)
	}
	return results, nil
}

// memory generates greedy tokens at batch 1 and reads the resident memory at
// each count of s.MemoryTokens.
func (b *bencher) memory() (*memoryPhase, error) {
	d, err := b.m.NewDecoder(1)
	if err != nil {
		return nil, err
	}
	logits, err := d.Feed(b.randomRows(1, b.s.DecodePrompt))
	if err != nil {
		return nil, err
	}
	next := greedyRows(logits)
	// Warm up (compiles the single-token step if no earlier phase did).
	for range 2 {
		if logits, err = d.Feed(next); err != nil {
			return nil, err
		}
		next = greedyRows(logits)
	}
	res := &memoryPhase{Batch: 1, Prompt: b.s.DecodePrompt}
	collectGarbage()
	res.HWMReset = resetPeakRSS()
	before, err := readProcMemory()
	if err != nil {
		return nil, err
	}
	res.BeforeRSSMiB = before.RSSMiB

	targets := slices.Sorted(slices.Values(b.s.MemoryTokens))
	generated := 0
	for _, target := range targets {
		for generated < target {
			if logits, err = d.Feed(next); err != nil {
				return nil, fmt.Errorf("generating token %d: %w", generated+1, err)
			}
			next = greedyRows(logits)
			generated++
			if generated%1000 == 0 {
				slog.Info("bench: generating", "tokens", generated, "of", targets[len(targets)-1])
			}
		}
		collectGarbage()
		reading, err := readProcMemory()
		if err != nil {
			return nil, err
		}
		reading.Tokens = generated
		res.Readings = append(res.Readings, reading)
	}
	res.GrowthMiB = res.Readings[len(res.Readings)-1].RSSMiB - res.Readings[0].RSSMiB
	return res, nil
}

// logits returns the logits of one row from the full-sequence forward pass
// and from the decoder.
func (b *bencher) logits() (*logitsResult, error) {
	ids := b.s.LogitsIDs
	if len(ids) == 0 {
		ids = b.randomRows(1, 64)[0]
	}
	rows := [][]int32{ids}
	fwd, err := b.m.Forward(rgemma.Inputs{IDs: rows, Positions: rgemma.SequentialPositions(rows)})
	if err != nil {
		return nil, err
	}
	flat, err := tensors.CopyFlatData[float32](fwd.Logits)
	if err != nil {
		return nil, fmt.Errorf("reading the forward logits: %w", err)
	}

	d, err := b.m.NewDecoder(1)
	if err != nil {
		return nil, err
	}
	dec, err := d.Feed(rows)
	if err != nil {
		return nil, err
	}

	V := b.m.Config.VocabSize
	res := &logitsResult{IDs: ids, Decode: dec[0]}
	for t := range ids {
		row := flat[t*V : (t+1)*V]
		res.Forward = append(res.Forward, row)
		for i, v := range row {
			res.MaxAbsDiff = math.Max(res.MaxAbsDiff, math.Abs(float64(v-dec[0][t][i])))
			res.MaxAbsLogitValue = math.Max(res.MaxAbsLogitValue, math.Abs(float64(v)))
		}
	}
	return res, nil
}

// benchBig runs forward passes of a few tokens through the full
// recurrentgemma-2b preset with random weights.
func benchBig(backend backends.Backend, s benchSettings) (*bigResult, error) {
	cfg, err := rgemma.Preset(bigPreset)
	if err != nil {
		return nil, err
	}
	slog.Info("bench: phase started", "phase", phase2B, "parameters", cfg.NumParams(),
		"note", "needs about 1.3 times the float32 weights in memory at its peak, and several minutes on SimpleGo")
	res := &bigResult{Preset: bigPreset, Parameters: cfg.NumParams(), Tokens: s.BigTokens,
		WeightsMiB: float64(4*cfg.NumParams()) / (1 << 20)}
	collectGarbage()
	res.HWMReset = resetPeakRSS()
	before, err := readProcMemory()
	if err != nil {
		return nil, err
	}
	res.BeforeRSSMiB = before.RSSMiB

	// Let the Go collector free each host copy of the weights soon after it
	// is dropped, rather than when the heap doubles.
	oldLimit := debug.SetMemoryLimit(4*cfg.NumParams() + 1<<30)
	defer debug.SetMemoryLimit(oldLimit)

	start := time.Now()
	m, err := randomModel(backend, bigPreset, s.Seed)
	if err != nil {
		return nil, err
	}
	res.InitSeconds = time.Since(start).Seconds()
	start = time.Now()
	if err := moveWeightsToBackend(m); err != nil {
		return nil, err
	}
	res.MoveSeconds = time.Since(start).Seconds()
	exec, err := context.NewExec(m.Backend, m.Context.Reuse(), func(ctx *context.Context, ids, positions *Node) *Node {
		return rgemma.Forward(ctx, m.Config, ids, positions).Logits
	})
	if err != nil {
		return nil, fmt.Errorf("building the forward graph of %s: %w", bigPreset, err)
	}
	rng := rand.New(rand.NewPCG(s.Seed, 11))
	row := make([]int32, s.BigTokens)
	for i := range row {
		row[i] = int32(rng.IntN(cfg.VocabSize))
	}
	ids, positions := rgemma.Inputs{IDs: [][]int32{row}, Positions: rgemma.SequentialPositions([][]int32{row})}.Tensors()
	for i, dst := range []*float64{&res.FirstSeconds, &res.SecondSeconds} {
		start := time.Now()
		out, err := exec.Exec(ids, positions)
		if err != nil {
			return nil, fmt.Errorf("running the forward pass of %s: %w", bigPreset, err)
		}
		v, err := firstValue(out[0])
		out[0].FinalizeAll()
		if err != nil {
			return nil, err
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("the forward pass of %s gave a non-finite logit %g", bigPreset, v)
		}
		*dst = time.Since(start).Seconds()
		slog.Info("bench: 2b forward done", "call", i+1, "seconds", fmt.Sprintf("%.1f", *dst))
	}
	collectGarbage()
	after, err := readProcMemory()
	if err != nil {
		return nil, err
	}
	res.RSSMiB, res.HWMMiB = after.RSSMiB, after.HWMMiB
	runtime.KeepAlive(m)
	return res, nil
}

// moveWeightsToBackend copies the weights into the backend's buffers one
// tensor at a time. With shared buffers (both CPU backends) each host copy is
// dropped once copied, and the freed memory goes back to the OS every GiB.
// Without this step, the first Exec copies all weights, and the Go runtime
// returns the freed host copies to the OS only down to its soft memory limit.
// For recurrentgemma-2b on XLA CPU, VmHWM then reached 22,516 MiB for
// 10,234 MiB of weights.
func moveWeightsToBackend(m *rgemma.Model) error {
	var sinceCollect int64
	for v := range m.Context.IterVariables() {
		t, err := v.Value()
		if err != nil {
			return fmt.Errorf("reading weight %s: %w", v.ScopeAndName(), err)
		}
		if err := t.MaterializeOnDevice(m.Backend, true, 0); err != nil {
			return fmt.Errorf("moving weight %s to the backend: %w", v.ScopeAndName(), err)
		}
		sinceCollect += int64(t.Shape().Memory())
		if sinceCollect >= 1<<30 {
			collectGarbage()
			sinceCollect = 0
		}
	}
	collectGarbage()
	return nil
}

// firstValue reads the first element of a float32 tensor, which also waits
// for the computation that produces it.
func firstValue(t *tensors.Tensor) (float64, error) {
	var v float64
	err := tensors.ConstFlatData(t, func(flat []float32) { v = float64(flat[0]) })
	if err != nil {
		return 0, fmt.Errorf("reading a result: %w", err)
	}
	return v, nil
}

func median(values []float64) float64 {
	sorted := slices.Sorted(slices.Values(values))
	n := len(sorted)
	if n == 0 {
		return math.NaN()
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// collectGarbage runs the Go collector and returns freed memory to the OS,
// so that VmRSS reflects live data.
func collectGarbage() {
	runtime.GC()
	debug.FreeOSMemory()
}

// resetPeakRSS resets VmHWM of this process to its current VmRSS (Linux 4.0
// and later); it returns false when that is not possible.
func resetPeakRSS() bool {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		slog.Warn("cannot reset the peak resident memory (VmHWM); peaks include earlier phases", "error", err)
		return false
	}
	return true
}

// readProcMemory reads VmRSS and VmHWM from /proc/self/status and the Go heap.
func readProcMemory() (memoryResult, error) {
	var out memoryResult
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return out, fmt.Errorf("reading resident memory (needs Linux /proc): %w", err)
	}
	defer f.Close()

	sc := bufio.NewScanner(f)
	found := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || (fields[0] != "VmRSS:" && fields[0] != "VmHWM:") {
			continue
		}
		kb, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			return out, fmt.Errorf("parsing %q of /proc/self/status: %w", sc.Text(), err)
		}
		if fields[0] == "VmRSS:" {
			out.RSSMiB = kb / 1024
		} else {
			out.HWMMiB = kb / 1024
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("reading /proc/self/status: %w", err)
	}
	if found != 2 {
		return out, errors.New("/proc/self/status has no VmRSS or VmHWM line")
	}

	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out.GoHeapMiB = float64(ms.HeapAlloc) / (1 << 20)
	return out, nil
}

func secondsList(values []float64, scale float64, unit string) string {
	parts := make([]string, len(values))
	for i, v := range values {
		parts[i] = strconv.FormatFloat(v*scale, 'f', 1, 64)
	}
	return strings.Join(parts, " ") + " " + unit
}

// printBenchTable prints the report as a table.
func printBenchTable(r *benchReport) error {
	model := "preset " + r.Preset
	if r.ModelDir != "" {
		model = "model " + r.ModelDir
	}
	s := r.Settings
	fmt.Printf("rgemma bench: backend %s (%s)\n", r.Backend, r.BackendDescription)
	if r.Config != "" {
		fmt.Printf("model: %s, %s parameters, %s\n", model, humanCount(r.Parameters), r.Config)
	}
	fmt.Printf("go %s, GoMLX %s, %d CPUs, GOMAXPROCS %d; %d timed repetitions per figure, median shown; warm-up calls per figure: %d; seed %d\n",
		r.GoVersion, r.GoMLXVersion, r.NumCPU, r.GOMAXPROCS, s.Reps, s.Warmup, s.Seed)
	tunables := r.GlibcTunables
	if tunables == "" {
		tunables = "unset (glibc's default malloc settings)"
	}
	fmt.Printf("GLIBC_TUNABLES: %s\n\n", tunables)

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "figure\tvalue\tsettings\n")
	if f := r.Forward; f != nil {
		fmt.Fprintf(w, "forward\t%.0f tokens/s\tbatch %d × %d tokens%s; compile %.1f s; %.0f page faults per call; reps %s\n",
			f.TokensPerSec, f.Batch, f.Seq, splitNote(f), f.CompileSeconds, f.PageFaultsPerCall, secondsList(f.Seconds, 1000, "ms"))
	}
	if t := r.Train; t != nil {
		fmt.Fprintf(w, "training step\t%.0f tokens/s\tbatch %d × %d tokens, %s; compile %.1f s; %.0f page faults per call; loss %.3f -> %.3f; reps %s\n",
			t.TokensPerSec, t.Batch, t.Seq, "AdamW wd 0.1", t.CompileSeconds, t.PageFaultsPerCall, t.FirstLoss, t.LastLoss, secondsList(t.Seconds, 1000, "ms"))
	}
	for _, d := range r.Decode {
		fmt.Fprintf(w, "decode batch %d\t%.0f tokens/s\t%d steps per rep after a %d-token prompt; compile %.1f s; reps %s\n",
			d.Batch, d.TokensPerSec, d.Steps, d.Prompt, d.CompileSeconds, secondsList(d.RepsTokens, 1, "tokens/s"))
	}
	for _, l := range r.Latency {
		prefill := fmt.Sprintf("prefill %.1f s", l.PrefillSec)
		if l.PrefillTokens > 0 {
			prefill += fmt.Sprintf(" (%.0f tokens/s after the first chunk)", l.PrefillTokens)
		}
		fmt.Fprintf(w, "latency at %d tokens\t%.2f ms/token\tbatch 1, %d steps per rep, prompt fed in chunks of %d, %s; reps %s\n",
			l.Position, l.MsPerToken, l.Steps, s.Chunk, prefill, secondsList(l.RepsMs, 1, "ms"))
	}
	if m := r.Memory; m != nil {
		for _, rd := range m.Readings {
			fmt.Fprintf(w, "memory after %d tokens\tVmRSS %.0f MiB, VmHWM %.0f MiB\tbatch 1, %d-token prompt; Go heap %.1f MiB; VmRSS %.0f MiB before generating\n",
				rd.Tokens, rd.RSSMiB, rd.HWMMiB, m.Prompt, rd.GoHeapMiB, m.BeforeRSSMiB)
		}
		fmt.Fprintf(w, "memory growth\t%+.1f MiB\tVmRSS from %d to %d generated tokens\n",
			m.GrowthMiB, m.Readings[0].Tokens, m.Readings[len(m.Readings)-1].Tokens)
	}
	if l := r.Logits; l != nil {
		fmt.Fprintf(w, "logits\t%d × %d\tmax |logit| %.3g; max |forward - decoder| %.3g (use -format json for the values)\n",
			len(l.Forward), len(l.Forward[0]), l.MaxAbsLogitValue, l.MaxAbsDiff)
	}
	if bg := r.Big; bg != nil {
		fmt.Fprintf(w, "%s forward\t%.1f s (first call %.1f s)\t%d tokens, %s parameters, random weights (init %.1f s, moving them to the backend %.1f s)\n",
			bg.Preset, bg.SecondSeconds, bg.FirstSeconds, bg.Tokens, humanCount(bg.Parameters), bg.InitSeconds, bg.MoveSeconds)
		fmt.Fprintf(w, "%s memory\tVmHWM %.0f MiB, VmRSS %.0f MiB\tfloat32 weights %.0f MiB; VmRSS %.0f MiB before the phase\n",
			bg.Preset, bg.HWMMiB, bg.RSSMiB, bg.WeightsMiB, bg.BeforeRSSMiB)
	}
	return w.Flush()
}
