// Package safetensors reads and writes checkpoints in the Hugging Face
// safetensors format, one file or a directory of shards.
//
// A safetensors file is an 8-byte little-endian header length N, then N bytes
// of JSON header, then the data buffer. The header maps each tensor name to
// its dtype, shape and data_offsets [begin, end], which are byte offsets
// relative to the start of the data buffer. The optional "__metadata__" entry
// maps strings to strings.
//
// The package exists because GoMLX v0.26.0, go-xla v0.1.4 and
// go-huggingface v0.3.1 contain no safetensors reader: go-huggingface only
// reports parameter counts from the Hub API. The reader
// reads only the header when it opens a file, and then one tensor at a time
// with ReadAt, so checkpoints of many gigabytes never have to fit in memory.
package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sort"
	"strings"
	"unicode/utf8"
)

// errBeyondData marks a tensor that ends after the data buffer, which in a
// file usually means that the file is truncated.
var errBeyondData = errors.New("end beyond the data buffer")

// metadataKey is the reserved header key that contains the string metadata.
const metadataKey = "__metadata__"

// dtypeSizes maps each supported safetensors dtype to its element size in bytes.
// The sub-byte types of newer safetensors releases (F4, F6_*) are not supported.
var dtypeSizes = map[string]int{
	"F64":     8,
	"F32":     4,
	"F16":     2,
	"BF16":    2,
	"F8_E4M3": 1,
	"F8_E5M2": 1,
	"I64":     8,
	"I32":     4,
	"I16":     2,
	"I8":      1,
	"U64":     8,
	"U32":     4,
	"U16":     2,
	"U8":      1,
	"BOOL":    1,
}

// DTypeSize returns the element size in bytes of a safetensors dtype such as
// "F32" or "BF16", and false if the dtype is not supported.
func DTypeSize(dtype string) (int, bool) {
	size, ok := dtypeSizes[dtype]
	return size, ok
}

