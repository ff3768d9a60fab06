package data

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/rgemma-toolkit/rgemma/rgemma/tokenizer"
)

// TokenizeStats counts what Tokenize kept and skipped.
type TokenizeStats struct {
	// Documents is the number of token sequences returned.
	Documents int

	// Tokens is the total length of the returned sequences, BOS and EOS
	// included.
	Tokens int

	// SkippedReserved is the number of documents skipped because the
	// tokenizer rejected them with tokenizer.ErrReservedByte, as the byte
	// tokenizer does for text containing the bytes 0x00, 0x01 or 0x02.
	SkippedReserved int

	// SkippedEmpty is the number of documents skipped because they encode
	// to no token.
	SkippedEmpty int

	// SkippedExamples names the Source of up to 10 skipped documents.
	SkippedExamples []string
}

// Tokenize encodes each document with tok into one token sequence. With
// addBOS, each sequence starts with tok.BOSID(), and with addEOS it ends with
// tok.EOSID().
//
// A document that the tokenizer rejects with tokenizer.ErrReservedByte is
// skipped and counted rather than altered, so that the training data never
// contains text the corpus did not have. A document that encodes to no token
// is skipped too. Any other encoding error, an id outside
// [0, tok.VocabSize()), or having no sequence left returns an error.
func Tokenize(docs []Document, tok tokenizer.Tokenizer, addBOS, addEOS bool) ([][]int32, TokenizeStats, error) {
	var stats TokenizeStats
	if tok == nil {
		return nil, stats, errors.New("data: Tokenize needs a tokenizer, got nil")
	}
	vocab := tok.VocabSize()
	if vocab <= 0 || vocab > math.MaxInt32 {
		return nil, stats, fmt.Errorf("data: invalid tokenizer vocabulary size %d: expected 1 to %d, so that ids fit int32", vocab, math.MaxInt32)
	}
	skip := func(source string) {
		if len(stats.SkippedExamples) < maxSkippedExamples {
			stats.SkippedExamples = append(stats.SkippedExamples, source)
		}
	}

	seqs := make([][]int32, 0, len(docs))
	for _, doc := range docs {
		ids, err := tok.Encode(doc.Text, addBOS)
		if errors.Is(err, tokenizer.ErrReservedByte) {
			stats.SkippedReserved++
			skip(doc.Source)
			continue
		}
		if err != nil {
			return nil, stats, fmt.Errorf("data: failed to tokenize %s: %w", doc.Source, err)
		}
		if addEOS {
			ids = append(ids, tok.EOSID())
		}
		if len(ids) == 0 {
			stats.SkippedEmpty++
			skip(doc.Source)
			continue
		}

		seq := make([]int32, len(ids))
		for i, id := range ids {
			if id < 0 || id >= vocab {
				return nil, stats, fmt.Errorf("data: tokenizer returned id %d, outside [0, %d), at index %d of %s",
					id, vocab, i, doc.Source)
			}
			seq[i] = int32(id)
		}
		seqs = append(seqs, seq)
		stats.Documents++
		stats.Tokens += len(seq)
	}

	if len(docs) == 0 {
		return nil, stats, errors.New("data: no documents to tokenize")
	}
	if len(seqs) == 0 {
		return nil, stats, fmt.Errorf("data: all %d documents were skipped: %d contain reserved bytes and %d encode to no token (such as %s)",
			len(docs), stats.SkippedReserved, stats.SkippedEmpty, strings.Join(stats.SkippedExamples, ", "))
	}
	return seqs, stats, nil
}
