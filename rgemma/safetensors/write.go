package safetensors

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"unicode/utf8"
)

// Tensor is a tensor to write: Data contains the little-endian elements of
// DType in row-major order.
type Tensor struct {
	Name  string
	DType string
	Shape []int
	Data  []byte
}

// Float32Tensor builds a Tensor from float32 values, stored as dtype "F32",
// "BF16" or "F16". BF16 and F16 round to nearest even, and NaN stays NaN.
func Float32Tensor(name string, shape []int, values []float32, dtype string) (Tensor, error) {
	count, err := shapeElements(shape)
	if err != nil {
		return Tensor{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	if count != int64(len(values)) {
		return Tensor{}, fmt.Errorf("tensor %q: shape %v needs %d values, got %d", name, shape, count, len(values))
	}
	data, err := encodeFloat32s(values, dtype)
	if err != nil {
		return Tensor{}, fmt.Errorf("tensor %q: %w", name, err)
	}
	return Tensor{Name: name, DType: dtype, Shape: append([]int{}, shape...), Data: data}, nil
}

// shapeElements returns the number of elements of shape, or an error for a
// negative dimension or an overflow.
func shapeElements(shape []int) (int64, error) {
	dims := make([]int64, len(shape))
	for i, dim := range shape {
		if dim < 0 {
			return 0, fmt.Errorf("shape %v has invalid dimension %d at axis %d: dimensions must be non-negative", shape, dim, i)
		}
		dims[i] = int64(dim)
	}
	count, ok := byteSize(dims, 1)
	if !ok {
		return 0, fmt.Errorf("shape %v has more elements than fit in int64", shape)
	}
	return count, nil
}

// validateTensors checks names, dtypes, shapes and data sizes before anything
// is written.
func validateTensors(tensors []Tensor) error {
	seen := make(map[string]bool, len(tensors))
	for _, tensor := range tensors {
		if !utf8.ValidString(tensor.Name) {
			return fmt.Errorf("tensor name %q is not valid UTF-8", tensor.Name)
		}
		if tensor.Name == metadataKey {
			return fmt.Errorf("tensor name %q is reserved for the metadata", metadataKey)
		}
		if seen[tensor.Name] {
			return fmt.Errorf("tensor %q appears more than once", tensor.Name)
		}
		seen[tensor.Name] = true

		elementSize, ok := dtypeSizes[tensor.DType]
		if !ok {
			return fmt.Errorf("tensor %q: unknown dtype %q, supported dtypes are %s", tensor.Name, tensor.DType, supportedDTypes())
		}
		count, err := shapeElements(tensor.Shape)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", tensor.Name, err)
		}
		needed, ok := byteSize([]int64{count}, elementSize)
		if !ok || needed != int64(len(tensor.Data)) {
			return fmt.Errorf("tensor %q: data has %d bytes but dtype %s × shape %v needs %d", tensor.Name, len(tensor.Data), tensor.DType, tensor.Shape, needed)
		}
	}
	return nil
}

// validateMetadata checks that JSON can store metadata unchanged.
func validateMetadata(metadata map[string]string) error {
	for key, value := range metadata {
		if !utf8.ValidString(key) || !utf8.ValidString(value) {
			return fmt.Errorf("metadata entry %q: %q is not valid UTF-8", key, value)
		}
	}
	return nil
}

// headerEntryJSON is the JSON form of one tensor entry in the header.
type headerEntryJSON struct {
	DType       string   `json:"dtype"`
	Shape       []int    `json:"shape"`
	DataOffsets [2]int64 `json:"data_offsets"`
}

// layoutTensors returns the tensors in the order in which their data is
// written: by decreasing element size, then by name. Every tensor then starts
// at a multiple of its element size, because the header length is padded to
// a multiple of 8 as well. The header itself lists the tensors sorted by name.
func layoutTensors(tensors []Tensor) []Tensor {
	ordered := append([]Tensor(nil), tensors...)
	sort.Slice(ordered, func(i, j int) bool {
		sizeI, sizeJ := dtypeSizes[ordered[i].DType], dtypeSizes[ordered[j].DType]
		if sizeI != sizeJ {
			return sizeI > sizeJ
		}
		return ordered[i].Name < ordered[j].Name
	})
	return ordered
}

// encodeHeader returns the JSON header for tensors in data order, padded with
// spaces to a multiple of 8 bytes.
func encodeHeader(ordered []Tensor, metadata map[string]string) ([]byte, error) {
	entries := make(map[string]any, len(ordered)+1)
	offset := int64(0)
	for _, tensor := range ordered {
		shape := append([]int{}, tensor.Shape...)
		end := offset + int64(len(tensor.Data))
		entries[tensor.Name] = headerEntryJSON{DType: tensor.DType, Shape: shape, DataOffsets: [2]int64{offset, end}}
		offset = end
	}
	if len(metadata) > 0 {
		entries[metadataKey] = metadata
	}

	// encoding/json writes map keys sorted, so the header lists tensors by name.
	header, err := json.Marshal(entries)
	if err != nil {
		return nil, fmt.Errorf("encoding the header: %w", err)
	}
	for len(header)%8 != 0 {
		header = append(header, ' ')
	}
	return header, nil
}

// WriteFile writes tensors and metadata to a safetensors file at path. The
// header lists the tensors sorted by name. The data buffer orders them by
// decreasing element size, then by name, so that each tensor is aligned to
// its element size. The buffer has no gaps, because the safetensors Python
// package rejects files with gaps.
//
// WriteFile writes a temporary file in the directory of path and renames it
// to path, so a reader never sees a partial file and a failed write leaves
// no file behind. The new file has mode 0644.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) error {
	if err := validateTensors(tensors); err != nil {
		return fmt.Errorf("safetensors file %s: %w", path, err)
	}
	if err := validateMetadata(metadata); err != nil {
		return fmt.Errorf("safetensors file %s: %w", path, err)
	}
	ordered := layoutTensors(tensors)
	header, err := encodeHeader(ordered, metadata)
	if err != nil {
		return fmt.Errorf("safetensors file %s: %w", path, err)
	}

	return writeAtomic(path, func(w io.Writer) error {
		var length [8]byte
		binary.LittleEndian.PutUint64(length[:], uint64(len(header)))
		if _, err := w.Write(length[:]); err != nil {
			return err
		}
		if _, err := w.Write(header); err != nil {
			return err
		}
		for _, tensor := range ordered {
			if _, err := w.Write(tensor.Data); err != nil {
				return err
			}
		}
		return nil
	})
}

