// Package train fine-tunes RecurrentGemma checkpoints and trains Griffin and
// Hawk models from scratch: packed documents, AdamW with warmup and cosine
// decay, global-norm clipping, gradient accumulation, freezing, LoRA, atomic
// resumable checkpoints and Hugging Face export.
package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// LoRAConfig adds low-rank adapters to chosen linear layers; the base
// weights are then frozen and the adapters merged into them on export.
type LoRAConfig struct {
	Rank  int     `json:"rank"`
	Alpha float64 `json:"alpha"`
	// Targets are linear layer names matched against the end of each layer's
	// Hugging Face prefix, e.g. "q_proj", "v_proj", "linear_x", "up_proj".
	Targets []string `json:"targets"`
}

// Config is a training run. Every field has a JSON name so runs can be kept
// as files under configs/; zero values take the defaults of Defaults.
type Config struct {
	// Model: a preset name (e.g. "small") or a config.json path for a run
	// from scratch, or InitFrom, a Hugging Face checkpoint directory to
	// fine-tune.
	Model    string `json:"model,omitempty"`
	InitFrom string `json:"init_from,omitempty"`

	// Data: sources as "[text:|jsonl:|jsonl=FIELD:]PATH" where PATH may end in
	// a glob on file names (e.g. "$GOROOT/src/*.go"); environment variables
	// are expanded. Tokenizer is "byte" or a tokenizer.model path.
	Data         []string `json:"data"`
	MaxDataBytes int64    `json:"max_data_bytes,omitempty"`
	Tokenizer    string   `json:"tokenizer,omitempty"`
	EvalFraction float64  `json:"eval_fraction,omitempty"`

	SeqLen         int     `json:"seq_len,omitempty"`
	BatchSize      int     `json:"batch_size,omitempty"`
	GradAccumSteps int     `json:"grad_accum_steps,omitempty"`
	MaxSteps       int     `json:"max_steps,omitempty"`
	MaxMinutes     float64 `json:"max_minutes,omitempty"` // Stops early (with a checkpoint) once exceeded; 0 = no limit.

	LearningRate float64 `json:"learning_rate,omitempty"`
	MinLRRatio   float64 `json:"min_lr_ratio,omitempty"` // Cosine decay ends at LearningRate·MinLRRatio.
	WarmupSteps  int     `json:"warmup_steps,omitempty"`
	WeightDecay  float64 `json:"weight_decay,omitempty"`
	Beta1        float64 `json:"beta1,omitempty"`
	Beta2        float64 `json:"beta2,omitempty"`
	ClipNorm     float64 `json:"clip_norm,omitempty"` // Global gradient norm limit; < 0 disables.

	// Freeze lists block kinds ("embedding", "recurrent", "attention", "mlp",
	// "norms") or glob patterns on Hugging Face names to keep fixed.
	Freeze []string    `json:"freeze,omitempty"`
	LoRA   *LoRAConfig `json:"lora,omitempty"`

	Seed            uint64 `json:"seed,omitempty"`
	LogEvery        int    `json:"log_every,omitempty"`
	EvalEvery       int    `json:"eval_every,omitempty"`
	EvalBatches     int    `json:"eval_batches,omitempty"`
	CheckpointEvery int    `json:"checkpoint_every,omitempty"`
	KeepCheckpoints int    `json:"keep_checkpoints,omitempty"`

	// Samples are prompts continued at the end of the run into samples.txt.
	Samples         []string `json:"samples,omitempty"`
	SampleMaxTokens int      `json:"sample_max_tokens,omitempty"`

	Out     string `json:"out,omitempty"`
	Backend string `json:"backend,omitempty"`
}

// Defaults returns the main job of the toolkit: the `small` Griffin preset,
// byte-level, on the Go standard library sources of the Go installation
// that runs it. On 2 cores with the XLA CPU backend it takes about 7
// minutes (300 steps of 8 × 256 tokens); MaxMinutes stops it at 10.
func Defaults() Config {
	return Config{
		Model:           "small",
		Data:            []string{filepath.Join(goRoot(), "src", "*.go")},
		MaxDataBytes:    24 << 20,
		Tokenizer:       "byte",
		EvalFraction:    0.02,
		SeqLen:          256,
		BatchSize:       8,
		GradAccumSteps:  1,
		MaxSteps:        300,
		MaxMinutes:      10,
		LearningRate:    3e-3,
		MinLRRatio:      0.1,
		WarmupSteps:     30,
		WeightDecay:     0.1,
		Beta1:           0.9,
		Beta2:           0.95,
		ClipNorm:        1.0,
		Seed:            1,
		LogEvery:        10,
		EvalEvery:       100,
		EvalBatches:     8,
		CheckpointEvery: 100,
		KeepCheckpoints: 2,
		Samples:         []string{"package main\n\nimport (\n", "func (b *Buffer) "},
		SampleMaxTokens: 200,
		Out:             filepath.Join("runs", "small-gostdlib-"+time.Now().Format("20060102-150405")),
	}
}

