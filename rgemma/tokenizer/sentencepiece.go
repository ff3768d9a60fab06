package tokenizer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	sentencepiece "github.com/eliben/go-sentencepiece"
	"google.golang.org/protobuf/encoding/protowire"
)

// BOSPiece is the text of Gemma's BOS piece. A leading BOSPiece in the text
// passed to SentencePiece.Encode with addBOS set is taken as the requested BOS.
const BOSPiece = "<bos>"

// Field numbers of the top-level fields of the SentencePiece ModelProto
// (sentencepiece_model.proto).
const (
	modelProtoPiecesField         = 1
	modelProtoTrainerSpecField    = 2
	modelProtoNormalizerSpecField = 3
)

// SentencePiece is a BPE SentencePiece tokenizer such as Gemma's, backed by
// github.com/eliben/go-sentencepiece. That library supports only BPE models
// trained without add_dummy_prefix and remove_extra_whitespaces, and applies
// no Unicode normalization: it only maps spaces to "▁". Encode and Decode do
// not modify the tokenizer, so one value can be shared between goroutines.
type SentencePiece struct {
	processor *sentencepiece.Processor
	vocabSize int
	padID     int
	eosID     int
	bosID     int
	unkID     int
}

// LoadSentencePiece reads a SentencePiece model protobuf (tokenizer.model)
// from path. The model must be a BPE model with the control pieces "<pad>",
// "<eos>" and "<bos>", as Gemma's is. The returned error names path when the
// file is missing, is not a SentencePiece model, or is a model that
// go-sentencepiece does not support.
func LoadSentencePiece(path string) (*SentencePiece, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: failed to read SentencePiece model: %w", err)
	}
	if err := checkModelProto(data); err != nil {
		return nil, fmt.Errorf("tokenizer: %s is not a SentencePiece model: %w", path, err)
	}

	processor, err := newProcessor(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: unsupported SentencePiece model %s: %w", path, err)
	}

	info := processor.ModelInfo()
	sp := &SentencePiece{
		processor: processor,
		vocabSize: info.VocabularySize,
		padID:     info.PadID,
		eosID:     info.EndOfSentenceID,
		bosID:     info.BeginningOfSentenceID,
		unkID:     info.UnknownID,
	}
	special := []struct {
		piece string
		id    int
	}{{"<pad>", sp.padID}, {"<eos>", sp.eosID}, {BOSPiece, sp.bosID}}
	for _, want := range special {
		if want.id < 0 {
			return nil, fmt.Errorf("tokenizer: unsupported SentencePiece model %s: it has no control piece %q (Gemma-style models name their special pieces <pad>, <eos> and <bos>)",
				path, want.piece)
		}
	}
	return sp, nil
}

// checkModelProto reports an error unless data is a valid protobuf message
// with the top-level fields that go-sentencepiece reads: pieces, trainer_spec
// and normalizer_spec. Without this check, an empty file or other input that
// happens to parse as protobuf would be reported as an unsupported model type.
func checkModelProto(data []byte) error {
	if len(data) == 0 {
		return errors.New("the file is empty")
	}

	found := map[protowire.Number]bool{}
	for rest := data; len(rest) > 0; {
		number, wireType, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return fmt.Errorf("invalid protobuf: %w", protowire.ParseError(n))
		}
		rest = rest[n:]

		n = protowire.ConsumeFieldValue(number, wireType, rest)
		if n < 0 {
			return fmt.Errorf("invalid protobuf: %w", protowire.ParseError(n))
		}
		rest = rest[n:]

		if wireType == protowire.BytesType {
			found[number] = true
		}
	}

	required := []struct {
		number protowire.Number
		name   string
	}{
		{modelProtoPiecesField, "pieces"},
		{modelProtoTrainerSpecField, "trainer_spec"},
		{modelProtoNormalizerSpecField, "normalizer_spec"},
	}
	for _, field := range required {
		if !found[field.number] {
			return fmt.Errorf("the protobuf has no %s field", field.name)
		}
	}
	return nil
}

