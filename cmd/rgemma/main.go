// Command rgemma loads, runs, trains and inspects RecurrentGemma (Griffin)
// models. Run `rgemma help` for the subcommands.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
)

type command struct {
	name, summary string
	run           func(args []string) error
}

var commands = []command{
	{"train", "train or fine-tune a model; without flags, the main job (small preset on the Go standard library)", runTrain},
	{"generate", "continue prompts with fixed-size-state decoding", runGenerate},
	{"score", "print per-token log-probabilities and the perplexity of a text", runScore},
	{"inspect", "print the config, parameter counts and memory needs of a model", runInspect},
	{"init", "write a checkpoint with the random initialisation of a preset", runInit},
	{"bench", "measure forward, training and decoding speed and memory", runBench},
}

func usage() {
	fmt.Fprintf(os.Stderr, "Usage: rgemma COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(os.Stderr, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(os.Stderr, "\nRun `rgemma COMMAND -h` for the flags of a command.\n")
}

func main() {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()})))
	rerunWithMallocTunables()
	slog.Debug("malloc settings", "GLIBC_TUNABLES", os.Getenv("GLIBC_TUNABLES"))
	if len(os.Args) < 2 || os.Args[1] == "help" || os.Args[1] == "-h" || os.Args[1] == "--help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	for _, c := range commands {
		if c.name == os.Args[1] {
			err := c.run(os.Args[2:])
			if errors.Is(err, flag.ErrHelp) {
				return
			}
			if err != nil {
				fmt.Fprintf(os.Stderr, "rgemma %s: %v\n", c.name, err)
				os.Exit(1)
			}
			return
		}
	}
	fmt.Fprintf(os.Stderr, "rgemma: unknown command %q\n\n", os.Args[1])
	usage()
	os.Exit(2)
}

// logLevel reads $RGEMMA_LOG (debug, info, warn, error); the default is info.
func logLevel() slog.Level {
	var level slog.Level
	if err := level.UnmarshalText([]byte(os.Getenv("RGEMMA_LOG"))); err != nil {
		return slog.LevelInfo
	}
	return level
}