// writeAtomic calls write with a buffered temporary file next to path, syncs
// it and renames it to path. On any error it removes the temporary file.
func writeAtomic(path string, write func(w io.Writer) error) (err error) {
	temp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("safetensors file %s: creating temporary file: %w", path, err)
	}
	tempPath := temp.Name()
	defer func() {
		if err != nil {
			temp.Close()
			os.Remove(tempPath)
		}
	}()

	buffered := bufio.NewWriterSize(temp, 1<<20)
	if err := write(buffered); err != nil {
		return fmt.Errorf("safetensors file %s: writing %s: %w", path, tempPath, err)
	}
	if err := buffered.Flush(); err != nil {
		return fmt.Errorf("safetensors file %s: writing %s: %w", path, tempPath, err)
	}
	if err := temp.Chmod(0o644); err != nil {
		return fmt.Errorf("safetensors file %s: %w", path, err)
	}
	if err := temp.Sync(); err != nil {
		return fmt.Errorf("safetensors file %s: syncing %s: %w", path, tempPath, err)
	}
	if err := temp.Close(); err != nil {
		return fmt.Errorf("safetensors file %s: closing %s: %w", path, tempPath, err)
	}
	if err := os.Rename(tempPath, path); err != nil {
		return fmt.Errorf("safetensors file %s: renaming the temporary file: %w", path, err)
	}
	return nil
}

// ShardFileName returns the Hugging Face name of shard index (counted from 1)
// out of count shards, such as "model-00001-of-00003.safetensors".
func ShardFileName(index, count int) string {
	return fmt.Sprintf("model-%05d-of-%05d.safetensors", index, count)
}

