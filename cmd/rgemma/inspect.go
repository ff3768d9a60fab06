package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/rgemma-toolkit/rgemma/rgemma"
	"github.com/rgemma-toolkit/rgemma/rgemma/safetensors"
)

func runInspect(args []string) error {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	preset := fs.String("preset", "", "inspect a built-in model preset (e.g. small, recurrentgemma-2b) instead of a directory")
	modelDir := fs.String("model", "", "model directory (the same as giving DIR as the argument)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: rgemma inspect DIR | rgemma inspect -model DIR | rgemma inspect -preset NAME\n\nPrints the config summary, parameter counts by block type, the stored dtypes and the memory needed.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *modelDir != "" {
		if fs.NArg() > 0 {
			return errors.New("give the model directory once: -model DIR or DIR")
		}
		args = append(args, *modelDir)
		if err := fs.Parse(args); err != nil {
			return err
		}
	}

	var cfg *rgemma.Config
	var err error
	dtypes := map[string]int64{}
	var storedBytes int64
	switch {
	case *preset != "" && fs.NArg() == 0:
		cfg, err = rgemma.Preset(*preset)
	case *preset == "" && fs.NArg() == 1:
		dir := fs.Arg(0)
		cfg, err = rgemma.LoadConfig(filepath.Join(dir, "config.json"))
		if err != nil {
			return err
		}
		ckpt, openErr := safetensors.OpenDir(dir)
		if openErr != nil {
			return openErr
		}
		defer ckpt.Close()
		if _, ok := ckpt.Info("lm_head.weight"); ok {
			cfg.TieWordEmbeddings = false
		}
		for _, name := range ckpt.Names() {
			info, _ := ckpt.Info(name)
			dtypes[info.DType] += info.NumElements()
			storedBytes += info.NumBytes()
		}
	default:
		fs.Usage()
		return errors.New("expected one model directory or -preset NAME")
	}
	if err != nil {
		return err
	}

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "config\t%s\n", cfg.Summary())
	fmt.Fprintf(w, "head_dim\t%d (RoPE on %d dims, theta %g)\n", cfg.HeadDim(), cfg.RotaryDim(), cfg.RopeTheta)
	fmt.Fprintf(w, "tied embeddings\t%v\n", cfg.TieWordEmbeddings)
	var recurrent, attention int
	for i := 0; i < cfg.NumHiddenLayers; i++ {
		if cfg.LayerType(i) == rgemma.Recurrent {
			recurrent++
		} else {
			attention++
		}
	}
	fmt.Fprintf(w, "layers\t%d recurrent, %d attention\n", recurrent, attention)

	groups := cfg.ParamGroups()
	names := make([]string, 0, len(groups))
	for name := range groups {
		names = append(names, name)
	}
	sort.Strings(names)
	total := cfg.NumParams()
	for _, name := range names {
		fmt.Fprintf(w, "parameters %s\t%s (%.1f%%)\n", name, humanCount(groups[name]), 100*float64(groups[name])/float64(total))
	}
	fmt.Fprintf(w, "parameters total\t%s\n", humanCount(total))

	if len(dtypes) > 0 {
		var parts []string
		for dt, n := range dtypes {
			parts = append(parts, fmt.Sprintf("%s (%s elements)", dt, humanCount(n)))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "stored dtype\t%v\n", parts)
		fmt.Fprintf(w, "stored size\t%s\n", humanBytes(storedBytes))
	}
	fmt.Fprintf(w, "memory, weights in float32\t%s (bfloat16 on disk: %s)\n", humanBytes(4*total), humanBytes(2*total))
	fmt.Fprintf(w, "memory, decoding state\t%s per sequence, independent of its length\n", humanBytes(cfg.DecodeStateBytes()))
	return w.Flush()
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.3fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
