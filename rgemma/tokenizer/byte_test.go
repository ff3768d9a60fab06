package tokenizer

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestByteSpecialIDs(t *testing.T) {
	tok := NewByte()

	assert.Equal(t, 256, tok.VocabSize())
	assert.Equal(t, 0, tok.PadID())
	assert.Equal(t, 1, tok.EOSID())
	assert.Equal(t, 2, tok.BOSID())
}

func TestByteRoundTrip(t *testing.T) {
	cases := []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"ascii", "Hello, world!"},
		{"spaces", "  two  spaces  "},
		{"newline_and_tab", "line one\n\tline two\n"},
		{"latin_diacritics", "naïve café"},
		{"japanese", "日本語"},
		{"emoji", "🙂🚀"},
		{"lowest_allowed_byte", "\x03"},
		{"invalid_utf8", "a\xff\xfeb"},
	}

	tok := NewByte()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := tok.Encode(tc.text, false)
			require.NoError(t, err)

			want := make([]int, len(tc.text))
			for i := 0; i < len(tc.text); i++ {
				want[i] = int(tc.text[i])
			}
			assert.Equal(t, want, ids, "one id per byte, equal to the byte value")
			assert.Equal(t, tc.text, tok.Decode(ids))
		})
	}
}

func TestByteBOS(t *testing.T) {
	cases := []struct {
		name string
		text string
	}{
		{"empty", ""},
		{"ascii", "abc"},
		{"utf8", "日本"},
	}

	tok := NewByte()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := tok.Encode(tc.text, true)
			require.NoError(t, err)

			require.Len(t, ids, len(tc.text)+1)
			assert.Equal(t, ByteBOSID, ids[0])
			assert.Equal(t, 1, countID(ids, ByteBOSID), "BOS count")
			assert.Equal(t, tc.text, tok.Decode(ids), "Decode drops the BOS")
		})
	}
}

func TestByteEncodeRejectsControlBytes(t *testing.T) {
	cases := []struct {
		name       string
		text       string
		wantOffset string
		wantToken  string
	}{
		{"pad_byte_first", "\x00abc", "offset 0", "PAD"},
		{"eos_byte_inside", "ab\x01c", "offset 2", "EOS"},
		{"bos_byte_last", "abc\x02", "offset 3", "BOS"},
		{"first_of_several", "日\x02\x00", "offset 3", "BOS"},
	}

	tok := NewByte()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, addBOS := range []bool{false, true} {
				ids, err := tok.Encode(tc.text, addBOS)

				require.Error(t, err, "addBOS=%v", addBOS)
				assert.ErrorIs(t, err, ErrReservedByte)
				assert.Contains(t, err.Error(), tc.wantOffset)
				assert.Contains(t, err.Error(), tc.wantToken)
				assert.Nil(t, ids)
			}
		})
	}
}

func TestByteDecodeSpecialAndInvalidIDs(t *testing.T) {
	cases := []struct {
		name string
		ids  []int
		want string
	}{
		{"drops_pad_eos_bos", []int{ByteBOSID, 'h', 'i', ByteEOSID, BytePadID, BytePadID}, "hi"},
		{"only_special", []int{ByteBOSID, ByteEOSID}, ""},
		{"negative_id", []int{'a', -1, 'b'}, "a\uFFFDb"},
		{"id_256", []int{256}, "\uFFFD"},
		{"large_id", []int{'x', 1 << 40}, "x\uFFFD"},
		{"partial_utf8", []int{0xe6, 0x97}, "\xe6\x97"},
	}

	tok := NewByte()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, tok.Decode(tc.ids))
		})
	}
}

// countID returns how many times id occurs in ids.
func countID(ids []int, id int) int {
	count := 0
	for _, x := range ids {
		if x == id {
			count++
		}
	}
	return count
}