// WriteSharded writes tensors as a Hugging Face checkpoint directory that
// OpenDir reads. It fills shards with tensors in name order
// and starts a new shard when the next tensor would take the shard's data
// past maxShardBytes. A tensor larger than maxShardBytes gets a shard of its
// own. With one shard it writes dir/model.safetensors. With more it writes
// ShardFileName files and model.safetensors.index.json, whose metadata
// contains total_size, the sum of all tensor data bytes. Every shard gets
// metadata as its "__metadata__".
//
// WriteSharded creates dir if needed. It rejects a directory that already
// contains a checkpoint, because stale shards or a stale index could mix
// with the new files. On an error it removes the shards that it wrote.
func WriteSharded(dir string, tensors []Tensor, maxShardBytes int64, metadata map[string]string) (err error) {
	if maxShardBytes <= 0 {
		return fmt.Errorf("safetensors checkpoint %s: maxShardBytes is %d, must be positive", dir, maxShardBytes)
	}
	if err := validateTensors(tensors); err != nil {
		return fmt.Errorf("safetensors checkpoint %s: %w", dir, err)
	}
	if err := validateMetadata(metadata); err != nil {
		return fmt.Errorf("safetensors checkpoint %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("safetensors checkpoint %s: %w", dir, err)
	}
	if err := checkNoCheckpoint(dir); err != nil {
		return err
	}

	shards := splitShards(tensors, maxShardBytes)
	if len(shards) == 1 {
		return WriteFile(filepath.Join(dir, SingleFileName), shards[0], metadata)
	}

	var written []string
	defer func() {
		if err != nil {
			for _, path := range written {
				os.Remove(path)
			}
		}
	}()

	weightMap := make(map[string]string, len(tensors))
	totalSize := int64(0)
	for i, shard := range shards {
		shardName := ShardFileName(i+1, len(shards))
		shardPath := filepath.Join(dir, shardName)
		if err := WriteFile(shardPath, shard, metadata); err != nil {
			return err
		}
		written = append(written, shardPath)
		for _, tensor := range shard {
			weightMap[tensor.Name] = shardName
			totalSize += int64(len(tensor.Data))
		}
	}

	index := map[string]any{
		"metadata":   map[string]any{"total_size": totalSize},
		"weight_map": weightMap,
	}
	indexBytes, err := json.MarshalIndent(index, "", "  ")
	if err != nil {
		return fmt.Errorf("safetensors checkpoint %s: encoding the index: %w", dir, err)
	}
	indexBytes = append(indexBytes, '\n')
	return writeAtomic(filepath.Join(dir, IndexFileName), func(w io.Writer) error {
		_, err := w.Write(indexBytes)
		return err
	})
}

// checkNoCheckpoint returns an error if dir already contains a file of a
// Hugging Face safetensors checkpoint.
func checkNoCheckpoint(dir string) error {
	for _, name := range []string{SingleFileName, IndexFileName} {
		_, err := os.Stat(filepath.Join(dir, name))
		if err == nil {
			return fmt.Errorf("safetensors checkpoint %s: directory already contains %s: remove the old checkpoint or choose an empty directory", dir, name)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("safetensors checkpoint %s: %w", dir, err)
		}
	}
	matches, err := filepath.Glob(filepath.Join(dir, "model-*-of-*.safetensors"))
	if err != nil {
		return fmt.Errorf("safetensors checkpoint %s: %w", dir, err)
	}
	if len(matches) > 0 {
		return fmt.Errorf("safetensors checkpoint %s: directory already contains shard %s: remove the old checkpoint or choose an empty directory", dir, filepath.Base(matches[0]))
	}
	return nil
}

// splitShards groups tensors, sorted by name, into shards whose data sizes
// stay within maxShardBytes, except for single tensors larger than that.
func splitShards(tensors []Tensor, maxShardBytes int64) [][]Tensor {
	sorted := append([]Tensor(nil), tensors...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })

	var shards [][]Tensor
	var current []Tensor
	currentBytes := int64(0)
	for _, tensor := range sorted {
		size := int64(len(tensor.Data))
		if len(current) > 0 && currentBytes+size > maxShardBytes {
			shards = append(shards, current)
			current, currentBytes = nil, 0
		}
		current = append(current, tensor)
		currentBytes += size
	}
	// An empty tensor list still gets one (empty) shard, model.safetensors.
	shards = append(shards, current)
	return shards
}
