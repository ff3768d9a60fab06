package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/rgemma-toolkit/rgemma/train"
)

func runTrain(args []string) error {
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	configPath := fs.String("config", "", "training config JSON (see configs/runs/); without it, the main job: the small preset on the Go standard library")
	out := fs.String("out", "", "run folder (checkpoints, metrics.jsonl, loss.png, samples.txt, export/)")
	maxSteps := fs.Int("max-steps", 0, "number of optimizer steps; 0 keeps the config's value")
	maxMinutes := fs.Float64("max-minutes", -1, "stop early, with a checkpoint, after this many minutes; 0 = no limit (overrides the config)")
	model := fs.String("model", "", "model preset or config.json for a run from scratch (overrides the config)")
	initFrom := fs.String("init-from", "", "Hugging Face checkpoint directory to fine-tune (overrides the config)")
	dataFlag := fs.String("data", "", "comma-separated corpus sources, [text:|jsonl:|jsonl=FIELD:]PATH with an optional file-name glob (overrides the config)")
	batch := fs.Int("batch-size", 0, "rows per micro-batch (overrides the config)")
	seqLen := fs.Int("seq-len", 0, "tokens per row (overrides the config)")
	lr := fs.Float64("lr", 0, "peak learning rate (overrides the config)")
	seed := fs.Uint64("seed", 0, "random seed for initialisation and data order (overrides the config)")
	backend := fs.String("backend", "", "execution backend: auto, go or xla[:PLUGIN] (default: $GOMLX_BACKEND, else auto)")
	resume := fs.Bool("resume", false, "continue the run in -out from its newest checkpoint")
	noProgress := fs.Bool("no-progress", false, "do not draw the progress bar")
	faultNaN := fs.Int("fault-nan-at-step", 0, "testing aid: make the loss of this step NaN")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %v", fs.Args())
	}

	cfg := train.Defaults()
	if *configPath != "" {
		loaded, err := train.LoadConfig(*configPath)
		if err != nil {
			return err
		}
		cfg = loaded
	}
	if *out != "" {
		cfg.Out = *out
	}
	if *maxSteps > 0 {
		cfg.MaxSteps = *maxSteps
	}
	if *maxMinutes >= 0 {
		cfg.MaxMinutes = *maxMinutes
	}
	if *model != "" {
		cfg.Model, cfg.InitFrom = *model, ""
	}
	if *initFrom != "" {
		cfg.InitFrom, cfg.Model = *initFrom, ""
	}
	if *dataFlag != "" {
		cfg.Data = strings.Split(*dataFlag, ",")
	}
	if *batch > 0 {
		cfg.BatchSize = *batch
	}
	if *seqLen != 0 {
		cfg.SeqLen = *seqLen
	}
	if *lr > 0 {
		cfg.LearningRate = *lr
	}
	if *seed > 0 {
		cfg.Seed = *seed
	}
	if *backend != "" {
		cfg.Backend = *backend
	}
	if cfg.Out == "" {
		return errors.New("missing -out DIR (or \"out\" in the config)")
	}
	if *resume && *out == "" && *configPath == "" {
		return errors.New("-resume needs the run folder: pass -out DIR")
	}

	opts := train.Options{Resume: *resume, Progress: !*noProgress, FaultNaNAtStep: *faultNaN}
	trainer, err := train.New(cfg, opts)
	if err != nil {
		return err
	}

	// SIGINT/SIGTERM stop the loop after the current step; the trainer then
	// saves a checkpoint. A second signal kills the process as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop()
	}()

	res, err := trainer.Run(ctx, opts)
	if err != nil {
		return err
	}
	if res.Interrupted {
		fmt.Printf("interrupted at step %d; checkpoint saved in %s\nresume with: %s train -out %s -resume (plus the same -config and flags)\n",
			res.Steps, res.LastCheckpoint, selfCommand(), res.Dir)
		return nil
	}
	fmt.Printf("run folder: %s\n", res.Dir)
	fmt.Printf("steps: %d, training loss: %.4f nats/token, eval loss: %.4f, unigram entropy of the corpus: %.4f, speed over the last logged steps: %.0f tokens/s\n",
		res.Steps, res.FinalLoss, res.EvalLoss, res.UnigramEntropy, res.TokensPerSecond)
	fmt.Printf("exported model: %s (try: %s generate -model %s -prompt \"func main() {\")\n", res.Export, selfCommand(), res.Export)
	return nil
}
