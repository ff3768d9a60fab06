package train

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/stretchr/testify/require"

	"github.com/rgemma-toolkit/rgemma/internal/golden"
	"github.com/rgemma-toolkit/rgemma/rgemma"
	"github.com/rgemma-toolkit/rgemma/train/data"
)

// writeCorpus writes files of text into a temporary folder and returns its glob source.
func writeCorpus(t *testing.T, texts ...string) string {
	dir := t.TempDir()
	for i, text := range texts {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "doc"+string(rune('a'+i))+".txt"), []byte(text), 0o644))
	}
	return filepath.Join(dir, "*.txt")
}

const sampleText = `Griffin mixes gated linear recurrences with local attention.
The recurrence keeps a fixed-size state, so decoding costs the same at every position.
`

// tinyConfig is a fast run of the tiny preset.
func tinyConfig(t *testing.T, corpus string) Config {
	return Config{
		Model: "tiny", Data: []string{corpus}, Tokenizer: "byte", SeqLen: 32, BatchSize: 2,
		MaxSteps: 10, LearningRate: 3e-3, WarmupSteps: 2, LogEvery: 5, CheckpointEvery: 0,
		Out: filepath.Join(t.TempDir(), "run"), Seed: 3, Samples: []string{"The"}, SampleMaxTokens: 8,
	}
}

func param(t *testing.T, m *rgemma.Model, name string) []float32 {
	v, err := m.Param(name)
	require.NoError(t, err)
	return v
}

func TestTrainingGradientsMatchGolden(t *testing.T) {
	// The accumulate step of the trainer computes the gradient of the summed
	// token losses; divided by the token count it is the reference gradient.
	cfg := tinyConfig(t, writeCorpus(t, sampleText))
	cfg.Model, cfg.InitFrom = "", golden.TinyDir()
	tr, err := New(cfg, Options{})
	require.NoError(t, err)
	g, err := golden.Open(golden.TinyDir())
	require.NoError(t, err)
	defer g.Close()

	ids, shape, err := g.Int32("input_ids")
	require.NoError(t, err)
	pos, _, err := g.Int32("position_ids")
	require.NoError(t, err)
	valid := make([]bool, len(ids))
	for i := range valid {
		valid[i] = true
	}
	outs, err := tr.steps.accumulate.Exec(
		tensors.FromFlatDataAndDimensions(ids, shape...),
		tensors.FromFlatDataAndDimensions(pos, shape...),
		tensors.FromFlatDataAndDimensions(valid, shape...))
	require.NoError(t, err)
	loss, count := scalar(outs[0]), scalar(outs[1])
	wantLoss, _, err := g.Float32("loss")
	require.NoError(t, err)
	require.InDelta(t, wantLoss[0], loss, 1e-5)

	for i, v := range tr.steps.trainable {
		name := rgemma.HFName(v.Scope(), v.Name())
		want, _, err := g.Float32("grad." + name)
		require.NoError(t, err, name)
		acc, err := tr.steps.accum[i].Value()
		require.NoError(t, err)
		got := tensors.MustCopyFlatData[float32](acc)
		maxRef := 0.0
		for _, w := range want {
			maxRef = math.Max(maxRef, math.Abs(float64(w)))
		}
		for j := range want {
			require.InDelta(t, want[j], float64(got[j])/count, 1e-5+1e-3*maxRef, "%s[%d]", name, j)
		}
	}
}

func TestClippedSqrtGradientInTraining(t *testing.T) {
	// recurrent_param = -100 gives softplus ≈ 0, so the decay a is exactly 1
	// and sqrt(1 - a²) sits at 0, where the clipped derivative is 1000:
	// every gradient must stay finite.
	cfg := tinyConfig(t, writeCorpus(t, sampleText))
	tr, err := New(cfg, Options{})
	require.NoError(t, err)
	name := "model.layers.0.temporal_block.rg_lru.recurrent_param"
	values := param(t, tr.model, name)
	for i := range values {
		values[i] = -100
	}
	require.NoError(t, tr.model.SetParam(name, values))
	loss, err := tr.accumulate(1, Options{})
	require.NoError(t, err)
	require.False(t, math.IsNaN(loss) || math.IsInf(loss, 0))
	for _, a := range tr.steps.accum {
		v, err := a.Value()
		require.NoError(t, err)
		for _, x := range tensors.MustCopyFlatData[float32](v) {
			require.False(t, math.IsNaN(float64(x)) || math.IsInf(float64(x), 0), a.Name())
		}
	}
}

