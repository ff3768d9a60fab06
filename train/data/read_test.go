package data

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeFiles creates the files under dir, with parent directories, and
// returns dir.
func writeFiles(t *testing.T, dir string, files map[string]string) string {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
	}
	return dir
}

// texts returns the Text of each document.
func texts(docs []Document) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Text
	}
	return out
}

// sources returns the Source of each document.
func sources(docs []Document) []string {
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.Source
	}
	return out
}

func TestReadTextFile(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{"book.txt": "line one\nline two\n"})
	path := filepath.Join(dir, "book.txt")

	docs, stats, err := ReadDocuments([]Source{{Path: path}}, ReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []Document{{Source: path, Text: "line one\nline two\n"}}, docs)
	assert.Equal(t, ReadStats{Files: 1, Documents: 1, Bytes: 18}, stats)
}

func TestReadDirectoryWithGlob(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"z.go":            "package z",
		"a/b.go":          "package b",
		"a/c/d.go":        "package d",
		"a/c/notes.txt":   "not Go",
		"a/.hidden/x.go":  "package hidden",
		".git/config.go":  "package git",
		"a/.dot.go":       "package dot",
		"a/c/empty.go":    "  \n",
		"m/deep/er/e.go":  "package e",
		"m/deep/er/e.gox": "not matched",
	})

	docs, stats, err := ReadDocuments([]Source{{Path: dir, Glob: "*.go"}}, ReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"package b", "package d", "package e", "package z"}, texts(docs))
	assert.Equal(t, []string{
		filepath.Join(dir, "a/b.go"),
		filepath.Join(dir, "a/c/d.go"),
		filepath.Join(dir, "m/deep/er/e.go"),
		filepath.Join(dir, "z.go"),
	}, sources(docs))
	assert.Equal(t, 5, stats.Files)
	assert.Equal(t, 1, stats.EmptyDocuments)
	assert.Equal(t, 4, stats.Documents)
}

func TestReadDirectoryWithoutGlob(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"b.txt":          "second",
		"a.txt":          "first",
		"sub/rows.jsonl": `{"text": "from jsonl"}` + "\n",
	})

	docs, _, err := ReadDocuments([]Source{{Path: dir}}, ReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"first", "second", "from jsonl"}, texts(docs), "a .jsonl file in a directory is read as JSONL")
}

func TestReadSkipsBinaryFiles(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"good.txt":      "text",
		"nul.txt":       "text\x00more",
		"latin1.txt":    "caf\xe9",
		"bad.jsonl":     `{"text": "ok"}` + "\n" + "{\"text\": \"caf\xe9\"}\n",
		"control.txt":   "has \x01 but is UTF-8",
		"truncated.txt": "ends inside a character \xc3",
	})

	docs, stats, err := ReadDocuments([]Source{{Path: dir}}, ReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"has \x01 but is UTF-8", "text"}, texts(docs))
	assert.Equal(t, 4, stats.SkippedFiles)
	assert.ElementsMatch(t, []string{
		filepath.Join(dir, "bad.jsonl"),
		filepath.Join(dir, "latin1.txt"),
		filepath.Join(dir, "nul.txt"),
		filepath.Join(dir, "truncated.txt"),
	}, stats.SkippedExamples)
	assert.Equal(t, 2, stats.Documents, "documents of a skipped JSONL file are dropped")
	assert.Equal(t, 2, stats.Files)
}

func TestReadJSONL(t *testing.T) {
	content := `{"text": "first", "id": 1}` + "\n" +
		"\n" +
		`   {"id": 2, "text": "second\nwith newline"}  ` + "\n" +
		`{"text": ""}` + "\n" +
		`{"text": "no final newline"}`
	dir := writeFiles(t, t.TempDir(), map[string]string{"rows.jsonl": content})
	path := filepath.Join(dir, "rows.jsonl")

	docs, stats, err := ReadDocuments([]Source{{Path: path}}, ReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []Document{
		{Source: path + ":1", Text: "first"},
		{Source: path + ":3", Text: "second\nwith newline"},
		{Source: path + ":5", Text: "no final newline"},
	}, docs)
	assert.Equal(t, 1, stats.EmptyDocuments)
	assert.Equal(t, 1, stats.Files)
}

