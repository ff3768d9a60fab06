package tokenizer

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	_ Tokenizer = (*ByteTokenizer)(nil)
	_ Tokenizer = (*SentencePiece)(nil)
)

func TestLoadFindsModel(t *testing.T) {
	model, err := os.ReadFile(testModelPath)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, ModelFileName), model, 0o644))

	tok, err := Load(dir)
	require.NoError(t, err)

	require.IsType(t, &SentencePiece{}, tok)
	assert.Equal(t, testModelVocabSize, tok.VocabSize())
	ids, err := tok.Encode("Hello world", true)
	require.NoError(t, err)
	assert.Equal(t, []int{2, 965, 918, 362, 920, 283, 268, 558}, ids, "BOS and the spm_encode ids of the golden case ascii_words")
}

func TestLoadWithoutModel(t *testing.T) {
	cases := []struct {
		name string
		dir  string
	}{
		{"empty_directory", t.TempDir()},
		{"missing_directory", filepath.Join(t.TempDir(), "missing")},
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := Load(tc.dir)

			require.Error(t, err)
			assert.Nil(t, tok)
			assert.ErrorIs(t, err, ErrModelNotFound)
			assert.Contains(t, err.Error(), "no tokenizer.model found in "+tc.dir)
		})
	}
}

func TestLoadInvalidModel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ModelFileName)
	require.NoError(t, os.WriteFile(path, []byte("not a model\n"), 0o644))

	tok, err := Load(dir)

	require.Error(t, err)
	assert.Nil(t, tok)
	assert.NotErrorIs(t, err, ErrModelNotFound)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "not a SentencePiece model")
}