func TestOverfitOneBatch(t *testing.T) {
	cfg := tinyConfig(t, writeCorpus(t, "abcdefgh ijklmnop"))
	cfg.SeqLen, cfg.BatchSize, cfg.MaxSteps = 24, 1, 50
	cfg.LearningRate, cfg.WarmupSteps, cfg.WeightDecay, cfg.LogEvery = 1e-2, 5, 0, 1
	cfg.MinLRRatio = 1
	tr, err := New(cfg, Options{})
	require.NoError(t, err)
	require.Equal(t, 1, tr.data.train.Rows(), "one row: every step sees the same batch")
	res, err := tr.Run(context.Background(), Options{})
	require.NoError(t, err)
	require.Equal(t, 50, res.Steps)
	records, err := readMetrics(filepath.Join(cfg.Out, MetricsFile))
	require.NoError(t, err)
	steps := 0
	for _, r := range records {
		if r.EvalLoss == nil {
			steps++
			require.False(t, math.IsNaN(r.Loss) || math.IsInf(r.Loss, 0), "step %d", r.Step)
		}
	}
	require.Equal(t, 50, steps, "every step is logged and none is skipped")
	require.Less(t, res.FinalLoss, 0.05, "the loss of one memorised batch must approach zero")
}

func TestResumeMatchesUninterruptedRun(t *testing.T) {
	corpus := writeCorpus(t, strings.Repeat(sampleText, 6), strings.Repeat("Hawk uses only recurrent blocks. ", 20))
	run := func(cfg Config, opts Options) *Trainer {
		tr, err := New(cfg, opts)
		require.NoError(t, err)
		_, err = tr.Run(context.Background(), opts)
		require.NoError(t, err)
		return tr
	}

	straight := tinyConfig(t, corpus)
	straight.MaxSteps, straight.Samples = 40, nil
	full := run(straight, Options{})

	split := straight
	split.Out = filepath.Join(t.TempDir(), "split")
	stopped := run(split, Options{StopAtStep: 20})
	require.Equal(t, 20, stopped.Step())
	resumed := run(split, Options{Resume: true})
	require.Equal(t, 40, resumed.Step())

	for _, spec := range full.model.Config.Params() {
		require.InDeltaSlice(t, param(t, full.model, spec.Name), param(t, resumed.model, spec.Name), 1e-6, spec.Name)
	}
}

func TestPackedRowLossEqualsDocumentsAlone(t *testing.T) {
	m, err := rgemma.LoadModel(mustBackend(t), golden.TinyDir())
	require.NoError(t, err)
	docA := []int32{2, 72, 105, 32, 116, 104, 101, 114, 101, 1}
	docB := []int32{2, 71, 111, 32, 114, 111, 99, 107, 115, 33, 33, 1}
	lossSum := func(rows [][]int32, positions [][]int32, valid [][]bool) float64 {
		ev, err := newEvalExec(m)
		require.NoError(t, err)
		a, b, c := batchTensors(rows, positions, valid)
		outs, err := ev.Exec(a, b, c)
		require.NoError(t, err)
		return scalar(outs[0]) * scalar(outs[1])
	}
	seq := func(n int) []int32 {
		p := make([]int32, n)
		for i := range p {
			p[i] = int32(i)
		}
		return p
	}
	all := func(n int) []bool {
		v := make([]bool, n)
		for i := range v {
			v[i] = true
		}
		return v
	}
	// Packed: A, B, then two padding tokens (their own documents, not valid).
	packedIDs := append(append(append([]int32{}, docA...), docB...), 0, 0)
	packedPos := append(append(seq(len(docA)), seq(len(docB))...), 0, 0)
	packedValid := append(all(len(docA)+len(docB)), false, false)
	packed := lossSum([][]int32{packedIDs}, [][]int32{packedPos}, [][]bool{packedValid})
	alone := lossSum([][]int32{docA}, [][]int32{seq(len(docA))}, [][]bool{all(len(docA))}) +
		lossSum([][]int32{docB}, [][]int32{seq(len(docB))}, [][]bool{all(len(docB))})
	require.InDelta(t, alone, packed, 1e-4)
}

