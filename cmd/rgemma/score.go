package main

import (
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/rgemma-toolkit/rgemma/rgemma/tokenizer"
)

func runScore(args []string) error {
	fs := flag.NewFlagSet("score", flag.ContinueOnError)
	mf := addModelFlags(fs)
	text := fs.String("text", "", "text to score")
	file := fs.String("file", "", "file whose text is scored as one document")
	idsFlag := fs.String("ids", "", "comma-separated token ids to score")
	noBOS := fs.Bool("no-bos", false, "do not prepend BOS to text")
	format := fs.String("format", "text", "output format: text or json (one object on the last line)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := checkFormat(*format); err != nil {
		return err
	}
	given := 0
	for _, s := range []string{*text, *file, *idsFlag} {
		if s != "" {
			given++
		}
	}
	if given != 1 {
		return errors.New("give exactly one of -text, -file or -ids")
	}

	m, tok, err := mf.load()
	if err != nil {
		return err
	}
	var ids []int32
	if *idsFlag != "" {
		if ids, err = parseIDs(*idsFlag); err != nil {
			return err
		}
	} else {
		if tok == nil {
			return errors.New("text needs a tokenizer: put tokenizer.model in the model directory, pass -tokenizer, or use -ids")
		}
		input := *text
		if *file != "" {
			data, err := os.ReadFile(*file)
			if err != nil {
				return fmt.Errorf("reading text: %w", err)
			}
			input = string(data)
		}
		encoded, err := tok.Encode(input, !*noBOS)
		if err != nil {
			return err
		}
		ids = tokenizer.ToInt32(encoded)
	}

	res, err := m.Score(ids)
	if err != nil {
		return err
	}
	if *format == "json" {
		return printJSON(map[string]any{"ids": ids, "logprobs": res.LogProbs, "perplexity": res.Perplexity})
	}
	for i, lp := range res.LogProbs {
		piece := ""
		if tok != nil {
			piece = fmt.Sprintf("%q", tok.Decode([]int{int(ids[i+1])}))
		}
		fmt.Printf("%5d  id %-7d %-12s logprob %9.4f\n", i+1, ids[i+1], piece, lp)
	}
	fmt.Printf("tokens scored %d, perplexity %.4f\n", len(res.LogProbs), res.Perplexity)
	return nil
}
