package train

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"

	"github.com/rgemma-toolkit/rgemma/rgemma"
	"github.com/rgemma-toolkit/rgemma/rgemma/tokenizer"
	"github.com/rgemma-toolkit/rgemma/train/data"
)

// buildModel creates the model of a run: a preset or config.json with the
// original Griffin initialisation, or a Hugging Face checkpoint.
func buildModel(backend backends.Backend, cfg *Config) (*rgemma.Model, error) {
	if cfg.InitFrom != "" {
		return rgemma.LoadModel(backend, cfg.InitFrom)
	}
	var mc *rgemma.Config
	var err error
	if strings.HasSuffix(cfg.Model, ".json") {
		mc, err = rgemma.LoadConfig(cfg.Model)
	} else {
		mc, err = rgemma.Preset(cfg.Model)
	}
	if err != nil {
		return nil, err
	}
	m, err := rgemma.NewModel(backend, mc)
	if err != nil {
		return nil, err
	}
	if err := m.InitRandom(cfg.Seed); err != nil {
		return nil, err
	}
	slog.Info("initialised model from scratch", "scheme", "original Griffin (w_init_variance_scale)",
		"w_init_variance_scale", mc.WInitVarianceScale, "final_w_init_variance_scale", mc.FinalWInitVarianceScale)
	return m, nil
}

// loadTokenizer returns the run's tokenizer: "byte", a tokenizer.model path,
// or, when empty, the tokenizer.model of init_from (byte-level without one).
func loadTokenizer(cfg *Config) (tokenizer.Tokenizer, error) {
	switch {
	case cfg.Tokenizer == "byte":
		return tokenizer.NewByte(), nil
	case cfg.Tokenizer != "":
		return tokenizer.LoadSentencePiece(cfg.Tokenizer)
	case cfg.InitFrom != "":
		tok, err := tokenizer.Load(cfg.InitFrom)
		if errors.Is(err, tokenizer.ErrModelNotFound) {
			return tokenizer.NewByte(), nil
		}
		return tok, err
	}
	return tokenizer.NewByte(), nil
}

// dataset is the packed training and evaluation data of a run.
type dataset struct {
	train, eval *data.Packed
	// unigramEntropy of the training targets, in nats per token: the loss of
	// a model that ignores context.
	unigramEntropy float64
	documents      int
	tokens         int
}

// loadData reads, tokenises, packs and splits the corpus.
func loadData(cfg *Config, tok tokenizer.Tokenizer) (*dataset, error) {
	var sources []data.Source
	for _, spec := range cfg.Data {
		src, err := data.ParseSource(expandEnv(spec))
		if err != nil {
			return nil, err
		}
		sources = append(sources, src)
	}
	docs, stats, err := data.ReadDocuments(sources, data.ReadOptions{MaxBytes: cfg.MaxDataBytes})
	if err != nil {
		return nil, err
	}
	ids, tstats, err := data.Tokenize(docs, tok, true, true)
	if err != nil {
		return nil, err
	}
	packed, err := data.Pack(ids, cfg.SeqLen, int32(tok.PadID()))
	if err != nil {
		return nil, err
	}
	trainSet, evalSet, err := data.Split(packed, cfg.EvalFraction, cfg.Seed)
	if err != nil {
		return nil, err
	}
	ds := &dataset{
		train:          trainSet,
		eval:           evalSet,
		unigramEntropy: data.UnigramEntropy(ids, tok.VocabSize()),
		documents:      tstats.Documents,
		tokens:         tstats.Tokens,
	}
	ps := packed.Stats()
	slog.Info("corpus ready", "files", stats.Files, "bytes", stats.Bytes, "documents", tstats.Documents,
		"skipped_files", stats.SkippedFiles, "tokens", tstats.Tokens, "rows", ps.Rows,
		"padding", fmt.Sprintf("%.1f%%", 100*ps.PaddingFraction), "train_rows", trainSet.Rows(), "eval_rows", evalSet.Rows(),
		"unigram_entropy_nats", fmt.Sprintf("%.4f", ds.unigramEntropy))
	return ds, nil
}