func TestFreezeAndLoRA(t *testing.T) {
	corpus := writeCorpus(t, strings.Repeat(sampleText, 4))
	cfg := tinyConfig(t, corpus)
	cfg.Freeze = []string{"mlp", "model.layers.1.*"}
	tr, err := New(cfg, Options{})
	require.NoError(t, err)
	before := map[string][]float32{}
	for _, spec := range tr.model.Config.Params() {
		before[spec.Name] = param(t, tr.model, spec.Name)
	}
	_, err = tr.Run(context.Background(), Options{})
	require.NoError(t, err)
	for _, spec := range tr.model.Config.Params() {
		frozen := strings.Contains(spec.Name, ".mlp_block.") || strings.HasPrefix(spec.Name, "model.layers.1.")
		after := param(t, tr.model, spec.Name)
		if frozen {
			require.Equal(t, before[spec.Name], after, "%s is frozen", spec.Name)
		} else if strings.HasSuffix(spec.Name, "q_proj.weight") {
			require.NotEqual(t, before[spec.Name], after, "%s trains", spec.Name)
		}
	}

	// LoRA: the base weights stay, and the export (adapters merged) computes
	// what the adapted model computes.
	lcfg := tinyConfig(t, corpus)
	lcfg.LoRA = &LoRAConfig{Rank: 4, Alpha: 8, Targets: []string{"q_proj", "linear_x", "up_proj"}}
	lcfg.LearningRate = 1e-2
	ltr, err := New(lcfg, Options{})
	require.NoError(t, err)
	q := param(t, ltr.model, "model.layers.2.temporal_block.q_proj.weight")
	res, err := ltr.Run(context.Background(), Options{})
	require.NoError(t, err)
	require.Equal(t, q, param(t, ltr.model, "model.layers.2.temporal_block.q_proj.weight"))

	exported, err := rgemma.LoadModel(ltr.model.Backend, res.Export)
	require.NoError(t, err)
	in := rgemma.Inputs{IDs: [][]int32{{2, 84, 104, 101, 32, 114}}, Positions: [][]int32{{0, 1, 2, 3, 4, 5}}}
	want, err := ltr.model.Forward(in)
	require.NoError(t, err)
	got, err := exported.Forward(in)
	require.NoError(t, err)
	require.InDeltaSlice(t, tensors.MustCopyFlatData[float32](want.Logits), tensors.MustCopyFlatData[float32](got.Logits), 1e-4)
	base, err := rgemma.NewModel(ltr.model.Backend, ltr.model.Config)
	require.NoError(t, err)
	for _, spec := range base.Config.Params() {
		require.NoError(t, base.SetParam(spec.Name, param(t, ltr.model, spec.Name)))
	}
	plain, err := base.Forward(in)
	require.NoError(t, err)
	require.NotEqual(t, tensors.MustCopyFlatData[float32](plain.Logits), tensors.MustCopyFlatData[float32](want.Logits), "the adapters changed the model")
}

func TestRunFolderContents(t *testing.T) {
	cfg := tinyConfig(t, writeCorpus(t, strings.Repeat(sampleText, 8)))
	cfg.EvalFraction, cfg.EvalEvery, cfg.CheckpointEvery, cfg.KeepCheckpoints = 0.2, 5, 4, 2
	tr, err := New(cfg, Options{})
	require.NoError(t, err)
	res, err := tr.Run(context.Background(), Options{})
	require.NoError(t, err)
	for _, name := range []string{MetricsFile, LossPlotFile, SamplesFile, RunConfigFile, filepath.Join(ExportDir, "model.safetensors"), filepath.Join(ExportDir, "config.json")} {
		_, err := os.Stat(filepath.Join(cfg.Out, name))
		require.NoError(t, err, name)
	}
	list, err := listCheckpoints(cfg.Out)
	require.NoError(t, err)
	require.Len(t, list, 2, "keep_checkpoints = 2")
	require.True(t, strings.HasSuffix(list[1], "step-00000010"))
	require.False(t, math.IsNaN(res.EvalLoss))

	records, err := readMetrics(filepath.Join(cfg.Out, MetricsFile))
	require.NoError(t, err)
	var evalSteps []int
	for _, r := range records {
		if r.EvalLoss != nil {
			evalSteps = append(evalSteps, r.Step)
			if r.Step == 10 {
				require.Equal(t, res.EvalLoss, *r.EvalLoss, "the final evaluation is the one recorded at step 10")
			}
			continue
		}
		require.Positive(t, r.Loss)
		require.Positive(t, r.LR)
		require.Positive(t, r.GradNorm)
		require.Positive(t, r.TokensPerSec)
		require.Positive(t, r.ElapsedSecs)
	}
	require.Equal(t, []int{5, 10}, evalSteps, "one evaluation record per evaluated step")

	// The folders made through a temporary name get the usual permissions.
	for _, dir := range []string{ExportDir, filepath.Base(list[1])} {
		path := filepath.Join(cfg.Out, dir)
		if dir != ExportDir {
			path = list[1]
		}
		info, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o755), info.Mode().Perm(), dir)
	}
}