// supportedDTypes returns the supported dtype names, sorted, for error messages.
func supportedDTypes() string {
	names := make([]string, 0, len(dtypeSizes))
	for name := range dtypeSizes {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// TensorInfo describes one tensor of a safetensors header.
type TensorInfo struct {
	Name  string
	DType string
	Shape []int
	// Begin and End are the byte offsets of the tensor data relative to the
	// start of the data buffer, which follows the header. End is exclusive.
	Begin, End int64
}

// NumBytes returns the size of the tensor data in bytes.
func (t TensorInfo) NumBytes() int64 {
	return t.End - t.Begin
}

// NumElements returns the product of the shape, which is 1 for a scalar.
func (t TensorInfo) NumElements() int64 {
	n := int64(1)
	for _, dim := range t.Shape {
		n *= int64(dim)
	}
	return n
}

// ParseHeader parses and validates the JSON header of a safetensors file
// whose data buffer is dataSize bytes long. It returns the tensors sorted by
// name and the "__metadata__" map, which is nil when the header has none.
//
// The header must be valid UTF-8 and contain one JSON object without
// duplicate keys. Every tensor entry needs a supported dtype, a shape of
// non-negative dimensions and data_offsets [begin, end] with
// 0 <= begin <= end <= dataSize, and end-begin must equal the number of
// elements times the dtype size. No two tensors may share a byte. Tensors with
// zero bytes share none, so they may sit at any offset inside the buffer.
// ParseHeader accepts gaps between tensors, which the safetensors Python
// package (version 0.8.0) rejects.
func ParseHeader(header []byte, dataSize int64) (infos []TensorInfo, metadata map[string]string, err error) {
	if dataSize < 0 {
		return nil, nil, fmt.Errorf("invalid data size %d: must be non-negative", dataSize)
	}
	if !utf8.Valid(header) {
		return nil, nil, fmt.Errorf("header is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(header, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil, fmt.Errorf("header is not a JSON object: it starts with %q", firstBytes(trimmed, 16))
	}

	entries, err := splitTopLevelObject(header)
	if err != nil {
		return nil, nil, err
	}

	for _, entry := range entries {
		if entry.key == metadataKey {
			metadata, err = parseMetadata(entry.value)
			if err != nil {
				return nil, nil, err
			}
			continue
		}
		info, err := parseTensorEntry(entry.key, entry.value, dataSize)
		if err != nil {
			return nil, nil, err
		}
		infos = append(infos, info)
	}

	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	if err := checkNoOverlap(infos); err != nil {
		return nil, nil, err
	}
	return infos, metadata, nil
}

// headerEntry is one key and its raw JSON value from the top-level header object.
type headerEntry struct {
	key   string
	value json.RawMessage
}

// splitTopLevelObject decodes the top-level JSON object key by key, so that
// duplicate keys are rejected instead of silently keeping the last one.
func splitTopLevelObject(header []byte) ([]headerEntry, error) {
	decoder := json.NewDecoder(bytes.NewReader(header))
	token, err := decoder.Token()
	if err != nil {
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	if delim, ok := token.(json.Delim); !ok || delim != '{' {
		return nil, fmt.Errorf("header is not a JSON object")
	}

	var entries []headerEntry
	seen := make(map[string]bool)
	for decoder.More() {
		token, err := decoder.Token()
		if err != nil {
			return nil, fmt.Errorf("header is not valid JSON: %w", err)
		}
		key, ok := token.(string)
		if !ok {
			return nil, fmt.Errorf("header is not valid JSON: object key %v is not a string", token)
		}
		if seen[key] {
			return nil, fmt.Errorf("header contains the key %q more than once", key)
		}
		seen[key] = true

		var value json.RawMessage
		if err := decoder.Decode(&value); err != nil {
			return nil, fmt.Errorf("header is not valid JSON: value of %q: %w", key, err)
		}
		entries = append(entries, headerEntry{key: key, value: value})
	}

	// Read the closing brace, then require the end of input: only whitespace,
	// such as the space padding that writers add, may follow the object.
	if _, err := decoder.Token(); err != nil {
		return nil, fmt.Errorf("header is not valid JSON: %w", err)
	}
	if _, err := decoder.Token(); err != io.EOF {
		return nil, fmt.Errorf("header is not valid JSON: unexpected data after the top-level object")
	}
	return entries, nil
}

// parseMetadata decodes the "__metadata__" value, which must be an object of
// string values or null.
func parseMetadata(value json.RawMessage) (map[string]string, error) {
	var metadata map[string]string
	if err := json.Unmarshal(value, &metadata); err != nil {
		return nil, fmt.Errorf("%s must be a JSON object of string values: %w", metadataKey, err)
	}
	return metadata, nil
}

// parseTensorEntry decodes and validates one tensor entry, except for overlaps
// with other tensors.
func parseTensorEntry(name string, value json.RawMessage, dataSize int64) (TensorInfo, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(value, &fields); err != nil || fields == nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: entry must be a JSON object with dtype, shape and data_offsets", name)
	}

	var dtype string
	if err := decodeField(fields, "dtype", &dtype); err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	elementSize, ok := dtypeSizes[dtype]
	if !ok {
		return TensorInfo{}, fmt.Errorf("tensor %q: unknown dtype %q, supported dtypes are %s", name, dtype, supportedDTypes())
	}

	var shape []int64
	if err := decodeField(fields, "shape", &shape); err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	var offsets []int64
	if err := decodeField(fields, "data_offsets", &offsets); err != nil {
		return TensorInfo{}, fmt.Errorf("tensor %q: %w", name, err)
	}

	info := TensorInfo{Name: name, DType: dtype, Shape: make([]int, len(shape))}
	for i, dim := range shape {
		if dim < 0 || dim > math.MaxInt {
			return TensorInfo{}, fmt.Errorf("tensor %q: shape %v has invalid dimension %d at axis %d: dimensions must be non-negative", name, shape, dim, i)
		}
		info.Shape[i] = int(dim)
	}

	if len(offsets) != 2 {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets %v must have exactly 2 elements [begin, end]", name, offsets)
	}
	info.Begin, info.End = offsets[0], offsets[1]
	if info.Begin < 0 || info.End < info.Begin {
		return TensorInfo{}, fmt.Errorf("tensor %q: invalid data_offsets [%d, %d]: need 0 <= begin <= end", name, info.Begin, info.End)
	}
	if info.End > dataSize {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets [%d, %d] %w of %d bytes", name, info.Begin, info.End, errBeyondData, dataSize)
	}

	needed, ok := byteSize(shape, elementSize)
	if !ok {
		return TensorInfo{}, fmt.Errorf("tensor %q: dtype %s × shape %v overflows int64 bytes", name, dtype, shape)
	}
	if got := info.End - info.Begin; got != needed {
		return TensorInfo{}, fmt.Errorf("tensor %q: data_offsets [%d, %d] give %d bytes but dtype %s × shape %v needs %d", name, info.Begin, info.End, got, dtype, shape, needed)
	}
	return info, nil
}

// decodeField decodes the required field key of a tensor entry into target.
func decodeField(fields map[string]json.RawMessage, key string, target any) error {
	raw, ok := fields[key]
	if !ok || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return fmt.Errorf("missing %s", key)
	}
	if err := json.Unmarshal(raw, target); err != nil {
		return fmt.Errorf("invalid %s %s: %w", key, firstBytes(raw, 64), err)
	}
	return nil
}

// byteSize returns the product of the non-negative dims times elementSize,
// and false if it does not fit in an int64.
func byteSize(dims []int64, elementSize int) (int64, bool) {
	total := uint64(elementSize)
	for _, dim := range dims {
		high, low := bits.Mul64(total, uint64(dim))
		if high != 0 || low > math.MaxInt64 {
			return 0, false
		}
		total = low
	}
	return int64(total), true
}

// checkNoOverlap returns an error naming the first two tensors that share a byte.
func checkNoOverlap(infos []TensorInfo) error {
	nonEmpty := make([]TensorInfo, 0, len(infos))
	for _, info := range infos {
		if info.End > info.Begin {
			nonEmpty = append(nonEmpty, info)
		}
	}
	sort.Slice(nonEmpty, func(i, j int) bool {
		if nonEmpty[i].Begin != nonEmpty[j].Begin {
			return nonEmpty[i].Begin < nonEmpty[j].Begin
		}
		return nonEmpty[i].Name < nonEmpty[j].Name
	})
	for i := 1; i < len(nonEmpty); i++ {
		previous, current := nonEmpty[i-1], nonEmpty[i]
		if current.Begin < previous.End {
			return fmt.Errorf("tensor %q: data_offsets [%d, %d] overlap tensor %q at [%d, %d]",
				current.Name, current.Begin, current.End, previous.Name, previous.Begin, previous.End)
		}
	}
	return nil
}

// firstBytes returns at most n bytes of data as a string, for error messages.
func firstBytes(data []byte, n int) string {
	if len(data) > n {
		return string(data[:n]) + "..."
	}
	return string(data)
}