// newProcessor calls sentencepiece.NewProcessor and turns a panic into an
// error. go-sentencepiece v0.6.0 panics with a nil pointer dereference on a
// normalizer_spec that leaves add_dummy_prefix or remove_extra_whitespaces
// unset.
func newProcessor(data []byte) (processor *sentencepiece.Processor, err error) {
	defer func() {
		if r := recover(); r != nil {
			processor = nil
			err = fmt.Errorf("go-sentencepiece failed to load the model: %v", r)
		}
	}()

	processor, err = sentencepiece.NewProcessor(bytes.NewReader(data))
	if err != nil && strings.Contains(err.Error(), "normalizer spec options not supported") {
		err = fmt.Errorf("%w (the model must be trained with add_dummy_prefix=false and remove_extra_whitespaces=false)", err)
	}
	return processor, err
}

// Encode returns the ids of text. Without addBOS they are the ids that the C++
// SentencePiece encoder gives, so a "<bos>" in the text is encoded as ordinary
// characters. With addBOS, the ids start with BOSID, and a single BOSPiece at
// the start of text is taken as that BOS instead of being encoded. Encode
// returns an error only if go-sentencepiece panics.
func (sp *SentencePiece) Encode(text string, addBOS bool) (ids []int, err error) {
	ids = make([]int, 0, len(text)/2+1)
	if addBOS {
		ids = append(ids, sp.bosID)
		text = strings.TrimPrefix(text, BOSPiece)
	}
	// go-sentencepiece v0.6.0 encodes "" as [UNK] in models without
	// byte_fallback, where the C++ encoder returns no ids.
	if text == "" {
		return ids, nil
	}

	defer func() {
		if r := recover(); r != nil {
			ids = nil
			err = fmt.Errorf("tokenizer: go-sentencepiece failed to encode %d bytes of text: %v", len(text), r)
		}
	}()
	for _, token := range sp.processor.Encode(text) {
		ids = append(ids, token.ID)
	}
	return ids, nil
}

// Decode returns the text of ids. Control pieces, including PAD, BOS and EOS,
// decode to nothing, and UNK decodes to the model's unk_surface (" ⁇ " by
// default). Each id outside [0, VocabSize) becomes U+FFFD. Byte-fallback ids
// that do not form valid UTF-8 decode to one U+FFFD per byte, so
// Decode(Encode(text)) equals text only for valid UTF-8 text (and for text
// that does not start with BOSPiece when encoded with addBOS). Like the C++
// decoder (spm_decode 0.1.97), Decode treats the byte-fallback ids on either
// side of any other id, a dropped control id included, as separate runs of
// bytes.
func (sp *SentencePiece) Decode(ids []int) string {
	// go-sentencepiece panics on ids outside the vocabulary, so decode each
	// run of valid ids separately.
	var sb strings.Builder
	start := 0
	for i, id := range ids {
		if id >= 0 && id < sp.vocabSize {
			continue
		}
		sb.WriteString(sp.processor.Decode(ids[start:i]))
		sb.WriteRune('\uFFFD')
		start = i + 1
	}
	sb.WriteString(sp.processor.Decode(ids[start:]))
	return sb.String()
}

// VocabSize returns the number of pieces in the model.
func (sp *SentencePiece) VocabSize() int { return sp.vocabSize }

// PadID returns the id of the "<pad>" piece.
func (sp *SentencePiece) PadID() int { return sp.padID }

// EOSID returns the id of the "<eos>" piece.
func (sp *SentencePiece) EOSID() int { return sp.eosID }

// BOSID returns the id of the "<bos>" piece.
func (sp *SentencePiece) BOSID() int { return sp.bosID }

// UNKID returns the id of the unknown piece, which Encode returns for
// characters that are not in the vocabulary when the model has no byte
// fallback.
func (sp *SentencePiece) UNKID() int { return sp.unkID }
