package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/rgemma-toolkit/rgemma/rgemma"
)

// runInit writes a Hugging Face checkpoint with the random initialisation of
// a preset, so that benchmarks and other frameworks can load the same weights.
func runInit(args []string) error {
	fs := flag.NewFlagSet("init", flag.ContinueOnError)
	preset := fs.String("preset", "small", "model preset to initialise (e.g. tiny, small, medium, recurrentgemma-2b)")
	out := fs.String("out", "", "output directory for config.json and model.safetensors; must be absent or empty (required)")
	seed := fs.Uint64("seed", 1, "random seed; the same preset and seed give the same weights")
	dtype := fs.String("dtype", "F32", "stored dtype: F32 or BF16")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rgemma init -preset NAME -out DIR [-seed S] [-dtype F32|BF16]\n\n"+
			"Writes config.json and model.safetensors with the random initialisation of the preset.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q: pass the directory with -out", fs.Arg(0))
	}
	if *out == "" {
		return errors.New("missing -out DIR: name the directory to write the checkpoint to")
	}
	if *dtype != "F32" && *dtype != "BF16" {
		return fmt.Errorf("invalid -dtype %q: use F32 or BF16", *dtype)
	}
	// Check the directory before the (possibly long) initialisation.
	if entries, err := os.ReadDir(*out); err == nil && len(entries) > 0 {
		return fmt.Errorf("output directory %s is not empty: remove it or choose another -out", *out)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("checking output directory %s: %w", *out, err)
	}

	cfg, err := rgemma.Preset(*preset)
	if err != nil {
		return err
	}
	// The weights are made and written on the host; the pure-Go backend is
	// enough and avoids loading an XLA plugin.
	backend, err := rgemma.NewBackend("go")
	if err != nil {
		return err
	}
	m, err := rgemma.NewModel(backend, cfg)
	if err != nil {
		return err
	}
	start := time.Now()
	slog.Info("initialising weights", "preset", *preset, "seed", *seed, "parameters", cfg.NumParams())
	if err := m.InitRandom(*seed); err != nil {
		return fmt.Errorf("initialising preset %q: %w", *preset, err)
	}
	if err := m.Save(*out, rgemma.SaveOptions{DType: *dtype}); err != nil {
		return err
	}
	slog.Info("checkpoint written", "dir", *out, "preset", *preset, "seed", *seed, "dtype", *dtype,
		"seconds", fmt.Sprintf("%.1f", time.Since(start).Seconds()))
	return nil
}
