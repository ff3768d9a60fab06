package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rgemma-toolkit/rgemma/rgemma"
	"github.com/rgemma-toolkit/rgemma/rgemma/tokenizer"
)

// modelFlags are the flags shared by the commands that load a model.
type modelFlags struct {
	dir       *string
	backend   *string
	tokenizer *string
}

func addModelFlags(fs *flag.FlagSet) modelFlags {
	return modelFlags{
		dir:       fs.String("model", "", "model directory with config.json and model.safetensors (required)"),
		backend:   fs.String("backend", "", "execution backend: auto, go or xla[:PLUGIN] (default: $GOMLX_BACKEND, else auto)"),
		tokenizer: fs.String("tokenizer", "", "tokenizer: a tokenizer.model path, \"byte\", or empty for MODEL/tokenizer.model (byte-level when absent and vocab_size is 256)"),
	}
}

// load opens the model and its tokenizer; the tokenizer is nil when the
// model has none and is not byte-level.
func (f modelFlags) load() (*rgemma.Model, tokenizer.Tokenizer, error) {
	if *f.dir == "" {
		return nil, nil, errors.New("missing -model DIR")
	}
	if st, err := os.Stat(*f.dir); err != nil || !st.IsDir() {
		return nil, nil, fmt.Errorf("model directory %s not found", *f.dir)
	}
	backend, err := rgemma.NewBackend(*f.backend)
	if err != nil {
		return nil, nil, err
	}
	m, err := rgemma.LoadModel(backend, *f.dir)
	if err != nil {
		return nil, nil, err
	}
	tok, err := f.loadTokenizer(m.Config)
	if err != nil {
		return nil, nil, err
	}
	if tok != nil && tok.VocabSize() > m.Config.VocabSize {
		return nil, nil, fmt.Errorf("tokenizer has %d ids but the model vocab_size is %d", tok.VocabSize(), m.Config.VocabSize)
	}
	return m, tok, nil
}

func (f modelFlags) loadTokenizer(cfg *rgemma.Config) (tokenizer.Tokenizer, error) {
	switch *f.tokenizer {
	case "byte":
		return tokenizer.NewByte(), nil
	case "":
		tok, err := tokenizer.Load(*f.dir)
		if err == nil {
			return tok, nil
		}
		if !errors.Is(err, tokenizer.ErrModelNotFound) {
			return nil, err
		}
		if cfg.VocabSize == 256 {
			slog.Info("no tokenizer.model in the model directory: using the byte-level tokenizer", "dir", *f.dir)
			return tokenizer.NewByte(), nil
		}
		slog.Warn("no tokenizer.model in the model directory: only token ids can be used", "dir", *f.dir)
		return nil, nil
	default:
		return tokenizer.LoadSentencePiece(*f.tokenizer)
	}
}

// parseIDs parses "1,2,3" (spaces allowed).
func parseIDs(s string) ([]int32, error) {
	var out []int32
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, err := strconv.ParseInt(part, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("invalid token id %q: %w", part, err)
		}
		out = append(out, int32(v))
	}
	if len(out) == 0 {
		return nil, errors.New("no token ids given")
	}
	return out, nil
}

// printJSON writes v as one line of JSON to stdout.
func printJSON(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Println(string(data))
	return err
}

func checkFormat(format string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("invalid -format %q: use text or json", format)
	}
	return nil
}

// selfCommand returns how the user can run this command again: "go run
// ./cmd/rgemma" when it was started by `go run` (its binary then sits in a
// temporary go-build folder), else the path it was started with.
func selfCommand() string {
	if strings.Contains(filepath.ToSlash(os.Args[0]), "/go-build") {
		return "go run ./cmd/rgemma"
	}
	return os.Args[0]
}
