package tokenizer

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
)

// The test model is trained as described in testdata/spm/README.md. Its first
// pieces are <pad> <eos> <bos> <unk> <start_of_turn> <end_of_turn>, followed
// by the 256 byte-fallback pieces <0x00> ... <0xFF>.
const (
	testModelPath        = "testdata/spm/tokenizer.model"
	testGoldenPath       = "testdata/spm/golden.jsonl"
	testModelVocabSize   = 1000
	testModelFirstByte   = 6
	testModelStartOfTurn = 4
)

// goldenCase is one line of testdata/spm/golden.jsonl: a text and the ids
// that spm_encode gives for it.
type goldenCase struct {
	Name string `json:"name"`
	Text string `json:"text"`
	IDs  []int  `json:"ids"`
}

func loadTestModel(t *testing.T) *SentencePiece {
	t.Helper()
	sp, err := LoadSentencePiece(testModelPath)
	require.NoError(t, err)
	return sp
}

func loadGolden(t *testing.T) []goldenCase {
	t.Helper()
	f, err := os.Open(testGoldenPath)
	require.NoError(t, err)
	defer f.Close()

	var cases []goldenCase
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		var c goldenCase
		require.NoError(t, json.Unmarshal(scanner.Bytes(), &c), "line %d", len(cases)+1)
		require.NotEmpty(t, c.Name, "line %d", len(cases)+1)
		cases = append(cases, c)
	}
	require.NoError(t, scanner.Err())
	require.GreaterOrEqual(t, len(cases), 30, "golden cases")
	return cases
}

func TestSentencePieceSpecialIDs(t *testing.T) {
	sp := loadTestModel(t)

	assert.Equal(t, testModelVocabSize, sp.VocabSize())
	assert.Equal(t, 0, sp.PadID())
	assert.Equal(t, 1, sp.EOSID())
	assert.Equal(t, 2, sp.BOSID())
	assert.Equal(t, 3, sp.UNKID())
}

func TestSentencePieceMatchesSpmEncode(t *testing.T) {
	sp := loadTestModel(t)
	for _, tc := range loadGolden(t) {
		t.Run(tc.Name, func(t *testing.T) {
			ids, err := sp.Encode(tc.Text, false)
			require.NoError(t, err)

			want := tc.IDs
			if want == nil {
				want = []int{}
			}
			assert.Equal(t, want, ids, "text %q", tc.Text)
		})
	}
}

func TestSentencePieceRoundTrip(t *testing.T) {
	sp := loadTestModel(t)
	for _, tc := range loadGolden(t) {
		t.Run(tc.Name, func(t *testing.T) {
			ids, err := sp.Encode(tc.Text, false)
			require.NoError(t, err)
			assert.Equal(t, tc.Text, sp.Decode(ids), "without BOS")

			ids, err = sp.Encode(tc.Text, true)
			require.NoError(t, err)
			assert.Equal(t, strings.TrimPrefix(tc.Text, BOSPiece), sp.Decode(ids), "with BOS")
		})
	}
}

func TestSentencePieceBOSOnce(t *testing.T) {
	cases := []struct {
		name string
		text string
		// rest is the text whose ids follow the single BOS.
		rest string
	}{
		{"plain_text", "Hello world", "Hello world"},
		{"empty", "", ""},
		{"literal_bos_only", "<bos>", ""},
		{"literal_bos_prefix", "<bos>Hello world", "Hello world"},
		{"literal_bos_then_space", "<bos> Hello", " Hello"},
		{"literal_bos_inside", "Hello <bos> world", "Hello <bos> world"},
		{"two_literal_bos", "<bos><bos>x", "<bos>x"},
		{"user_defined_after_bos", "<bos><start_of_turn>user", "<start_of_turn>user"},
	}

	sp := loadTestModel(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ids, err := sp.Encode(tc.text, true)
			require.NoError(t, err)
			wantRest, err := sp.Encode(tc.rest, false)
			require.NoError(t, err)

			require.NotEmpty(t, ids)
			assert.Equal(t, sp.BOSID(), ids[0], "first id")
			assert.Equal(t, 1, countID(ids, sp.BOSID()), "BOS count in %v", ids)
			assert.Equal(t, wantRest, ids[1:], "ids after BOS")
		})
	}
}