func TestReadJSONLCustomField(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{
		"rows.data": `{"content": "a", "text": "wrong"}` + "\n" + `{"content": "b"}` + "\n",
	})

	docs, _, err := ReadDocuments([]Source{{Path: filepath.Join(dir, "rows.data"), Format: FormatJSONL, Field: "content"}}, ReadOptions{})
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b"}, texts(docs))
}

func TestReadJSONLErrors(t *testing.T) {
	cases := []struct {
		name    string
		content string
		wantErr string
	}{
		{"invalid JSON", `{"text": "a"}` + "\n" + `{"text": "b"` + "\n", "rows.jsonl:2: invalid JSON object"},
		{"not an object", `{"text": "a"}` + "\n\n" + `["text"]` + "\n", "rows.jsonl:3: invalid JSON object"},
		{"missing field", `{"body": "a"}` + "\n", `rows.jsonl:1: missing field "text"`},
		{"number field", `{"text": 42}` + "\n", `rows.jsonl:1: field "text" is 42, not a string`},
		{"null field", `{"text": null}` + "\n", `rows.jsonl:1: field "text" is null, not a string`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, t.TempDir(), map[string]string{"rows.jsonl": tc.content})

			docs, _, err := ReadDocuments([]Source{{Path: filepath.Join(dir, "rows.jsonl")}}, ReadOptions{})
			require.ErrorContains(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), dir, "the error names the file")
			assert.Nil(t, docs)
		})
	}
}

func TestReadEmptyCorpus(t *testing.T) {
	cases := []struct {
		name     string
		files    map[string]string
		glob     string
		wantErrs []string
	}{
		{"no matching files", map[string]string{"a.txt": "text"}, "*.go", []string{"empty corpus", `files matching "*.go"`, "0 files"}},
		{"empty directory", map[string]string{}, "", []string{"empty corpus", "0 files"}},
		{"only blank files", map[string]string{"a.go": "", "b.go": " \n\t"}, "*.go", []string{"empty corpus", "2 files", "dropped 2 empty documents"}},
		{"only binary files", map[string]string{"a.bin": "\x00\x01"}, "", []string{"empty corpus", "skipped 1 files", "a.bin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, t.TempDir(), tc.files)

			docs, _, err := ReadDocuments([]Source{{Path: dir, Glob: tc.glob}}, ReadOptions{})
			require.Error(t, err)
			assert.Nil(t, docs)
			assert.Contains(t, err.Error(), dir, "the error names the searched path")
			for _, want := range tc.wantErrs {
				assert.Contains(t, err.Error(), want)
			}
		})
	}
}

func TestReadSourceErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		sources []Source
		opts    ReadOptions
		wantErr string
	}{
		{"no sources", nil, ReadOptions{}, "no corpus sources"},
		{"missing path", []Source{{Path: filepath.Join(dir, "missing.txt")}}, ReadOptions{}, "missing.txt: no such file or directory"},
		{"empty path", []Source{{}}, ReadOptions{}, "the path is empty"},
		{"unknown format", []Source{{Path: dir, Format: "csv"}}, ReadOptions{}, `unknown format "csv"`},
		{"bad glob", []Source{{Path: dir, Glob: "[a-"}}, ReadOptions{}, `invalid glob pattern "[a-"`},
		{"negative max bytes", []Source{{Path: dir}}, ReadOptions{MaxBytes: -1}, "invalid MaxBytes -1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, _, err := ReadDocuments(tc.sources, tc.opts)
			require.ErrorContains(t, err, tc.wantErr)
			assert.Nil(t, docs)
		})
	}
}

