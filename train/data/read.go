package data

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// Corpus file formats for Source.Format.
const (
	// FormatText reads each file as one document.
	FormatText = "text"

	// FormatJSONL reads each non-blank line of a file as a JSON object whose
	// Source.Field contains the text of one document.
	FormatJSONL = "jsonl"
)

// DefaultJSONLField is the JSONL field read when Source.Field is empty.
const DefaultJSONLField = "text"

// maxSkippedExamples is the number of skipped file or document names that the
// stats keep as examples.
const maxSkippedExamples = 10

// Document is the text of one document and where it came from.
type Document struct {
	// Source is the file path for a text file and "path:line" for a JSONL
	// line, with 1-based line numbers.
	Source string

	// Text is the document's text, valid UTF-8.
	Text string
}

// Source is one part of a corpus: a file, or a directory tree filtered by a
// pattern on file names.
type Source struct {
	// Path is a file or a directory. A directory is walked recursively in
	// lexical order, without following symbolic links to directories, and
	// files and directories whose names start with "." are skipped.
	Path string

	// Glob is a filepath.Match pattern that the base name of each file in a
	// directory must match, such as "*.go". Empty matches every file. It is
	// ignored when Path is a file.
	Glob string

	// Format is FormatText, FormatJSONL, or empty to choose by extension:
	// files ending in ".jsonl" are JSONL and all others text.
	Format string

	// Field is the JSONL field that contains the document text. Empty means
	// DefaultJSONLField.
	Field string
}

// ParseSource parses a corpus spec of the form [FORMAT:]PATH into a Source.
// FORMAT is "text", "jsonl", or "jsonl=FIELD" to read another JSONL field.
// When the base name of PATH contains a glob character (*, ? or [), the
// directory part becomes Source.Path and the base name Source.Glob, so
// "src/*.go" reads every .go file under src recursively.
func ParseSource(spec string) (Source, error) {
	var src Source
	rest := spec
	if prefix, path, found := strings.Cut(spec, ":"); found {
		switch {
		case prefix == FormatText || prefix == FormatJSONL:
			src.Format, rest = prefix, path
		case strings.HasPrefix(prefix, FormatJSONL+"="):
			src.Format, src.Field, rest = FormatJSONL, strings.TrimPrefix(prefix, FormatJSONL+"="), path
			if src.Field == "" {
				return Source{}, fmt.Errorf("data: invalid corpus spec %q: the field name after %q is empty", spec, FormatJSONL+"=")
			}
		}
	}

	if rest == "" {
		return Source{}, fmt.Errorf("data: invalid corpus spec %q: the path is empty", spec)
	}
	src.Path = rest
	if base := filepath.Base(rest); strings.ContainsAny(base, "*?[") {
		src.Path, src.Glob = filepath.Dir(rest), base
	}
	if err := src.validate(); err != nil {
		return Source{}, fmt.Errorf("data: invalid corpus spec %q: %w", spec, err)
	}
	return src, nil
}

// validate checks the fields of s that do not depend on the file system.
func (s Source) validate() error {
	if s.Path == "" {
		return errors.New("the path is empty")
	}
	switch s.Format {
	case "", FormatText, FormatJSONL:
	default:
		return fmt.Errorf("unknown format %q (expected %q, %q or empty)", s.Format, FormatText, FormatJSONL)
	}
	if _, err := filepath.Match(s.Glob, ""); err != nil {
		return fmt.Errorf("invalid glob pattern %q: %w", s.Glob, err)
	}
	return nil
}

// field returns the JSONL field to read.
func (s Source) field() string {
	if s.Field == "" {
		return DefaultJSONLField
	}
	return s.Field
}

// describe names s for error messages.
func (s Source) describe() string {
	var parts []string
	if s.Glob != "" {
		parts = append(parts, fmt.Sprintf("files matching %q", s.Glob))
	}
	if s.Format != "" {
		parts = append(parts, "format "+s.Format)
	}
	if s.Format == FormatJSONL || s.Field != "" {
		parts = append(parts, fmt.Sprintf("field %q", s.field()))
	}
	if len(parts) == 0 {
		return s.Path
	}
	return fmt.Sprintf("%s (%s)", s.Path, strings.Join(parts, ", "))
}

// ReadOptions are the options of ReadDocuments.
type ReadOptions struct {
	// MaxBytes limits the total bytes of document text returned. Reading
	// stops once the limit is reached, and the last document is cut at a
	// UTF-8 character boundary, so the result is the first MaxBytes bytes
	// of the corpus in source order and, within a directory, in lexical
	// path order. Only the bytes read are checked for NUL bytes and UTF-8
	// validity. Zero means no limit.
	MaxBytes int64
}

