package train

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"time"

	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/rgemma-toolkit/rgemma/rgemma"
	"github.com/rgemma-toolkit/rgemma/rgemma/tokenizer"
	"github.com/rgemma-toolkit/rgemma/train/data"
)

// ErrNonFiniteLoss is returned when a step produces a NaN or infinite loss.
// The step is not applied and the last checkpoint is left as it was.
var ErrNonFiniteLoss = errors.New("non-finite loss")

// Options change how Run behaves without changing the run itself.
type Options struct {
	// Resume continues from the newest checkpoint of the run folder.
	Resume bool
	// Progress, when true, draws a progress bar on stderr.
	Progress bool
	// StopAtStep stops the run like an interrupt (checkpoint, no export) once
	// this many steps are done; 0 = never. The schedule still spans MaxSteps.
	StopAtStep int
	// FaultNaNAtStep makes the loss of that step NaN (0 = never), to test
	// the handling of a diverging run.
	FaultNaNAtStep int
}

// Result summarises a finished run.
type Result struct {
	Dir             string
	Steps           int
	FinalLoss       float64 // Mean training loss of the last logged window.
	EvalLoss        float64 // NaN without evaluation data.
	UnigramEntropy  float64 // In nats per token.
	TokensPerSecond float64 // Training speed over the last logged window, like FinalLoss.
	Interrupted     bool    // Stopped by the caller's context (e.g. SIGINT) after saving a checkpoint.
	StoppedByTime   bool
	LastCheckpoint  string
	Export          string
}

// Trainer runs one training configuration.
type Trainer struct {
	cfg     Config
	model   *rgemma.Model
	tok     tokenizer.Tokenizer
	data    *dataset
	batcher *data.Batcher
	steps   *steps
	state   trainerState
	metrics *metricsLog
}

// New prepares a run: the run folder, the model, the data and the compiled
// steps. Nothing is trained yet.
func New(cfg Config, opts Options) (*Trainer, error) {
	cfg.fillDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	existing, err := listCheckpoints(cfg.Out)
	if err != nil {
		return nil, fmt.Errorf("run folder %s: %w", cfg.Out, err)
	}
	if opts.Resume && len(existing) == 0 {
		return nil, fmt.Errorf("nothing to resume: run folder %s has no checkpoint; drop -resume to start a new run there", cfg.Out)
	}
	if len(existing) > 0 && !opts.Resume {
		return nil, fmt.Errorf("run folder %s already has checkpoints: pass -resume to continue it or choose another -out", cfg.Out)
	}
	if err := prepareOutDir(cfg.Out); err != nil {
		return nil, err
	}

	backend, err := rgemma.NewBackend(cfg.Backend)
	if err != nil {
		return nil, err
	}
	tok, err := loadTokenizer(&cfg)
	if err != nil {
		return nil, err
	}
	model, err := buildModel(backend, &cfg)
	if err != nil {
		return nil, err
	}
	if tok.VocabSize() > model.Config.VocabSize {
		return nil, fmt.Errorf("tokenizer has %d ids but the model vocab_size is %d", tok.VocabSize(), model.Config.VocabSize)
	}
	if cfg.LoRA != nil {
		adapted, err := addLoRA(model, cfg.LoRA, cfg.Seed)
		if err != nil {
			return nil, err
		}
		slog.Info("LoRA adapters added; base weights frozen", "layers", len(adapted), "rank", cfg.LoRA.Rank, "alpha", cfg.LoRA.Alpha)
	}
	if len(cfg.Freeze) > 0 {
		n, err := applyFreeze(model, cfg.Freeze)
		if err != nil {
			return nil, err
		}
		slog.Info("froze parameters", "count", n, "patterns", cfg.Freeze)
	}

	ds, err := loadData(&cfg, tok)
	if err != nil {
		return nil, err
	}
	batcher, err := data.NewBatcher(ds.train, cfg.BatchSize, cfg.Seed)
	if err != nil {
		return nil, err
	}
	t := &Trainer{cfg: cfg, model: model, tok: tok, data: ds, batcher: batcher}
	t.state.Model = model.Config

	if opts.Resume && len(existing) > 0 {
		last := existing[len(existing)-1]
		// The optimizer variables must exist before their values load.
		if t.steps, err = newSteps(model, &cfg); err != nil {
			return nil, err
		}
		if t.state, err = loadCheckpoint(last, model); err != nil {
			return nil, err
		}
		// Variables created by the loader (optimizer moments, step counters)
		// default to trainable; only the parameters chosen above train.
		chosen := map[*mlctx.Variable]bool{}
		for _, v := range t.steps.trainable {
			chosen[v] = true
		}
		for v := range model.Context.IterVariables() {
			v.SetTrainable(chosen[v])
		}
		if err := batcher.Restore(t.state.Batcher); err != nil {
			return nil, fmt.Errorf("checkpoint %s does not match the data: %w", last, err)
		}
		slog.Info("resumed run", "checkpoint", last, "step", t.state.Step)
	} else if t.steps, err = newSteps(model, &cfg); err != nil {
		return nil, err
	}

	if err := saveRunConfig(&cfg, model.Config); err != nil {
		return nil, err
	}
	if t.metrics, err = openMetrics(cfg.Out, t.state.Step); err != nil {
		return nil, err
	}
	return t, nil
}

