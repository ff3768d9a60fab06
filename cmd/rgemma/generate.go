package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/rgemma-toolkit/rgemma/rgemma"
	"github.com/rgemma-toolkit/rgemma/rgemma/tokenizer"
)

func runGenerate(args []string) error {
	fs := flag.NewFlagSet("generate", flag.ContinueOnError)
	mf := addModelFlags(fs)
	prompt := fs.String("prompt", "", "prompt text")
	promptIDs := fs.String("prompt-ids", "", "prompt as comma-separated token ids, e.g. 2,651,6037")
	promptsFile := fs.String("prompts-file", "", "file with one prompt per line, generated as one batch")
	maxNew := fs.Int("max-new-tokens", 64, "maximum number of tokens to generate per prompt")
	temperature := fs.Float64("temperature", 0, "sampling temperature; 0 is greedy")
	topK := fs.Int("top-k", 0, "sample from the K most likely tokens; 0 disables")
	topP := fs.Float64("top-p", 0, "sample from the smallest set of tokens whose probability reaches P; 0 or 1 disables")
	seed := fs.Uint64("seed", 1, "random seed; the same seed gives the same tokens")
	stop := fs.String("stop", "", "comma-separated stop strings (needs a tokenizer)")
	noBOS := fs.Bool("no-bos", false, "do not prepend BOS to text prompts")
	format := fs.String("format", "text", "output format: text (streamed) or json (one object per prompt, one per line)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	given := 0
	for _, s := range []string{*prompt, *promptIDs, *promptsFile} {
		if s != "" {
			given++
		}
	}
	if given != 1 {
		return errors.New("give exactly one of -prompt, -prompt-ids or -prompts-file")
	}

	m, tok, err := mf.load()
	if err != nil {
		return err
	}

	// Prompts as ids.
	var prompts [][]int32
	switch {
	case *promptIDs != "":
		ids, err := parseIDs(*promptIDs)
		if err != nil {
			return err
		}
		prompts = append(prompts, ids)
	default:
		if tok == nil {
			return errors.New("text prompts need a tokenizer: put tokenizer.model in the model directory, pass -tokenizer, or use -prompt-ids")
		}
		texts := []string{*prompt}
		if *promptsFile != "" {
			data, err := os.ReadFile(*promptsFile)
			if err != nil {
				return fmt.Errorf("reading prompts: %w", err)
			}
			texts = nil
			for _, line := range strings.Split(strings.TrimRight(string(data), "\n"), "\n") {
				texts = append(texts, line)
			}
		}
		for i, text := range texts {
			ids, err := tok.Encode(text, !*noBOS)
			if err != nil {
				return fmt.Errorf("encoding prompt %d: %w", i+1, err)
			}
			if len(ids) == 0 {
				return fmt.Errorf("prompt %d is empty", i+1)
			}
			prompts = append(prompts, tokenizer.ToInt32(ids))
		}
	}

	opts := rgemma.GenerateOptions{
		MaxNewTokens: *maxNew,
		Sampling:     rgemma.SamplingOptions{Temperature: *temperature, TopK: *topK, TopP: *topP, Seed: *seed},
		EOSID:        m.Config.EOSTokenID,
	}
	if tok != nil {
		opts.Decode = func(ids []int32) string { return tok.Decode(tokenizer.FromInt32(ids)) }
	}
	if *stop != "" {
		opts.StopStrings = strings.Split(*stop, ",")
	}

	// Text output streams the tokens of a single prompt as they come.
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	if *format == "text" && len(prompts) == 1 && tok != nil && len(opts.StopStrings) == 0 {
		var emitted []int32
		printed := ""
		opts.OnToken = func(_ int, id int32) {
			if int(id) == m.Config.EOSTokenID {
				return
			}
			emitted = append(emitted, id)
			text := tok.Decode(tokenizer.FromInt32(emitted))
			if strings.HasPrefix(text, printed) && !strings.HasSuffix(text, "\uFFFD") {
				fmt.Fprint(out, text[len(printed):])
				printed = text
				out.Flush()
			}
		}
	}

	// The first two steps include the prompt and the compilation of the
	// prompt and one-token graphs, so the speed is reported after them.
	var produced int
	var firstStep, secondStep time.Time
	printToken := opts.OnToken
	opts.OnToken = func(row int, id int32) {
		produced++
		switch produced {
		case len(prompts):
			firstStep = time.Now()
		case 2 * len(prompts):
			secondStep = time.Now()
		}
		if printToken != nil {
			printToken(row, id)
		}
	}
	start := time.Now()
	res, err := m.Generate(prompts, opts)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)

	for b := range prompts {
		switch {
		case *format == "json":
			obj := map[string]any{"ids": nonNil(res.IDs[b]), "prompt_ids": prompts[b], "stop_reason": res.StopReasons[b]}
			if tok != nil {
				obj["text"] = res.Texts[b]
			}
			out.Flush()
			if err := printJSON(obj); err != nil {
				return err
			}
		case printToken != nil:
			fmt.Fprintln(out) // The text was streamed.
		case tok != nil:
			if len(prompts) > 1 {
				fmt.Fprintf(out, "--- prompt %d (%s)\n", b+1, res.StopReasons[b])
			}
			fmt.Fprintln(out, res.Texts[b])
		default:
			fmt.Fprintln(out, strings.Trim(fmt.Sprint(res.IDs[b]), "[]"))
		}
	}
	total := 0
	for _, ids := range res.IDs {
		total += len(ids)
	}
	summary := fmt.Sprintf("generated %d tokens in %.2fs", total, elapsed.Seconds())
	if !secondStep.IsZero() {
		later := total - 2*len(prompts)
		summary += fmt.Sprintf(" (first step %.2fs, second %.2fs: prompt and graph compilation)",
			firstStep.Sub(start).Seconds(), secondStep.Sub(firstStep).Seconds())
		if rest := time.Since(secondStep).Seconds(); later > 0 && rest > 0 {
			summary += fmt.Sprintf(", then %.1f tokens/s", float64(later)/rest)
		}
	}
	out.Flush() // Keep the summary on stderr after the generated text.
	fmt.Fprintln(os.Stderr, summary)
	return nil
}

func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return ids
}
