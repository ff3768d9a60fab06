package data

import (
	"errors"
	"testing"

	"github.com/rgemma-toolkit/rgemma/rgemma/tokenizer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeTokenizer encodes every text to ids, or fails with err.
type fakeTokenizer struct {
	ids []int
	err error
}

func (f fakeTokenizer) Encode(string, bool) ([]int, error) { return f.ids, f.err }
func (fakeTokenizer) Decode([]int) string                  { return "" }
func (fakeTokenizer) VocabSize() int                       { return 10 }
func (fakeTokenizer) PadID() int                           { return 0 }
func (fakeTokenizer) EOSID() int                           { return 1 }
func (fakeTokenizer) BOSID() int                           { return 2 }

func TestTokenizeByteTokenizer(t *testing.T) {
	docs := []Document{{Source: "a", Text: "hi"}, {Source: "b", Text: "x"}}
	cases := []struct {
		name   string
		addBOS bool
		addEOS bool
		want   [][]int32
	}{
		{"plain", false, false, [][]int32{{'h', 'i'}, {'x'}}},
		{"BOS", true, false, [][]int32{{2, 'h', 'i'}, {2, 'x'}}},
		{"EOS", false, true, [][]int32{{'h', 'i', 1}, {'x', 1}}},
		{"BOS and EOS", true, true, [][]int32{{2, 'h', 'i', 1}, {2, 'x', 1}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seqs, stats, err := Tokenize(docs, tokenizer.NewByte(), tc.addBOS, tc.addEOS)
			require.NoError(t, err)
			assert.Equal(t, tc.want, seqs)
			assert.Equal(t, 2, stats.Documents)
			tokens := 0
			for _, s := range tc.want {
				tokens += len(s)
			}
			assert.Equal(t, tokens, stats.Tokens)
		})
	}
}

func TestTokenizeSkipsReservedBytes(t *testing.T) {
	docs := []Document{
		{Source: "good", Text: "ok"},
		{Source: "nul", Text: "a\x00b"},
		{Source: "eos", Text: "a\x01b"},
		{Source: "bos", Text: "\x02"},
		{Source: "also good", Text: "fine"},
	}

	seqs, stats, err := Tokenize(docs, tokenizer.NewByte(), false, true)
	require.NoError(t, err)
	assert.Equal(t, [][]int32{{'o', 'k', 1}, {'f', 'i', 'n', 'e', 1}}, seqs)
	assert.Equal(t, 3, stats.SkippedReserved)
	assert.Equal(t, []string{"nul", "eos", "bos"}, stats.SkippedExamples)
	assert.Equal(t, 2, stats.Documents)
}

func TestTokenizeSkipsEmptyDocuments(t *testing.T) {
	docs := []Document{{Source: "empty", Text: ""}, {Source: "x", Text: "x"}}

	seqs, stats, err := Tokenize(docs, tokenizer.NewByte(), false, false)
	require.NoError(t, err)
	assert.Equal(t, [][]int32{{'x'}}, seqs)
	assert.Equal(t, 1, stats.SkippedEmpty)

	seqs, stats, err = Tokenize(docs, tokenizer.NewByte(), false, true)
	require.NoError(t, err)
	assert.Equal(t, [][]int32{{1}, {'x', 1}}, seqs, "with EOS an empty text still has a token")
	assert.Zero(t, stats.SkippedEmpty)
}

func TestTokenizeErrors(t *testing.T) {
	cases := []struct {
		name    string
		docs    []Document
		tok     tokenizer.Tokenizer
		wantErr string
	}{
		{"nil tokenizer", []Document{{Text: "a"}}, nil, "got nil"},
		{"no documents", nil, tokenizer.NewByte(), "no documents to tokenize"},
		{"all documents reserved", []Document{{Source: "f:1", Text: "\x01"}}, tokenizer.NewByte(), "1 contain reserved bytes"},
		{"encoder failure", []Document{{Source: "f:2", Text: "a"}}, fakeTokenizer{err: errors.New("boom")}, "failed to tokenize f:2: boom"},
		{"id above vocabulary", []Document{{Source: "f:3", Text: "a"}}, fakeTokenizer{ids: []int{3, 10}}, "id 10, outside [0, 10), at index 1 of f:3"},
		{"negative id", []Document{{Source: "f:4", Text: "a"}}, fakeTokenizer{ids: []int{-1}}, "id -1, outside"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seqs, _, err := Tokenize(tc.docs, tc.tok, false, false)
			require.ErrorContains(t, err, tc.wantErr)
			assert.Nil(t, seqs)
		})
	}
}
