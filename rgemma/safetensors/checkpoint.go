package safetensors

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// File names of a Hugging Face checkpoint directory.
const (
	// SingleFileName is the file of a checkpoint that has one shard.
	SingleFileName = "model.safetensors"
	// IndexFileName is the index of a sharded checkpoint. It maps each tensor
	// name to the shard file that contains the tensor.
	IndexFileName = "model.safetensors.index.json"
)

// shardIndex is the part of the IndexFileName JSON that OpenDir uses. The
// "metadata" object, such as total_size, is not read.
type shardIndex struct {
	WeightMap map[string]string `json:"weight_map"`
}

// Checkpoint is a checkpoint directory of one or more safetensors shards. Like
// File, it is safe for concurrent reads.
type Checkpoint struct {
	dir string
	// shards contains the open shard files sorted by file name.
	shards []*File
	// tensorShard maps each tensor name to the shard that contains it.
	tensorShard map[string]*File
	names       []string
}

// OpenDir opens the checkpoint in dir. It uses model.safetensors.index.json
// when the directory contains one, and model.safetensors otherwise. It checks
// that every shard named in the index exists and that each shard contains the
// tensors that the index assigns to it. Tensors that a shard contains but the
// index does not list are ignored.
func OpenDir(dir string) (*Checkpoint, error) {
	indexPath := filepath.Join(dir, IndexFileName)
	indexBytes, err := os.ReadFile(indexPath)
	if errors.Is(err, fs.ErrNotExist) {
		return openSingleFile(dir)
	}
	if err != nil {
		return nil, fmt.Errorf("safetensors checkpoint %s: %w", dir, err)
	}

	var index shardIndex
	if err := json.Unmarshal(indexBytes, &index); err != nil {
		return nil, fmt.Errorf("safetensors index %s: invalid JSON: %w", indexPath, err)
	}
	if len(index.WeightMap) == 0 {
		return nil, fmt.Errorf("safetensors index %s: weight_map is missing or empty", indexPath)
	}

	checkpoint := &Checkpoint{dir: dir, tensorShard: make(map[string]*File, len(index.WeightMap))}
	shardByName := make(map[string]*File)
	for _, shardName := range sortedShardNames(index.WeightMap) {
		if !isPlainFileName(shardName) {
			checkpoint.Close()
			return nil, fmt.Errorf("safetensors index %s: shard name %q must be a file name inside the directory", indexPath, shardName)
		}
		shardPath := filepath.Join(dir, shardName)
		if _, err := os.Stat(shardPath); errors.Is(err, fs.ErrNotExist) {
			checkpoint.Close()
			return nil, fmt.Errorf("safetensors index %s: shard %q does not exist in %s", indexPath, shardName, dir)
		}
		shard, err := Open(shardPath)
		if err != nil {
			checkpoint.Close()
			return nil, err
		}
		checkpoint.shards = append(checkpoint.shards, shard)
		shardByName[shardName] = shard
	}

	for tensorName, shardName := range index.WeightMap {
		shard := shardByName[shardName]
		if _, ok := shard.Info(tensorName); !ok {
			checkpoint.Close()
			return nil, fmt.Errorf("safetensors index %s: tensor %q is listed in shard %q, but that shard does not contain it", indexPath, tensorName, shardName)
		}
		checkpoint.tensorShard[tensorName] = shard
		checkpoint.names = append(checkpoint.names, tensorName)
	}
	sort.Strings(checkpoint.names)
	return checkpoint, nil
}

// openSingleFile opens dir/model.safetensors as a checkpoint of one shard.
func openSingleFile(dir string) (*Checkpoint, error) {
	path := filepath.Join(dir, SingleFileName)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("safetensors checkpoint %s: directory contains neither %s nor %s", dir, IndexFileName, SingleFileName)
	}
	file, err := Open(path)
	if err != nil {
		return nil, err
	}

	checkpoint := &Checkpoint{dir: dir, shards: []*File{file}, tensorShard: make(map[string]*File)}
	for _, info := range file.tensors {
		checkpoint.tensorShard[info.Name] = file
		checkpoint.names = append(checkpoint.names, info.Name)
	}
	return checkpoint, nil
}

// sortedShardNames returns the distinct shard file names of weightMap, sorted.
func sortedShardNames(weightMap map[string]string) []string {
	seen := make(map[string]bool)
	var names []string
	for _, shardName := range weightMap {
		if !seen[shardName] {
			seen[shardName] = true
			names = append(names, shardName)
		}
	}
	sort.Strings(names)
	return names
}

// isPlainFileName reports whether name is a single path element, so that an
// index cannot point outside its directory.
func isPlainFileName(name string) bool {
	return name != "" && name != "." && name != ".." && filepath.Base(name) == name && filepath.IsLocal(name)
}

// Dir returns the directory that the checkpoint was opened from.
func (c *Checkpoint) Dir() string {
	return c.dir
}

// Names returns the tensor names of the checkpoint, sorted.
func (c *Checkpoint) Names() []string {
	return append([]string(nil), c.names...)
}

// Info returns the tensor called name, and false if the checkpoint has none.
// Begin and End are relative to the data buffer of the tensor's shard.
func (c *Checkpoint) Info(name string) (TensorInfo, bool) {
	shard, ok := c.tensorShard[name]
	if !ok {
		return TensorInfo{}, false
	}
	return shard.Info(name)
}

// Metadata returns the "__metadata__" map of the first shard by file name.
// WriteSharded writes the same map into every shard. The "metadata" object
// of the index file, such as total_size, is not returned.
func (c *Checkpoint) Metadata() map[string]string {
	return c.shards[0].Metadata()
}

// shardOf returns the shard that contains the tensor called name.
func (c *Checkpoint) shardOf(name string) (*File, error) {
	shard, ok := c.tensorShard[name]
	if !ok {
		return nil, fmt.Errorf("safetensors checkpoint %s: tensor %q not found", c.dir, name)
	}
	return shard, nil
}

// ReadRaw reads the little-endian bytes of the tensor called name.
func (c *Checkpoint) ReadRaw(name string) ([]byte, error) {
	shard, err := c.shardOf(name)
	if err != nil {
		return nil, err
	}
	return shard.ReadRaw(name)
}

// ReadFloat32 reads the tensor called name, of dtype F32, BF16 or F16, and
// converts it to float32.
func (c *Checkpoint) ReadFloat32(name string) ([]float32, error) {
	shard, err := c.shardOf(name)
	if err != nil {
		return nil, err
	}
	return shard.ReadFloat32(name)
}

// Close closes all shard files and returns the first error.
func (c *Checkpoint) Close() error {
	var firstErr error
	for _, shard := range c.shards {
		if err := shard.Close(); err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}
