package rgemma

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/rgemma-toolkit/rgemma/rgemma/safetensors"
)

// LoadModel reads `config.json` and the safetensors weights (one
// `model.safetensors` or the shards of `model.safetensors.index.json`) of a
// Hugging Face checkpoint directory. F32, BF16 and F16 tensors are converted
// to float32 one at a time, so at most one tensor is held twice. Every
// problem (missing tensor, wrong shape, unsupported dtype) is reported by
// name in one error; unexpected extra tensors are logged as warnings.
func LoadModel(backend backends.Backend, dir string) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	ckpt, err := safetensors.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	defer ckpt.Close()

	// A checkpoint with its own lm_head is untied, even when the config sets tie_word_embeddings.
	if _, ok := ckpt.Info("lm_head.weight"); ok && cfg.TieWordEmbeddings {
		slog.Info("checkpoint has lm_head.weight: using it instead of the tied embedding", "dir", dir)
		cfg.TieWordEmbeddings = false
	}
	if err := checkCheckpoint(cfg, ckpt, dir); err != nil {
		return nil, err
	}

	m, err := NewModel(backend, cfg)
	if err != nil {
		return nil, err
	}
	specs := cfg.Params()
	for i, spec := range specs {
		values, err := ckpt.ReadFloat32(spec.Name)
		if err != nil {
			return nil, err
		}
		if err := m.setTensor(spec, tensors.FromFlatDataAndDimensions(values, spec.Shape...)); err != nil {
			return nil, fmt.Errorf("setting parameter %q: %w", spec.Name, err)
		}
		slog.Debug("loaded parameter", "name", spec.Name, "index", i+1, "of", len(specs))
	}
	slog.Info("loaded model", "dir", dir, "parameters", cfg.NumParams(), "config", cfg.Summary())
	return m, nil
}

// checkCheckpoint compares the tensors of a checkpoint with the parameters
// that cfg expects and returns one error listing every problem.
func checkCheckpoint(cfg *Config, ckpt *safetensors.Checkpoint, dir string) error {
	var problems []string
	expected := map[string]bool{}
	for _, spec := range cfg.Params() {
		expected[spec.Name] = true
		info, ok := ckpt.Info(spec.Name)
		if !ok {
			problems = append(problems, fmt.Sprintf("missing tensor %q (expected shape %v)", spec.Name, spec.Shape))
			continue
		}
		if !slices.Equal(info.Shape, spec.Shape) {
			problems = append(problems, fmt.Sprintf("tensor %q has shape %v, expected %v", spec.Name, info.Shape, spec.Shape))
		}
		if info.DType != "F32" && info.DType != "BF16" && info.DType != "F16" {
			problems = append(problems, fmt.Sprintf("tensor %q has dtype %s, expected F32, BF16 or F16", spec.Name, info.DType))
		}
	}
	for _, name := range ckpt.Names() {
		if !expected[name] {
			slog.Warn("checkpoint has an unexpected tensor; ignoring it", "dir", dir, "tensor", name)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("checkpoint %s does not match its config.json (%d problems):\n  %s",
			dir, len(problems), strings.Join(problems, "\n  "))
	}
	return nil
}

// SaveOptions configure Model.Save.
type SaveOptions struct {
	// DType of the stored tensors: "F32" (default) or "BF16".
	DType string
	// MaxShardBytes splits the weights into shards of at most this many bytes
	// with a model.safetensors.index.json; 0 means 5 GB, as Hugging Face does.
	MaxShardBytes int64
}

// Save writes config.json and the weights in Hugging Face format to dir,
// which must not already contain a checkpoint. The files are first written to
// a temporary folder beside dir and then moved in, so a failure leaves no
// partial checkpoint.
func (m *Model) Save(dir string, opts SaveOptions) error {
	if err := m.CheckComplete(); err != nil {
		return err
	}
	dtype := opts.DType
	if dtype == "" {
		dtype = "F32"
	}
	if dtype != "F32" && dtype != "BF16" {
		return fmt.Errorf("saving %s: dtype %q is not supported, use F32 or BF16", dir, dtype)
	}
	maxShard := opts.MaxShardBytes
	if maxShard <= 0 {
		maxShard = 5_000_000_000
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return fmt.Errorf("saving model: directory %s is not empty", dir)
	}

	// NOTE: all encoded tensors stay in memory until written, so saving needs
	// the model's size again (5.4 GB more for the 2B preset in BF16). Loading
	// reads one tensor at a time.
	var stored []safetensors.Tensor
	for _, spec := range m.Config.Params() {
		values, err := m.Param(spec.Name)
		if err != nil {
			return err
		}
		t, err := safetensors.Float32Tensor(spec.Name, spec.Shape, values, dtype)
		if err != nil {
			return fmt.Errorf("encoding parameter %q: %w", spec.Name, err)
		}
		stored = append(stored, t)
	}

	cfg := m.Config.Clone()
	cfg.TorchDType = map[string]string{"F32": "float32", "BF16": "bfloat16"}[dtype]
	configJSON, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("encoding config.json: %w", err)
	}

	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("saving model: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("saving model: %w", err)
	}
	defer os.RemoveAll(tmp)
	// MkdirTemp makes the folder private (0700), but the renamed model folder should not be.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("saving model: %w", err)
	}
	if err := safetensors.WriteSharded(tmp, stored, maxShard, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "config.json"), append(configJSON, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving model: %w", err)
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("saving model: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("saving model: %w", err)
	}
	slog.Info("saved model", "dir", dir, "dtype", dtype)
	return nil
}
