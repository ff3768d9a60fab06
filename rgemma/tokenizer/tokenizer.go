// Package tokenizer converts between text and the token ids of a RecurrentGemma
// model: Gemma's SentencePiece model for pretrained checkpoints and a
// byte-level vocabulary for models trained from scratch.
package tokenizer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Tokenizer encodes text to token ids and decodes ids back to text.
type Tokenizer interface {
	// Encode converts text to ids. With addBOS set, the result starts with
	// exactly one BOS id, also when the text itself already starts with the
	// BOS piece, such as SentencePiece's "<bos>". The byte tokenizer has no
	// textual BOS piece, and it rejects the BOS byte.
	Encode(text string, addBOS bool) ([]int, error)

	// Decode converts ids back to text. Special ids (PAD, BOS, EOS) are
	// dropped, and each id outside [0, VocabSize) becomes U+FFFD.
	Decode(ids []int) string

	// VocabSize returns the number of ids; every id is in [0, VocabSize).
	VocabSize() int

	// PadID, EOSID and BOSID return the ids of the special tokens.
	PadID() int
	EOSID() int
	BOSID() int
}

// ModelFileName is the file name that Load looks for in a checkpoint
// directory.
const ModelFileName = "tokenizer.model"

// ErrModelNotFound is wrapped by the error that Load returns when the
// directory has no ModelFileName. Callers test for it with errors.Is to fall
// back to another tokenizer, such as NewByte.
var ErrModelNotFound = errors.New("tokenizer model not found")

// Load loads the SentencePiece model dir/tokenizer.model. When that file does
// not exist, the error wraps ErrModelNotFound. Any other failure, such as a
// file that is not a SentencePiece model, returns an error that does not.
func Load(dir string) (Tokenizer, error) {
	path := filepath.Join(dir, ModelFileName)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("tokenizer: no %s found in %s: %w", ModelFileName, dir, ErrModelNotFound)
		}
		return nil, fmt.Errorf("tokenizer: %w", err)
	}

	sp, err := LoadSentencePiece(path)
	if err != nil {
		return nil, err
	}
	return sp, nil
}

// ToInt32 converts tokenizer ids to the int32 ids the model takes.
func ToInt32(ids []int) []int32 {
	out := make([]int32, len(ids))
	for i, v := range ids {
		out[i] = int32(v)
	}
	return out
}

// FromInt32 converts model ids to the int ids of the Tokenizer interface.
func FromInt32(ids []int32) []int {
	out := make([]int, len(ids))
	for i, v := range ids {
		out[i] = int(v)
	}
	return out
}