func TestSentencePieceNoBOSWithoutAddBOS(t *testing.T) {
	sp := loadTestModel(t)
	for _, text := range []string{"Hello", "<bos>Hello", ""} {
		ids, err := sp.Encode(text, false)
		require.NoError(t, err)
		assert.Zero(t, countID(ids, sp.BOSID()), "BOS count for %q", text)
	}
}

func TestSentencePieceUserDefinedSymbols(t *testing.T) {
	sp := loadTestModel(t)

	ids, err := sp.Encode("<start_of_turn>user", false)
	require.NoError(t, err)

	require.NotEmpty(t, ids)
	assert.Equal(t, testModelStartOfTurn, ids[0])
	assert.Equal(t, "<start_of_turn>user", sp.Decode(ids))
}

func TestSentencePieceNewlines(t *testing.T) {
	// spm_encode reads one line at a time, so the golden file has no newlines.
	// The training text has none either, so "\n" is not part of any piece and
	// encodes as its byte-fallback piece between the ids of its neighbours.
	newlineID := testModelFirstByte + int('\n')
	cases := []struct {
		name  string
		parts []string
	}{
		{"only_newline", []string{"", ""}},
		{"between_words", []string{"Hello", "world"}},
		{"trailing", []string{"end of line", ""}},
		{"leading", []string{"", "  indented"}},
		{"two_newlines", []string{"a", "", "b"}},
	}

	sp := loadTestModel(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := strings.Join(tc.parts, "\n")
			var want []int
			for i, part := range tc.parts {
				if i > 0 {
					want = append(want, newlineID)
				}
				partIDs, err := sp.Encode(part, false)
				require.NoError(t, err)
				want = append(want, partIDs...)
			}

			ids, err := sp.Encode(text, false)
			require.NoError(t, err)
			assert.Equal(t, want, ids)
			assert.Equal(t, text, sp.Decode(ids))
		})
	}
}

func TestSentencePieceInvalidUTF8(t *testing.T) {
	sp := loadTestModel(t)

	ids, err := sp.Encode("a\xffb", false)
	require.NoError(t, err)

	aIDs, err := sp.Encode("a", false)
	require.NoError(t, err)
	bIDs, err := sp.Encode("b", false)
	require.NoError(t, err)
	want := append(append(append([]int{}, aIDs...), testModelFirstByte+0xff), bIDs...)
	assert.Equal(t, want, ids, "the invalid byte uses its byte-fallback piece")
	assert.Equal(t, "a\uFFFDb", sp.Decode(ids), "the invalid byte decodes to U+FFFD")
}

func TestSentencePieceDecode(t *testing.T) {
	sp := loadTestModel(t)
	hello, err := sp.Encode("Hello world", false)
	require.NoError(t, err)
	snowman, err := sp.Encode("☃", false)
	require.NoError(t, err)
	require.Len(t, snowman, 3, "☃ is three byte-fallback ids")

	cases := []struct {
		name string
		ids  []int
		want string
	}{
		{"empty", nil, ""},
		{"drops_special", concat([]int{2}, hello, []int{1, 0, 0}), "Hello world"},
		{"only_special", []int{2, 1, 0}, ""},
		{"unknown_piece", []int{3}, " ⁇ "},
		{"negative_id", concat(hello, []int{-1}), "Hello world\uFFFD"},
		{"id_equal_to_vocab_size", concat([]int{testModelVocabSize}, hello), "\uFFFDHello world"},
		{"large_id_between", concat(hello, []int{1 << 40}, hello), "Hello world\uFFFDHello world"},
		// spm_decode 0.1.97 also returns one U+FFFD per byte here.
		{"bytes_split_by_special", concat(snowman[:2], []int{1}, snowman[2:]), "\uFFFD\uFFFD\uFFFD"},
		{"bytes_split_by_invalid_id", concat(snowman[:2], []int{-5}, snowman[2:]), "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"incomplete_character", snowman[:2], "\uFFFD\uFFFD"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, sp.Decode(tc.ids))
		})
	}
}