func TestBadInputAndFaults(t *testing.T) {
	corpus := writeCorpus(t, strings.Repeat(sampleText, 4))
	t.Run("empty corpus", func(t *testing.T) {
		cfg := tinyConfig(t, filepath.Join(t.TempDir(), "*.txt"))
		_, err := New(cfg, Options{})
		require.Error(t, err)
		require.Contains(t, err.Error(), "empty corpus")
	})
	t.Run("sequence length below 2", func(t *testing.T) {
		cfg := tinyConfig(t, corpus)
		cfg.SeqLen = 1
		_, err := New(cfg, Options{})
		require.ErrorContains(t, err, "seq_len must be >= 2")
	})
	t.Run("unwritable output", func(t *testing.T) {
		cfg := tinyConfig(t, corpus)
		blocker := filepath.Join(t.TempDir(), "file")
		require.NoError(t, os.WriteFile(blocker, nil, 0o644))
		cfg.Out = filepath.Join(blocker, "run") // A path under a regular file cannot be created.
		_, err := New(cfg, Options{})
		require.ErrorContains(t, err, "run folder")
	})
	t.Run("unreadable file", func(t *testing.T) {
		_, err := New(tinyConfig(t, "text:"+filepath.Join(t.TempDir(), "missing.txt")), Options{})
		require.Error(t, err)
		require.Contains(t, err.Error(), "missing.txt")
	})
	t.Run("nan loss keeps the last checkpoint", func(t *testing.T) {
		cfg := tinyConfig(t, corpus)
		cfg.CheckpointEvery = 3
		tr, err := New(cfg, Options{})
		require.NoError(t, err)
		_, err = tr.Run(context.Background(), Options{FaultNaNAtStep: 5})
		require.ErrorIs(t, err, ErrNonFiniteLoss)
		require.Contains(t, err.Error(), "step-00000003")
		list, err := listCheckpoints(cfg.Out)
		require.NoError(t, err)
		require.Len(t, list, 1)
		// The kept checkpoint still loads and continues.
		resumed, err := New(cfg, Options{Resume: true})
		require.NoError(t, err)
		require.Equal(t, 3, resumed.Step())
	})
	t.Run("interrupt saves a checkpoint", func(t *testing.T) {
		cfg := tinyConfig(t, corpus)
		tr, err := New(cfg, Options{})
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res, err := tr.Run(ctx, Options{})
		require.NoError(t, err)
		require.True(t, res.Interrupted)
		list, err := listCheckpoints(cfg.Out)
		require.NoError(t, err)
		require.Len(t, list, 1)
	})
	t.Run("existing run without resume", func(t *testing.T) {
		cfg := tinyConfig(t, corpus)
		cfg.MaxSteps = 2
		tr, err := New(cfg, Options{})
		require.NoError(t, err)
		_, err = tr.Run(context.Background(), Options{})
		require.NoError(t, err)
		_, err = New(cfg, Options{})
		require.ErrorContains(t, err, "pass -resume")
	})
}

func TestLearningRateSchedule(t *testing.T) {
	c := &Config{LearningRate: 1, MinLRRatio: 0.1, WarmupSteps: 10, MaxSteps: 110}
	require.InDelta(t, 0.1, learningRate(c, 1), 1e-12)
	require.InDelta(t, 1, learningRate(c, 10), 1e-12)
	require.InDelta(t, 0.55, learningRate(c, 60), 1e-12, "half way down the cosine")
	require.InDelta(t, 0.1, learningRate(c, 110), 1e-12)
	require.InDelta(t, 0.1, learningRate(c, 200), 1e-12)
}

func mustBackend(t *testing.T) backends.Backend {
	b, err := rgemma.NewBackend("")
	require.NoError(t, err)
	return b
}

func TestRunConfigsInRepository(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "configs", "runs", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		cfg, err := LoadConfig(f)
		require.NoError(t, err, f)
		cfg.fillDefaults()
		require.NoError(t, cfg.Validate(), f)
		for _, spec := range cfg.Data {
			src, err := data.ParseSource(expandEnv(spec))
			require.NoError(t, err, f)
			_, err = os.Stat(src.Path)
			require.NoError(t, err, "%s: data %s", f, spec)
		}
	}
}

func TestResumeWithoutCheckpointFails(t *testing.T) {
	cfg := tinyConfig(t, writeCorpus(t, sampleText))
	_, err := New(cfg, Options{Resume: true})
	require.ErrorContains(t, err, "nothing to resume")
}
