// Package tokenizer converts between text and the token ids of a RecurrentGemma
// model: Gemma's SentencePiece model for pretrained checkpoints and a
// byte-level vocabulary for models trained from scratch.
package tokenizer

// Tokenizer encodes text to token ids and decodes ids back to text.
type Tokenizer interface {
	// Encode converts text to ids. With addBOS set, the result starts with
	// exactly one BOS id, also when the text itself already starts with the
	// BOS piece.
	Encode(text string, addBOS bool) ([]int, error)

	// Decode converts ids back to text. Special ids (PAD, BOS, EOS) are dropped.
	Decode(ids []int) string

	// VocabSize returns the number of ids; every id is in [0, VocabSize).
	VocabSize() int

	// PadID, EOSID and BOSID return the ids of the special tokens.
	PadID() int
	EOSID() int
	BOSID() int
}