// fillDefaults sets the zero fields that have a non-zero default, keeping
// the data, model and output choices of c.
func (c *Config) fillDefaults() {
	d := Defaults()
	if c.Model == "" && c.InitFrom == "" {
		c.Model = d.Model
	}
	if c.Tokenizer == "" {
		c.Tokenizer = d.Tokenizer
	}
	setInt := func(v *int, def int) {
		if *v == 0 {
			*v = def
		}
	}
	setFloat := func(v *float64, def float64) {
		if *v == 0 {
			*v = def
		}
	}
	setInt(&c.SeqLen, d.SeqLen)
	setInt(&c.BatchSize, d.BatchSize)
	setInt(&c.GradAccumSteps, 1)
	setInt(&c.MaxSteps, d.MaxSteps)
	setFloat(&c.LearningRate, d.LearningRate)
	setFloat(&c.MinLRRatio, d.MinLRRatio)
	setFloat(&c.Beta1, d.Beta1)
	setFloat(&c.Beta2, d.Beta2)
	setFloat(&c.ClipNorm, d.ClipNorm)
	setInt(&c.LogEvery, d.LogEvery)
	setInt(&c.EvalBatches, d.EvalBatches)
	setInt(&c.KeepCheckpoints, d.KeepCheckpoints)
	setInt(&c.SampleMaxTokens, d.SampleMaxTokens)
	if c.Seed == 0 {
		c.Seed = 1
	}
}

// Validate checks the fields and names the first invalid one.
func (c *Config) Validate() error {
	switch {
	case c.Model == "" && c.InitFrom == "":
		return errors.New("training config: set model (a preset or config.json) or init_from (a checkpoint directory)")
	case c.Model != "" && c.InitFrom != "":
		return errors.New("training config: set only one of model and init_from")
	case len(c.Data) == 0:
		return errors.New("training config: data lists no sources")
	case c.SeqLen < 2:
		return fmt.Errorf("training config: seq_len must be >= 2 (a token and its target), got %d", c.SeqLen)
	case c.BatchSize < 1:
		return fmt.Errorf("training config: batch_size must be >= 1, got %d", c.BatchSize)
	case c.GradAccumSteps < 1:
		return fmt.Errorf("training config: grad_accum_steps must be >= 1, got %d", c.GradAccumSteps)
	case c.MaxSteps < 1:
		return fmt.Errorf("training config: max_steps must be >= 1, got %d", c.MaxSteps)
	case c.LearningRate <= 0:
		return fmt.Errorf("training config: learning_rate must be > 0, got %g", c.LearningRate)
	case c.WarmupSteps < 0:
		return fmt.Errorf("training config: warmup_steps must be >= 0, got %d", c.WarmupSteps)
	case c.EvalFraction < 0 || c.EvalFraction >= 1:
		return fmt.Errorf("training config: eval_fraction must be in [0, 1), got %g", c.EvalFraction)
	case c.Out == "":
		return errors.New("training config: out (the run folder) is empty")
	}
	if c.LoRA != nil {
		if c.LoRA.Rank < 1 || len(c.LoRA.Targets) == 0 {
			return fmt.Errorf("training config: lora needs rank >= 1 and at least one target, got rank %d and %d targets", c.LoRA.Rank, len(c.LoRA.Targets))
		}
		if c.LoRA.Alpha == 0 {
			c.LoRA.Alpha = float64(c.LoRA.Rank)
		}
	}
	return nil
}

// LoadConfig reads a JSON training config. Fields absent from the file take
// the defaults, except model, data and out, which the file (or flags) set.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("reading training config: %w", err)
	}
	var c Config
	if err := json.Unmarshal(data, &c); err != nil {
		return Config{}, fmt.Errorf("training config %s: invalid JSON: %w", path, err)
	}
	return c, nil
}

// goRoot returns the Go installation folder: $GOROOT, else `go env GOROOT`,
// else the one this binary was built with.
func goRoot() string {
	if root := os.Getenv("GOROOT"); root != "" {
		return root
	}
	if out, err := exec.Command("go", "env", "GOROOT").Output(); err == nil {
		if root := strings.TrimSpace(string(out)); root != "" {
			return root
		}
	}
	return runtime.GOROOT() //nolint:staticcheck // Last resort when no go command is on PATH.
}
