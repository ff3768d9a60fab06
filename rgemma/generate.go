package rgemma

import (
	"fmt"
	"strings"
)

// Stop reasons reported by Generate.
const (
	StopEOS       = "eos"
	StopMaxTokens = "max_new_tokens"
	StopString    = "stop_string"
)

// GenerateOptions configure Model.Generate.
type GenerateOptions struct {
	MaxNewTokens int
	Sampling     SamplingOptions
	// EOSID ends a row when generated; the EOS itself is not returned.
	// A negative value disables it.
	EOSID int
	// StopStrings end a row once its decoded continuation contains one of
	// them; the text is cut before it. They need Decode.
	StopStrings []string
	// Decode turns ids into text, for StopStrings.
	Decode func(ids []int32) string
	// OnToken, when set, receives every generated token as it is produced
	// (streaming), before the stop checks.
	OnToken func(row int, id int32)
}

// GenerateResult holds the continuation of each prompt.
type GenerateResult struct {
	IDs         [][]int32 // Generated ids per row, without the prompt and the EOS.
	StopReasons []string  // StopEOS, StopMaxTokens or StopString per row.
	// Texts is the decoded continuation per row, cut before a stop string;
	// empty when GenerateOptions.Decode is nil.
	Texts []string
}

// Generate continues each prompt (rows may have different lengths) with
// fixed-size-state decoding: one prefill, then one compiled single-token
// step per new token. A row stops on EOS, a stop string or MaxNewTokens;
// finished rows receive no more tokens while the others go on.
func (m *Model) Generate(prompts [][]int32, opts GenerateOptions) (*GenerateResult, error) {
	if err := opts.Sampling.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxNewTokens <= 0 {
		return nil, fmt.Errorf("max new tokens must be > 0, got %d", opts.MaxNewTokens)
	}
	if len(prompts) == 0 {
		return nil, fmt.Errorf("no prompts given")
	}
	for b, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("prompt %d is empty: it needs at least one token (e.g. BOS)", b)
		}
	}
	if len(opts.StopStrings) > 0 && opts.Decode == nil {
		return nil, fmt.Errorf("stop strings need a tokenizer to decode the generated ids")
	}

	d, err := m.NewDecoder(len(prompts))
	if err != nil {
		return nil, err
	}
	res := &GenerateResult{
		IDs:         make([][]int32, len(prompts)),
		StopReasons: make([]string, len(prompts)),
		Texts:       make([]string, len(prompts)),
	}
	samplers := make([]*Sampler, len(prompts))
	for b := range samplers {
		samplers[b] = NewSampler(opts.Sampling, uint64(b))
	}

	logits, err := d.Feed(prompts)
	if err != nil {
		return nil, err
	}
	last := make([][]float32, len(prompts))
	for b := range prompts {
		last[b] = logits[b][len(logits[b])-1]
	}

	for step := 0; ; step++ {
		next := make([][]int32, len(prompts))
		active := 0
		for b := range prompts {
			if res.StopReasons[b] != "" {
				continue
			}
			id := samplers[b].Sample(last[b])
			if opts.OnToken != nil {
				opts.OnToken(b, id)
			}
			if opts.EOSID >= 0 && int(id) == opts.EOSID {
				res.StopReasons[b] = StopEOS
				continue
			}
			res.IDs[b] = append(res.IDs[b], id)
			if cut, ok := findStop(opts, res.IDs[b]); ok {
				res.StopReasons[b] = StopString
				res.Texts[b] = cut
				continue
			}
			if len(res.IDs[b]) >= opts.MaxNewTokens {
				res.StopReasons[b] = StopMaxTokens
				continue
			}
			next[b] = []int32{id}
			active++
		}
		if active == 0 {
			break
		}
		logits, err := d.Feed(next)
		if err != nil {
			return nil, err
		}
		for b := range prompts {
			if len(next[b]) > 0 {
				last[b] = logits[b][0]
			}
		}
	}

	if opts.Decode != nil {
		for b := range prompts {
			if res.StopReasons[b] != StopString {
				res.Texts[b] = opts.Decode(res.IDs[b])
			}
		}
	}
	return res, nil
}

// findStop reports whether the decoded ids contain a stop string, and the
// text before it.
func findStop(opts GenerateOptions, ids []int32) (string, bool) {
	if len(opts.StopStrings) == 0 {
		return "", false
	}
	text := opts.Decode(ids)
	cut, found := len(text), false
	for _, s := range opts.StopStrings {
		if s == "" {
			continue
		}
		if i := strings.Index(text, s); i >= 0 && i < cut {
			cut, found = i, true
		}
	}
	return text[:cut], found
}