// ReadStats counts what ReadDocuments read and skipped.
type ReadStats struct {
	// Files is the number of files opened and not skipped.
	Files int

	// Documents is the number of documents returned.
	Documents int

	// Bytes is the total length of the returned documents' text.
	Bytes int64

	// EmptyDocuments is the number of documents dropped because their text
	// is empty or only white space.
	EmptyDocuments int

	// SkippedFiles is the number of files skipped because they are not
	// valid UTF-8 or contain a NUL byte, and SkippedExamples names up to 10
	// of them.
	SkippedFiles    int
	SkippedExamples []string

	// Truncated reports that MaxBytes stopped reading before the end of the
	// corpus.
	Truncated bool
}

// ReadDocuments reads the documents of the sources in order.
//
// A text file is one document. A JSONL file has one JSON object per line
// with the document text in a string field, and blank lines are ignored.
// A file that is not valid UTF-8 or contains a NUL byte is skipped and
// counted in ReadStats.SkippedFiles. In a JSONL file this check covers the
// raw bytes of each line, and a bad line skips the whole file.
// Documents whose text is empty or only white space are dropped and counted.
//
// It returns an error when a source does not exist, a file or directory
// cannot be read, a JSONL line is not a JSON object or lacks the field
// (the error names file:line), or no document is left. On error the stats
// describe what was read until then.
func ReadDocuments(sources []Source, opts ReadOptions) ([]Document, ReadStats, error) {
	if len(sources) == 0 {
		return nil, ReadStats{}, errors.New("data: no corpus sources given")
	}
	if opts.MaxBytes < 0 {
		return nil, ReadStats{}, fmt.Errorf("data: invalid MaxBytes %d: expected 0 (no limit) or a positive byte count", opts.MaxBytes)
	}
	for _, src := range sources {
		if err := src.validate(); err != nil {
			return nil, ReadStats{}, fmt.Errorf("data: invalid corpus source %s: %w", src.describe(), err)
		}
	}

	r := &corpusReader{maxBytes: opts.MaxBytes}
	matched := make([]int, len(sources))
	for i, src := range sources {
		if r.budgetSpent() {
			r.stats.Truncated = true
			break
		}
		n, err := r.readSource(src)
		matched[i] = n
		if err != nil {
			return nil, r.stats, err
		}
	}

	if len(r.docs) == 0 {
		return nil, r.stats, emptyCorpusError(sources, matched, r.stats)
	}
	return r.docs, r.stats, nil
}

// emptyCorpusError describes what was searched when no document was found.
func emptyCorpusError(sources []Source, matched []int, stats ReadStats) error {
	searched := make([]string, len(sources))
	for i, src := range sources {
		searched[i] = fmt.Sprintf("%s: %d files", src.describe(), matched[i])
	}
	msg := "data: empty corpus: no non-empty document found in " + strings.Join(searched, "; ")
	if stats.SkippedFiles > 0 {
		msg += fmt.Sprintf("; skipped %d files that are not valid UTF-8 or contain NUL bytes (such as %s)",
			stats.SkippedFiles, strings.Join(stats.SkippedExamples, ", "))
	}
	if stats.EmptyDocuments > 0 {
		msg += fmt.Sprintf("; dropped %d empty documents", stats.EmptyDocuments)
	}
	return errors.New(msg)
}

// corpusReader collects documents and stats while ReadDocuments runs.
type corpusReader struct {
	maxBytes int64 // 0 for no limit
	docs     []Document
	stats    ReadStats
}

// budgetSpent reports whether MaxBytes is set and reached.
func (r *corpusReader) budgetSpent() bool {
	return r.maxBytes > 0 && r.stats.Bytes >= r.maxBytes
}

// remaining returns the bytes left under MaxBytes, or -1 without a limit.
func (r *corpusReader) remaining() int64 {
	if r.maxBytes == 0 {
		return -1
	}
	return r.maxBytes - r.stats.Bytes
}

// readSource reads one source and returns the number of files it matched.
func (r *corpusReader) readSource(src Source) (int, error) {
	info, err := os.Stat(src.Path)
	if err != nil {
		return 0, fmt.Errorf("data: corpus source %s: %w", src.describe(), err)
	}
	if !info.IsDir() {
		return 1, r.readFile(src, src.Path)
	}

	paths, err := listFiles(src.Path, src.Glob)
	if err != nil {
		return 0, err
	}
	for _, path := range paths {
		if r.budgetSpent() {
			r.stats.Truncated = true
			break
		}
		if err := r.readFile(src, path); err != nil {
			return len(paths), err
		}
	}
	return len(paths), nil
}

// listFiles returns the sorted paths of the files under root whose base name
// matches glob, skipping hidden entries and directory symlinks.
func listFiles(root, glob string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		if glob != "" {
			if ok, _ := filepath.Match(glob, d.Name()); !ok {
				return nil
			}
		}
		if d.Type()&fs.ModeSymlink != 0 {
			// A link is read only when it points to a regular file.
			info, err := os.Stat(path)
			if err != nil {
				return err
			}
			if !info.Mode().IsRegular() {
				return nil
			}
		} else if !d.Type().IsRegular() {
			return nil
		}
		paths = append(paths, path)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("data: failed to list corpus directory %s: %w", root, err)
	}
	slices.Sort(paths)
	return paths, nil
}