// Model returns the model being trained.
func (t *Trainer) Model() *rgemma.Model { return t.model }

// Step returns the number of optimizer steps done.
func (t *Trainer) Step() int { return t.state.Step }

// learningRate returns the schedule: linear warmup from 0 to LearningRate,
// then cosine decay to LearningRate·MinLRRatio at MaxSteps. step counts from 1.
func learningRate(c *Config, step int) float64 {
	if step <= c.WarmupSteps {
		return c.LearningRate * float64(step) / float64(c.WarmupSteps)
	}
	progress := float64(step-c.WarmupSteps) / float64(max(1, c.MaxSteps-c.WarmupSteps))
	progress = min(progress, 1)
	minLR := c.LearningRate * c.MinLRRatio
	return minLR + (c.LearningRate-minLR)*0.5*(1+math.Cos(math.Pi*progress))
}

// Run trains until MaxSteps, MaxMinutes or the cancellation of ctx, then
// evaluates, plots the loss, writes samples and exports the model. On
// cancellation it saves a checkpoint and returns with Result.Interrupted.
func (t *Trainer) Run(ctx context.Context, opts Options) (*Result, error) {
	defer t.metrics.Close()
	cfg := &t.cfg
	res := &Result{Dir: cfg.Out, UnigramEntropy: t.data.unigramEntropy, EvalLoss: math.NaN()}
	start := time.Now()
	elapsedBefore := t.state.ElapsedSecs
	tokensPerStep := int64(cfg.BatchSize * cfg.SeqLen * cfg.GradAccumSteps)

	// The bar redraws one line, which only a terminal shows as one line. In a
	// log file, each logged step gets a log line instead.
	var bar *progressbar.ProgressBar
	logSteps := opts.Progress && !stderrIsTerminal()
	if opts.Progress && !logSteps {
		bar = progressbar.NewOptions(cfg.MaxSteps,
			progressbar.OptionSetWriter(os.Stderr),
			progressbar.OptionSetDescription("training"),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(500*time.Millisecond))
		_ = bar.Set(t.state.Step)
	}

	windowLoss, windowSteps := 0.0, 0
	windowStart := time.Now()
	lastEvalStep, lastEvalLoss := -1, math.NaN()
	for t.state.Step < cfg.MaxSteps {
		if ctx.Err() != nil || (opts.StopAtStep > 0 && t.state.Step >= opts.StopAtStep) {
			res.Interrupted = true
			break
		}
		if cfg.MaxMinutes > 0 && time.Since(start).Minutes()+elapsedBefore/60 >= cfg.MaxMinutes {
			slog.Warn("time budget reached: stopping early", "max_minutes", cfg.MaxMinutes, "step", t.state.Step)
			res.StoppedByTime = true
			break
		}

		step := t.state.Step + 1
		loss, err := t.accumulate(step, opts)
		if err != nil {
			return res, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			last, _ := listCheckpoints(cfg.Out)
			where := "no checkpoint was written yet"
			if len(last) > 0 {
				where = "the last good checkpoint is " + last[len(last)-1]
			}
			slog.Error("loss is not finite: stopping without applying the step", "step", step, "loss", loss, "checkpoint", where)
			return res, fmt.Errorf("step %d: %w (%g); %s", step, ErrNonFiniteLoss, loss, where)
		}
		lr := learningRate(cfg, step)
		outs, err := t.steps.apply.Exec(tensors.FromScalar(float32(lr)))
		if err != nil {
			return res, fmt.Errorf("step %d: applying the update: %w", step, err)
		}
		gradNorm := scalar(outs[0])
		t.state.Step = step
		t.state.TokensSeen += tokensPerStep
		windowLoss += loss
		windowSteps++
		if bar != nil {
			_ = bar.Set(step)
		}

		if step%cfg.LogEvery == 0 || step == cfg.MaxSteps {
			elapsed := time.Since(windowStart).Seconds()
			rec := metricRecord{
				Step: step, Loss: windowLoss / float64(windowSteps), LR: lr, GradNorm: gradNorm,
				TokensPerSec: float64(tokensPerStep*int64(windowSteps)) / elapsed,
				ElapsedSecs:  elapsedBefore + time.Since(start).Seconds(),
			}
			res.FinalLoss, res.TokensPerSecond = rec.Loss, rec.TokensPerSec
			if err := t.metrics.write(rec); err != nil {
				return res, err
			}
			if bar != nil {
				bar.Describe(fmt.Sprintf("training loss %.3f, %.0f tokens/s", rec.Loss, rec.TokensPerSec))
			}
			if logSteps {
				slog.Info("training", "step", step, "of", cfg.MaxSteps, "loss", fmt.Sprintf("%.4f", rec.Loss),
					"tokens_per_s", fmt.Sprintf("%.0f", rec.TokensPerSec))
			}
			windowLoss, windowSteps, windowStart = 0, 0, time.Now()
		}
		if cfg.EvalEvery > 0 && step%cfg.EvalEvery == 0 && t.data.eval.Rows() > 0 {
			loss, err := t.logEval(step, elapsedBefore+time.Since(start).Seconds())
			if err != nil {
				return res, err
			}
			lastEvalStep, lastEvalLoss = step, loss
		}
		if cfg.CheckpointEvery > 0 && step%cfg.CheckpointEvery == 0 {
			if res.LastCheckpoint, err = t.checkpoint(elapsedBefore + time.Since(start).Seconds()); err != nil {
				return res, err
			}
		}
	}
	if bar != nil {
		if !res.Interrupted && !res.StoppedByTime {
			_ = bar.Finish()
		}
		fmt.Fprintln(os.Stderr)
	}
	res.Steps = t.state.Step

	// Save the final state unless the last step was just saved.
	if list, _ := listCheckpoints(cfg.Out); len(list) == 0 || filepath.Base(list[len(list)-1]) != fmt.Sprintf("%s%08d", checkpointStem, t.state.Step) {
		var err error
		if res.LastCheckpoint, err = t.checkpoint(elapsedBefore + time.Since(start).Seconds()); err != nil {
			return res, err
		}
	}
	if res.Interrupted {
		slog.Info("interrupted: checkpoint saved", "step", t.state.Step, "checkpoint", res.LastCheckpoint)
		return res, nil
	}

	if t.data.eval.Rows() > 0 {
		// The periodic evaluation may have just run at this step.
		res.EvalLoss = lastEvalLoss
		if lastEvalStep != t.state.Step {
			var err error
			if res.EvalLoss, err = t.logEval(t.state.Step, elapsedBefore+time.Since(start).Seconds()); err != nil {
				return res, err
			}
		}
	}
	if err := t.finish(res); err != nil {
		return res, err
	}
	return res, nil
}