func TestReadUnreadableFile(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{"a.txt": "readable", "secret.txt": "unreadable"})
	path := filepath.Join(dir, "secret.txt")
	require.NoError(t, os.Chmod(path, 0))
	t.Cleanup(func() { _ = os.Chmod(path, 0o644) })
	if os.Geteuid() == 0 {
		if _, err := os.ReadFile(path); err == nil {
			t.Skip("running as root, which can read a file with mode 000")
		}
	}

	docs, _, err := ReadDocuments([]Source{{Path: dir}}, ReadOptions{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.Contains(t, err.Error(), "permission denied")
	assert.Nil(t, docs)
}

func TestReadMaxBytes(t *testing.T) {
	files := map[string]string{
		"1.txt":   "aaaa",
		"2.txt":   "bbbb",
		"3.txt":   "cccc",
		"4.jsonl": `{"text": "dddd"}` + "\n" + `{"text": "eeee"}` + "\n\n",
	}
	cases := []struct {
		name          string
		maxBytes      int64
		want          []string
		wantTruncated bool
	}{
		{"no limit", 0, []string{"aaaa", "bbbb", "cccc", "dddd", "eeee"}, false},
		{"limit above corpus size", 100, []string{"aaaa", "bbbb", "cccc", "dddd", "eeee"}, false},
		{"limit exactly corpus size", 20, []string{"aaaa", "bbbb", "cccc", "dddd", "eeee"}, false},
		{"cut inside second file", 6, []string{"aaaa", "bb"}, true},
		{"limit at a file boundary", 8, []string{"aaaa", "bbbb"}, true},
		{"cut inside JSONL line", 14, []string{"aaaa", "bbbb", "cccc", "dd"}, true},
		{"limit after JSONL line", 16, []string{"aaaa", "bbbb", "cccc", "dddd"}, true},
		{"one byte", 1, []string{"a"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, t.TempDir(), files)

			docs, stats, err := ReadDocuments([]Source{{Path: dir}}, ReadOptions{MaxBytes: tc.maxBytes})
			require.NoError(t, err)
			assert.Equal(t, tc.want, texts(docs))
			assert.Equal(t, tc.wantTruncated, stats.Truncated)
			if tc.maxBytes > 0 {
				assert.LessOrEqual(t, stats.Bytes, tc.maxBytes)
			}
		})
	}
}

func TestReadMaxBytesAcrossSources(t *testing.T) {
	dir := writeFiles(t, t.TempDir(), map[string]string{"x/1.txt": "xxxx", "y/1.txt": "yyyy"})
	srcs := []Source{{Path: filepath.Join(dir, "y")}, {Path: filepath.Join(dir, "x")}}

	docs, stats, err := ReadDocuments(srcs, ReadOptions{MaxBytes: 4})
	require.NoError(t, err)
	assert.Equal(t, []string{"yyyy"}, texts(docs), "sources are read in the given order")
	assert.True(t, stats.Truncated)
}

func TestReadMaxBytesKeepsCharactersWhole(t *testing.T) {
	// "é" is 2 bytes and "€" 3, so cuts at 2 and 4 bytes fall inside them.
	dir := writeFiles(t, t.TempDir(), map[string]string{"a.txt": "aé€b", "b.jsonl": `{"text": "zé"}` + "\n"})
	cases := []struct {
		name     string
		file     string
		maxBytes int64
		want     string
	}{
		{"text cut inside 2-byte character", "a.txt", 2, "a"},
		{"text cut inside 3-byte character", "a.txt", 4, "aé"},
		{"text cut after 3-byte character", "a.txt", 6, "aé€"},
		{"JSONL cut inside 2-byte character", "b.jsonl", 2, "z"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			docs, stats, err := ReadDocuments([]Source{{Path: filepath.Join(dir, tc.file)}}, ReadOptions{MaxBytes: tc.maxBytes})
			require.NoError(t, err)
			assert.Equal(t, []string{tc.want}, texts(docs))
			assert.True(t, stats.Truncated)
		})
	}
}

func TestParseSource(t *testing.T) {
	cases := []struct {
		spec    string
		want    Source
		wantErr string
	}{
		{spec: "corpus.txt", want: Source{Path: "corpus.txt"}},
		{spec: "src/*.go", want: Source{Path: "src", Glob: "*.go"}},
		{spec: "*.md", want: Source{Path: ".", Glob: "*.md"}},
		{spec: "text:notes.jsonl", want: Source{Path: "notes.jsonl", Format: FormatText}},
		{spec: "jsonl:data/rows.json", want: Source{Path: "data/rows.json", Format: FormatJSONL}},
		{spec: "jsonl=content:data/*.json", want: Source{Path: "data", Glob: "*.json", Format: FormatJSONL, Field: "content"}},
		{spec: "odd:name.txt", want: Source{Path: "odd:name.txt"}},
		{spec: "", wantErr: "the path is empty"},
		{spec: "jsonl:", wantErr: "the path is empty"},
		{spec: "jsonl=:rows.jsonl", wantErr: "the field name"},
		{spec: "src/[a-", wantErr: "invalid glob pattern"},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			got, err := ParseSource(tc.spec)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
