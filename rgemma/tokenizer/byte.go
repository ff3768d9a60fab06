package tokenizer

import (
	"errors"
	"fmt"
	"strings"
)

// Ids of the special tokens of ByteTokenizer. They equal the control bytes
// 0x00, 0x01 and 0x02, which ordinary text does not contain.
const (
	BytePadID = 0
	ByteEOSID = 1
	ByteBOSID = 2
)

// byteVocabSize is the vocabulary size of ByteTokenizer: one id per byte value.
const byteVocabSize = 256

// ErrReservedByte is wrapped by the error that ByteTokenizer.Encode returns
// when the text contains a byte whose id is a special token (0x00, 0x01 or
// 0x02).
var ErrReservedByte = errors.New("byte is reserved for a special token")

// ByteTokenizer maps each byte of the UTF-8 text to the id equal to the byte
// value, so the vocabulary has 256 ids. Ids 0, 1 and 2 are PAD, EOS and BOS.
// The zero value is ready to use.
type ByteTokenizer struct{}

// NewByte returns a byte-level tokenizer with vocabulary size 256.
func NewByte() *ByteTokenizer {
	return &ByteTokenizer{}
}

// Encode returns one id per byte of text, preceded by ByteBOSID when addBOS
// is set. Text that contains a byte 0x00, 0x01 or 0x02 is rejected with an
// error that names the first such byte offset and wraps ErrReservedByte.
func (*ByteTokenizer) Encode(text string, addBOS bool) ([]int, error) {
	ids := make([]int, 0, len(text)+1)
	if addBOS {
		ids = append(ids, ByteBOSID)
	}

	for offset := 0; offset < len(text); offset++ {
		b := text[offset]
		if b <= ByteBOSID {
			return nil, fmt.Errorf("tokenizer: byte 0x%02x at offset %d has the id of the %s token: %w",
				b, offset, byteSpecialName(b), ErrReservedByte)
		}
		ids = append(ids, int(b))
	}
	return ids, nil
}

// byteSpecialName returns the name of the special token whose id is b.
func byteSpecialName(b byte) string {
	switch b {
	case BytePadID:
		return "PAD"
	case ByteEOSID:
		return "EOS"
	default:
		return "BOS"
	}
}

// Decode returns the bytes of ids as a string. It drops PAD, EOS and BOS and
// writes U+FFFD for each id outside [0, 256). Decoding part of a sequence may
// return invalid UTF-8, because a character can span several ids.
func (*ByteTokenizer) Decode(ids []int) string {
	var sb strings.Builder
	sb.Grow(len(ids))
	for _, id := range ids {
		switch {
		case id == BytePadID || id == ByteEOSID || id == ByteBOSID:
			continue
		case id < 0 || id >= byteVocabSize:
			sb.WriteRune('\uFFFD')
		default:
			sb.WriteByte(byte(id))
		}
	}
	return sb.String()
}

// VocabSize returns 256.
func (*ByteTokenizer) VocabSize() int { return byteVocabSize }

// PadID returns BytePadID (0).
func (*ByteTokenizer) PadID() int { return BytePadID }

// EOSID returns ByteEOSID (1).
func (*ByteTokenizer) EOSID() int { return ByteEOSID }

// BOSID returns ByteBOSID (2).
func (*ByteTokenizer) BOSID() int { return ByteBOSID }