// accumulate runs the micro-batches of one step and returns their mean loss.
func (t *Trainer) accumulate(step int, opts Options) (float64, error) {
	var lossSum, countSum float64
	for range t.cfg.GradAccumSteps {
		batch := t.batcher.Next()
		ids, positions, valid := batchTensors(batch.IDs, batch.Positions, batch.Valid)
		outs, err := t.steps.accumulate.Exec(ids, positions, valid)
		if err != nil {
			return 0, fmt.Errorf("step %d: forward/backward pass: %w", step, err)
		}
		loss, count := scalar(outs[0]), scalar(outs[1])
		lossSum += loss * count
		countSum += count
	}
	if opts.FaultNaNAtStep == step {
		return math.NaN(), nil
	}
	if countSum == 0 {
		return 0, nil
	}
	return lossSum / countSum, nil
}

// evaluate returns the mean loss over the first EvalBatches batches of the
// evaluation rows, in order.
func (t *Trainer) evaluate() (float64, error) {
	ev := t.data.eval
	B := t.cfg.BatchSize
	var lossSum, countSum float64
	for start, n := 0, 0; start < ev.Rows() && n < t.cfg.EvalBatches; start, n = start+B, n+1 {
		ids, positions, valid := make([][]int32, B), make([][]int32, B), make([][]bool, B)
		for i := range B {
			r := (start + i) % ev.Rows() // The last batch wraps around: same shape, no recompilation.
			ids[i], positions[i], valid[i] = ev.IDs[r], ev.Positions[r], ev.Valid[r]
		}
		a, b, c := batchTensors(ids, positions, valid)
		outs, err := t.steps.evaluate.Exec(a, b, c)
		if err != nil {
			return 0, fmt.Errorf("evaluation: %w", err)
		}
		loss, count := scalar(outs[0]), scalar(outs[1])
		lossSum += loss * count
		countSum += count
	}
	return lossSum / math.Max(countSum, 1), nil
}

// logEval evaluates, logs and records the evaluation loss of a step, and
// returns it. The caller checks that there are evaluation rows.
func (t *Trainer) logEval(step int, elapsed float64) (float64, error) {
	loss, err := t.evaluate()
	if err != nil {
		return 0, err
	}
	slog.Info("evaluation", "step", step, "eval_loss", fmt.Sprintf("%.4f", loss), "eval_perplexity", fmt.Sprintf("%.3f", math.Exp(loss)))
	record := metricRecord{Step: step, EvalLoss: &loss, EvalPerplexity: ptr(math.Exp(loss)), ElapsedSecs: elapsed}
	return loss, t.metrics.write(record)
}

// stderrIsTerminal reports whether standard error is a terminal.
func stderrIsTerminal() bool {
	return term.IsTerminal(int(os.Stderr.Fd()))
}

func (t *Trainer) checkpoint(elapsed float64) (string, error) {
	t.state.Batcher = t.batcher.State()
	t.state.ElapsedSecs = elapsed
	dir, err := saveCheckpoint(t.cfg.Out, t.model, t.state, t.cfg.KeepCheckpoints)
	if err != nil {
		return "", err
	}
	slog.Debug("checkpoint saved", "dir", dir)
	return dir, nil
}

func ptr(v float64) *float64 { return &v }
