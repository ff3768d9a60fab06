package data

import (
	"maps"
	"math"
	"slices"
)

// UnigramEntropy returns the entropy, in nats per token, of the unigram
// distribution of the tokens that the next-token loss predicts: every token
// of each document except its first, since no earlier token of the same
// document predicts the first. This is the lowest loss a model that ignores
// context can reach on the same data, measured in-sample.
//
// docs are token sequences such as those of Tokenize, before packing. Pack
// restarts positions at every chunk of a document longer than a row, and
// the loss does not predict a chunk's first token either, so the packed
// loss counts slightly fewer targets than this function. vocab sizes the
// count table; ids outside [0, vocab) are counted too. It returns NaN when
// no document has 2 or more tokens.
func UnigramEntropy(docs [][]int32, vocab int) float64 {
	counts := make([]int64, max(vocab, 0))
	var other map[int32]int64 // ids outside [0, vocab)
	var total int64
	for _, doc := range docs {
		for _, id := range doc[min(1, len(doc)):] {
			if id >= 0 && int(id) < len(counts) {
				counts[id]++
			} else {
				if other == nil {
					other = make(map[int32]int64)
				}
				other[id]++
			}
			total++
		}
	}
	if total == 0 {
		return math.NaN()
	}

	entropy := 0.0
	add := func(count int64) {
		if count > 0 {
			p := float64(count) / float64(total)
			entropy -= p * math.Log(p)
		}
	}
	for _, c := range counts {
		add(c)
	}
	for _, id := range slices.Sorted(maps.Keys(other)) { // a fixed order keeps the sum reproducible
		add(other[id])
	}
	return entropy
}