// applyFreeze marks the matching parameters as not trainable and returns
// how many it froze. A pattern is a block kind (embedding, recurrent,
// attention, mlp, norms) or a glob on Hugging Face names.
func applyFreeze(m *rgemma.Model, patterns []string) (int, error) {
	frozen := 0
	for _, pattern := range patterns {
		if _, err := path.Match(pattern, ""); err != nil {
			return 0, fmt.Errorf("invalid freeze pattern %q: %w", pattern, err)
		}
		matched := 0
		for _, spec := range m.Config.Params() {
			if !freezeMatches(spec, pattern) {
				continue
			}
			scope, name := spec.ScopeAndName()
			v := m.Context.GetVariableByScopeAndName(scope, name)
			if v.Trainable {
				v.SetTrainable(false)
				frozen++
			}
			matched++
		}
		if matched == 0 {
			return 0, fmt.Errorf("freeze pattern %q matches no parameter (use embedding, recurrent, attention, mlp, norms or a glob on names such as model.layers.0.*)", pattern)
		}
	}
	return frozen, nil
}

func freezeMatches(spec rgemma.ParamSpec, pattern string) bool {
	switch pattern {
	case "embedding":
		return spec.Name == "model.embed_tokens.weight" || spec.Name == "lm_head.weight"
	case "recurrent", "attention":
		return spec.Block == rgemma.BlockType(pattern) && strings.Contains(spec.Name, ".temporal_block.")
	case "mlp":
		return strings.Contains(spec.Name, ".mlp_block.")
	case "norms":
		return strings.Contains(spec.Name, "norm.weight")
	}
	ok, _ := path.Match(pattern, spec.Name)
	return ok
}

// addLoRA creates the adapters of every matching linear layer and freezes
// all base parameters. A starts normal with std 1/sqrt(in) and B at zero,
// so the model is unchanged at step 0.
func addLoRA(m *rgemma.Model, lora *LoRAConfig, seed uint64) ([]string, error) {
	rng := rand.New(rand.NewPCG(seed, 0x10A))
	var adapted []string
	for _, spec := range m.Config.Params() {
		scope, name := spec.ScopeAndName()
		m.Context.GetVariableByScopeAndName(scope, name).SetTrainable(false)
		if name != "weight" || len(spec.Shape) != 2 || spec.Name == "model.embed_tokens.weight" || spec.Name == "lm_head.weight" {
			continue
		}
		prefix := strings.TrimSuffix(spec.Name, ".weight")
		if !matchesTarget(prefix, lora.Targets) {
			continue
		}
		out, in := spec.Shape[0], spec.Shape[1]
		a := make([]float32, lora.Rank*in)
		for i := range a {
			a[i] = float32(rng.NormFloat64() / sqrt(float64(in)))
		}
		ctx := m.Context.InAbsPath(rgemma.LoRAScope(prefix))
		ctx.VariableWithValue("a", tensors.FromFlatDataAndDimensions(a, lora.Rank, in))
		ctx.VariableWithValue("b", tensors.FromFlatDataAndDimensions(make([]float32, out*lora.Rank), out, lora.Rank))
		ctx.VariableWithValue("scale", float32(lora.Alpha/float64(lora.Rank))).SetTrainable(false)
		adapted = append(adapted, prefix)
	}
	if len(adapted) == 0 {
		return nil, fmt.Errorf("lora targets %v match no linear layer (e.g. q_proj, k_proj, v_proj, o_proj, linear_x, linear_y, linear_out, gate_proj, up_proj, down_proj)", lora.Targets)
	}
	return adapted, nil
}

func matchesTarget(prefix string, targets []string) bool {
	for _, t := range targets {
		if strings.HasSuffix(prefix, "."+t) || prefix == t {
			return true
		}
	}
	return false
}

// trainableVariables lists the trainable variables in context order, the
// order GoMLX optimizers expect their gradients in.
func trainableVariables(ctx *mlctx.Context) []*mlctx.Variable {
	var out []*mlctx.Variable
	for v := range ctx.IterVariables() {
		if v.Trainable {
			out = append(out, v)
		}
	}
	return out
}

// prepareOutDir creates the run folder and checks that it is writable.
func prepareOutDir(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, checkpointsDir), 0o755); err != nil {
		return fmt.Errorf("creating run folder: %w", err)
	}
	probe, err := os.CreateTemp(dir, ".write-test-")
	if err != nil {
		return fmt.Errorf("run folder %s is not writable: %w", dir, err)
	}
	probe.Close()
	return os.Remove(probe.Name())
}

func sqrt(x float64) float64 { return math.Sqrt(x) }

// expandEnv expands $VAR and ${VAR} in a data source; $GOROOT falls back to
// the Go installation when the variable is unset.
func expandEnv(s string) string {
	return os.Expand(s, func(name string) string {
		if name == "GOROOT" {
			return goRoot()
		}
		return os.Getenv(name)
	})
}