// readFile reads the documents of one file in the format that src sets or
// the file's extension implies.
func (r *corpusReader) readFile(src Source, path string) error {
	format := src.Format
	if format == "" {
		format = FormatText
		if strings.EqualFold(filepath.Ext(path), ".jsonl") {
			format = FormatJSONL
		}
	}

	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("data: failed to read corpus file: %w", err)
	}
	defer f.Close()

	if format == FormatJSONL {
		return r.readJSONL(f, path, src.field())
	}
	return r.readText(f, path)
}

// readText reads a whole file as one document, or its first bytes up to the
// remaining MaxBytes budget.
func (r *corpusReader) readText(f *os.File, path string) error {
	var content []byte
	var err error
	cut := false
	if limit := r.remaining(); limit >= 0 {
		// Read one byte more than the budget to learn whether the file goes on.
		content, err = io.ReadAll(io.LimitReader(f, limit+1))
		if int64(len(content)) > limit {
			content, cut = trimPartialRune(content[:limit]), true
		}
	} else {
		content, err = io.ReadAll(f)
	}
	if err != nil {
		return fmt.Errorf("data: failed to read corpus file %s: %w", path, err)
	}

	if !isText(content) {
		r.skipFile(path)
		return nil
	}
	r.stats.Files++
	r.addDocument(path, string(content))
	if cut {
		r.stats.Truncated = true
	}
	return nil
}

// readJSONL reads one document per non-blank line of a JSONL file until the
// file ends or the MaxBytes budget is spent.
func (r *corpusReader) readJSONL(f *os.File, path, field string) error {
	// Remember the state before this file, so that a line that is not text
	// can drop the documents the file already added.
	docsBefore, statsBefore := len(r.docs), r.stats

	reader := bufio.NewReaderSize(f, 64<<10)
	for lineNumber := 1; ; lineNumber++ {
		line, err := reader.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("data: failed to read corpus file %s: %w", path, err)
		}
		if len(line) == 0 {
			break
		}

		trimmed := bytes.TrimSpace(line)
		if len(trimmed) > 0 {
			if r.budgetSpent() {
				r.stats.Truncated = true
				break
			}
			if !isText(line) {
				r.docs, r.stats = r.docs[:docsBefore], statsBefore
				r.skipFile(path)
				return nil
			}

			text, parseErr := jsonlText(trimmed, field)
			if parseErr != nil {
				return fmt.Errorf("data: %s:%d: %w", path, lineNumber, parseErr)
			}
			if limit := r.remaining(); limit >= 0 && int64(len(text)) > limit {
				text = string(trimPartialRune([]byte(text[:limit])))
				r.stats.Truncated = true
			}
			r.addDocument(fmt.Sprintf("%s:%d", path, lineNumber), text)
		}
		if err != nil { // io.EOF after a last line without a newline
			break
		}
	}
	r.stats.Files++
	return nil
}

// jsonlText returns the string value of field in the JSON object line.
func jsonlText(line []byte, field string) (string, error) {
	var object map[string]json.RawMessage
	if err := json.Unmarshal(line, &object); err != nil {
		return "", fmt.Errorf("invalid JSON object: %w", err)
	}
	raw, ok := object[field]
	if !ok {
		return "", fmt.Errorf("missing field %q", field)
	}
	var text string
	if err := json.Unmarshal(raw, &text); err != nil || bytes.Equal(raw, []byte("null")) {
		return "", fmt.Errorf("field %q is %s, not a string", field, abbreviate(raw))
	}
	return text, nil
}

// abbreviate shortens a JSON value for an error message.
func abbreviate(raw json.RawMessage) string {
	const maxLen = 40
	if len(raw) <= maxLen {
		return string(raw)
	}
	return string(raw[:maxLen]) + "..."
}

// addDocument appends a document unless its text is blank.
func (r *corpusReader) addDocument(source, text string) {
	if strings.TrimSpace(text) == "" {
		r.stats.EmptyDocuments++
		return
	}
	r.docs = append(r.docs, Document{Source: source, Text: text})
	r.stats.Documents++
	r.stats.Bytes += int64(len(text))
}

// skipFile counts a file that is not text.
func (r *corpusReader) skipFile(path string) {
	r.stats.SkippedFiles++
	if len(r.stats.SkippedExamples) < maxSkippedExamples {
		r.stats.SkippedExamples = append(r.stats.SkippedExamples, path)
	}
	slog.Debug("data: skipped corpus file that is not valid UTF-8 or contains NUL bytes", "path", path)
}

// isText reports whether b is valid UTF-8 without NUL bytes.
func isText(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b, which
// cutting text at a byte count can leave.
func trimPartialRune(b []byte) []byte {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			if !utf8.FullRune(b[i:]) {
				return b[:i]
			}
			break
		}
	}
	return b
}
