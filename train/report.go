package train

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/rgemma-toolkit/rgemma/rgemma"
	"github.com/rgemma-toolkit/rgemma/rgemma/tokenizer"
)

// Files of a run folder.
const (
	MetricsFile     = "metrics.jsonl"
	LossPlotFile    = "loss.png"
	SamplesFile     = "samples.txt"
	RunConfigFile   = "train_config.json"
	ExportDir       = "export"
	ModelConfigFile = "model_config.json"
)

// metricRecord is one line of metrics.jsonl: a training window or an evaluation.
type metricRecord struct {
	Step           int      `json:"step"`
	Loss           float64  `json:"loss,omitempty"`
	LR             float64  `json:"lr,omitempty"`
	GradNorm       float64  `json:"grad_norm,omitempty"`
	TokensPerSec   float64  `json:"tokens_per_s,omitempty"`
	ElapsedSecs    float64  `json:"elapsed_s"`
	EvalLoss       *float64 `json:"eval_loss,omitempty"`
	EvalPerplexity *float64 `json:"eval_perplexity,omitempty"`
}

type metricsLog struct {
	path string
	file *os.File
}

// openMetrics opens metrics.jsonl for appending. On resume it drops the
// records after the checkpoint's step, which the resumed run repeats.
func openMetrics(dir string, fromStep int) (*metricsLog, error) {
	path := filepath.Join(dir, MetricsFile)
	records, _ := readMetrics(path)
	var kept []byte
	for _, r := range records {
		if r.Step <= fromStep {
			line, _ := json.Marshal(r)
			kept = append(append(kept, line...), '\n')
		}
	}
	if err := os.WriteFile(path, kept, 0o644); err != nil {
		return nil, fmt.Errorf("writing metrics: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening metrics: %w", err)
	}
	return &metricsLog{path: path, file: f}, nil
}

func (l *metricsLog) write(r metricRecord) error {
	line, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := l.file.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("writing %s: %w", l.path, err)
	}
	return nil
}

func (l *metricsLog) Close() error { return l.file.Close() }

func readMetrics(path string) ([]metricRecord, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []metricRecord
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var r metricRecord
		if json.Unmarshal(scanner.Bytes(), &r) == nil {
			out = append(out, r)
		}
	}
	return out, scanner.Err()
}

// saveRunConfig writes the effective training and model configs into the run folder.
func saveRunConfig(cfg *Config, model *rgemma.Config) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(cfg.Out, RunConfigFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing run config: %w", err)
	}
	modelJSON, err := model.Marshal()
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cfg.Out, ModelConfigFile), append(modelJSON, '\n'), 0o644)
}

// plotLoss draws the training loss (and evaluation loss, when present)
// against the step into a PNG file.
func plotLoss(metricsPath, pngPath string, unigramEntropy float64) error {
	records, err := readMetrics(metricsPath)
	if err != nil {
		return err
	}
	var trainPts, evalPts plotter.XYs
	for _, r := range records {
		if r.EvalLoss != nil {
			evalPts = append(evalPts, plotter.XY{X: float64(r.Step), Y: *r.EvalLoss})
		} else if r.Loss > 0 {
			trainPts = append(trainPts, plotter.XY{X: float64(r.Step), Y: r.Loss})
		}
	}
	if len(trainPts) == 0 {
		return fmt.Errorf("no training loss recorded in %s", metricsPath)
	}
	p := plot.New()
	p.Title.Text = "Training loss"
	p.X.Label.Text = "step"
	p.Y.Label.Text = "loss (nats per token)"
	p.Add(plotter.NewGrid())
	line, err := plotter.NewLine(trainPts)
	if err != nil {
		return err
	}
	p.Add(line)
	p.Legend.Add("train", line)
	if len(evalPts) > 0 {
		scatter, err := plotter.NewScatter(evalPts)
		if err != nil {
			return err
		}
		p.Add(scatter) // Markers, so that a single evaluation shows too.
		evalLine, err := plotter.NewLine(evalPts)
		if err != nil {
			return err
		}
		evalLine.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		evalLine.Width = vg.Points(2)
		p.Add(evalLine)
		p.Legend.Add("eval", evalLine)
	}
	if unigramEntropy > 0 {
		last := trainPts[len(trainPts)-1].X
		ref, err := plotter.NewLine(plotter.XYs{{X: 0, Y: unigramEntropy}, {X: last, Y: unigramEntropy}})
		if err != nil {
			return err
		}
		ref.Dashes = []vg.Length{vg.Points(2), vg.Points(2)}
		p.Add(ref)
		p.Legend.Add("unigram entropy", ref)
	}
	p.Legend.Top = true
	return p.Save(8*vg.Inch, 5*vg.Inch, pngPath)
}

// finish writes the loss plot, the samples and the Hugging Face export.
func (t *Trainer) finish(res *Result) error {
	cfg := &t.cfg
	if err := plotLoss(filepath.Join(cfg.Out, MetricsFile), filepath.Join(cfg.Out, LossPlotFile), t.data.unigramEntropy); err != nil {
		slog.Warn("could not plot the loss", "error", err)
	}
	if err := t.writeSamples(); err != nil {
		return err
	}
	export := filepath.Join(cfg.Out, ExportDir)
	if err := os.RemoveAll(export); err != nil {
		return err
	}
	if err := Export(t.model, export); err != nil {
		return err
	}
	res.Export = export
	slog.Info("run finished", "dir", cfg.Out, "steps", res.Steps, "train_loss", fmt.Sprintf("%.4f", res.FinalLoss),
		"eval_loss", fmt.Sprintf("%.4f", res.EvalLoss), "unigram_entropy", fmt.Sprintf("%.4f", res.UnigramEntropy))
	return nil
}

// writeSamples continues each configured prompt and writes samples.txt.
func (t *Trainer) writeSamples() error {
	if len(t.cfg.Samples) == 0 {
		return nil
	}
	var prompts [][]int32
	for _, text := range t.cfg.Samples {
		ids, err := t.tok.Encode(text, true)
		if err != nil {
			return fmt.Errorf("encoding sample prompt %q: %w", text, err)
		}
		prompts = append(prompts, tokenizer.ToInt32(ids))
	}
	res, err := t.model.Generate(prompts, rgemma.GenerateOptions{
		MaxNewTokens: t.cfg.SampleMaxTokens,
		Sampling:     rgemma.SamplingOptions{Temperature: 0.7, TopK: 40, Seed: t.cfg.Seed},
		EOSID:        t.tok.EOSID(),
		Decode:       func(ids []int32) string { return t.tok.Decode(tokenizer.FromInt32(ids)) },
	})
	if err != nil {
		return fmt.Errorf("generating samples: %w", err)
	}
	var b strings.Builder
	for i, text := range t.cfg.Samples {
		fmt.Fprintf(&b, "=== sample %d (temperature 0.7, top-k 40, step %d)\n%s%s\n\n", i+1, t.state.Step, text, res.Texts[i])
	}
	return os.WriteFile(filepath.Join(t.cfg.Out, SamplesFile), []byte(b.String()), 0o644)
}