func TestSentencePieceConcurrentEncode(t *testing.T) {
	sp := loadTestModel(t)
	golden := loadGolden(t)

	var wg sync.WaitGroup
	errs := make([]string, 8)
	for worker := range errs {
		wg.Go(func() {
			for _, tc := range golden {
				ids, err := sp.Encode(tc.Text, false)
				if err != nil || len(ids) != len(tc.IDs) || sp.Decode(ids) != tc.Text {
					errs[worker] = tc.Name
					return
				}
			}
		})
	}
	wg.Wait()

	for worker, name := range errs {
		assert.Empty(t, name, "worker %d failed on case", worker)
	}
}

func TestLoadSentencePieceErrors(t *testing.T) {
	model, err := os.ReadFile(testModelPath)
	require.NoError(t, err)
	dir := t.TempDir()

	writeFile := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(path, data, 0o644))
		return path
	}
	falseValue, trueValue := uint64(0), uint64(1)

	cases := []struct {
		name string
		path string
		want []string
	}{
		{
			name: "missing_file",
			path: filepath.Join(dir, "missing.model"),
			want: []string{"missing.model", "no such file"},
		},
		{
			name: "directory",
			path: dir,
			want: []string{dir},
		},
		{
			name: "empty_file",
			path: writeFile("empty.model", nil),
			want: []string{"empty.model", "not a SentencePiece model", "empty"},
		},
		{
			name: "text_file",
			path: writeFile("text.model", []byte("This is a plain text file.\nIt is not a protobuf.\n")),
			want: []string{"text.model", "not a SentencePiece model"},
		},
		{
			name: "protobuf_of_other_message",
			path: writeFile("other.model", protowire.AppendVarint(protowire.AppendTag(nil, 7, protowire.VarintType), 42)),
			want: []string{"other.model", "not a SentencePiece model", "pieces"},
		},
		{
			name: "truncated_to_half",
			path: writeFile("half.model", model[:len(model)/2]),
			want: []string{"half.model", "not a SentencePiece model"},
		},
		{
			name: "last_byte_missing",
			path: writeFile("short.model", model[:len(model)-1]),
			want: []string{"short.model", "not a SentencePiece model"},
		},
		{
			name: "unigram_model_type",
			path: writeFile("unigram.model", withSubmessageVarint(t, model, modelProtoTrainerSpecField, 3, &trueValue)),
			want: []string{"unigram.model", "unsupported SentencePiece model", "UNIGRAM"},
		},
		{
			name: "add_dummy_prefix",
			path: writeFile("dummy_prefix.model", withSubmessageVarint(t, model, modelProtoNormalizerSpecField, 3, &trueValue)),
			want: []string{"dummy_prefix.model", "unsupported SentencePiece model", "add_dummy_prefix=false"},
		},
		{
			// go-sentencepiece v0.6.0 panics on this model; the panic must
			// become an error.
			name: "add_dummy_prefix_unset",
			path: writeFile("unset.model", withSubmessageVarint(t, model, modelProtoNormalizerSpecField, 3, nil)),
			want: []string{"unset.model", "unsupported SentencePiece model", "failed to load"},
		},
		{
			name: "byte_fallback_disabled",
			path: writeFile("no_byte_fallback.model", withSubmessageVarint(t, model, modelProtoTrainerSpecField, 35, &falseValue)),
			want: []string{"no_byte_fallback.model", "unsupported SentencePiece model", "byte_fallback"},
		},
		{
			name: "no_pad_piece",
			path: writeFile("no_pad.model", withFirstPieceText(t, model, "<p>")),
			want: []string{"no_pad.model", "unsupported SentencePiece model", `"<pad>"`},
		},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var sp *SentencePiece
			var err error
			require.NotPanics(t, func() { sp, err = LoadSentencePiece(tc.path) })

			require.Error(t, err)
			assert.Nil(t, sp)
			for _, want := range tc.want {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestLoadSentencePieceMissingFileIsNotExist(t *testing.T) {
	_, err := LoadSentencePiece(filepath.Join(t.TempDir(), "missing.model"))

	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestLoadSentencePieceTruncatedCopies(t *testing.T) {
	model, err := os.ReadFile(testModelPath)
	require.NoError(t, err)
	normalizerEnd := endOfField(t, model, modelProtoNormalizerSpecField)

	// Every prefix that ends before the end of normalizer_spec lacks a field
	// that go-sentencepiece reads, so it must be rejected. Later prefixes only
	// drop optional fields and may load.
	lengths := []int{1, 2, 16, normalizerEnd - 1, normalizerEnd, len(model) - 2, len(model) - 1}
	for n := 0; n < len(model); n += len(model) / 97 {
		lengths = append(lengths, n)
	}

	path := filepath.Join(t.TempDir(), "truncated.model")
	for _, n := range lengths {
		require.NoError(t, os.WriteFile(path, model[:n], 0o644))

		var err error
		require.NotPanics(t, func() { _, err = LoadSentencePiece(path) }, "prefix of %d bytes", n)
		if n < normalizerEnd {
			assert.Error(t, err, "prefix of %d bytes", n)
		}
	}
}

// concat returns the concatenation of the id slices.
func concat(parts ...[]int) []int {
	var out []int
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// editFields rebuilds the protobuf message msg field by field. edit receives
// each field's number, wire type and encoded field (tag and value), and it
// returns the bytes to write in its place. A nil result drops the field.
func editFields(t *testing.T, msg []byte, edit func(number protowire.Number, wireType protowire.Type, field []byte) []byte) []byte {
	t.Helper()
	var out []byte
	for rest := msg; len(rest) > 0; {
		number, wireType, tagLen := protowire.ConsumeTag(rest)
		require.GreaterOrEqual(t, tagLen, 0, "invalid tag")
		valueLen := protowire.ConsumeFieldValue(number, wireType, rest[tagLen:])
		require.GreaterOrEqual(t, valueLen, 0, "invalid value of field %d", number)

		out = append(out, edit(number, wireType, rest[:tagLen+valueLen])...)
		rest = rest[tagLen+valueLen:]
	}
	return out
}

// bytesFieldValue returns the content of an encoded length-delimited field.
func bytesFieldValue(t *testing.T, field []byte) []byte {
	t.Helper()
	_, _, tagLen := protowire.ConsumeTag(field)
	value, n := protowire.ConsumeBytes(field[tagLen:])
	require.GreaterOrEqual(t, n, 0)
	return value
}

// withSubmessageVarint returns a copy of model in which the varint field
// inner of the top-level submessage outer is set to value, or removed when
// value is nil.
func withSubmessageVarint(t *testing.T, model []byte, outer, inner protowire.Number, value *uint64) []byte {
	t.Helper()
	return editFields(t, model, func(number protowire.Number, wireType protowire.Type, field []byte) []byte {
		if number != outer || wireType != protowire.BytesType {
			return field
		}
		sub := editFields(t, bytesFieldValue(t, field), func(number protowire.Number, _ protowire.Type, field []byte) []byte {
			if number == inner {
				return nil
			}
			return field
		})
		if value != nil {
			sub = protowire.AppendVarint(protowire.AppendTag(sub, inner, protowire.VarintType), *value)
		}
		return protowire.AppendBytes(protowire.AppendTag(nil, number, protowire.BytesType), sub)
	})
}

// withFirstPieceText returns a copy of model whose first piece (id 0) has the
// text piece.
func withFirstPieceText(t *testing.T, model []byte, piece string) []byte {
	t.Helper()
	first := true
	return editFields(t, model, func(number protowire.Number, _ protowire.Type, field []byte) []byte {
		if number != modelProtoPiecesField || !first {
			return field
		}
		first = false
		sub := editFields(t, bytesFieldValue(t, field), func(number protowire.Number, _ protowire.Type, field []byte) []byte {
			if number == 1 {
				return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), piece)
			}
			return field
		})
		return protowire.AppendBytes(protowire.AppendTag(nil, number, protowire.BytesType), sub)
	})
}

// endOfField returns the offset just past the top-level field number in msg.
func endOfField(t *testing.T, msg []byte, number protowire.Number) int {
	t.Helper()
	offset := 0
	for offset < len(msg) {
		fieldNumber, wireType, tagLen := protowire.ConsumeTag(msg[offset:])
		require.GreaterOrEqual(t, tagLen, 0)
		valueLen := protowire.ConsumeFieldValue(fieldNumber, wireType, msg[offset+tagLen:])
		require.GreaterOrEqual(t, valueLen, 0)
		offset += tagLen + valueLen
		if fieldNumber == number {
			return offset
		}
	}
	require.Failf(t, "field not found", "field %d", number)
	return 0
}
