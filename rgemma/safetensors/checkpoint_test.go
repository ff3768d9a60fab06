package safetensors

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shardedTestTensors returns six F32 tensors of 64 bytes each.
func shardedTestTensors(t *testing.T) []Tensor {
	var tensors []Tensor
	for i := range 6 {
		values := sequence(16, float32(i+1))
		tensors = append(tensors, mustFloat32Tensor(t, fmt.Sprintf("layer.%d.weight", i), []int{4, 4}, values, "F32"))
	}
	return tensors
}

func TestShardedRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "checkpoint")
	tensors := shardedTestTensors(t)
	metadata := map[string]string{"format": "pt"}
	// Two 64-byte tensors fit in 128 bytes, so six tensors need three shards.
	require.NoError(t, WriteSharded(dir, tensors, 128, metadata))

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var files []string
	for _, entry := range entries {
		files = append(files, entry.Name())
	}
	assert.Equal(t, []string{
		"model-00001-of-00003.safetensors",
		"model-00002-of-00003.safetensors",
		"model-00003-of-00003.safetensors",
		"model.safetensors.index.json",
	}, files)

	indexBytes, err := os.ReadFile(filepath.Join(dir, IndexFileName))
	require.NoError(t, err)
	var index struct {
		Metadata  map[string]int64  `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	require.NoError(t, json.Unmarshal(indexBytes, &index))
	assert.Equal(t, int64(6*64), index.Metadata["total_size"])
	assert.Equal(t, "model-00002-of-00003.safetensors", index.WeightMap["layer.2.weight"])

	checkpoint, err := OpenDir(dir)
	require.NoError(t, err)
	defer checkpoint.Close()

	var wantNames []string
	for _, tensor := range tensors {
		wantNames = append(wantNames, tensor.Name)
	}
	sort.Strings(wantNames)
	assert.Equal(t, wantNames, checkpoint.Names())
	assert.Equal(t, metadata, checkpoint.Metadata())

	for i, tensor := range tensors {
		got, err := checkpoint.ReadFloat32(tensor.Name)
		require.NoError(t, err)
		assert.Equal(t, sequence(16, float32(i+1)), got, tensor.Name)

		raw, err := checkpoint.ReadRaw(tensor.Name)
		require.NoError(t, err)
		assert.Equal(t, tensor.Data, raw, tensor.Name)

		info, ok := checkpoint.Info(tensor.Name)
		require.True(t, ok)
		assert.Equal(t, []int{4, 4}, info.Shape)
	}

	_, err = checkpoint.ReadFloat32("absent")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `tensor "absent" not found`)
	_, ok := checkpoint.Info("absent")
	assert.False(t, ok)
}

func TestWriteShardedSingleFile(t *testing.T) {
	dir := t.TempDir()
	tensors := shardedTestTensors(t)
	require.NoError(t, WriteSharded(dir, tensors, 1<<30, nil))

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, SingleFileName, entries[0].Name())

	checkpoint, err := OpenDir(dir)
	require.NoError(t, err)
	defer checkpoint.Close()
	assert.Len(t, checkpoint.Names(), len(tensors))
	got, err := checkpoint.ReadFloat32("layer.5.weight")
	require.NoError(t, err)
	assert.Equal(t, sequence(16, 6), got)
}

func TestWriteShardedOversizedTensor(t *testing.T) {
	// Every tensor is larger than the limit, so each gets its own shard.
	dir := t.TempDir()
	require.NoError(t, WriteSharded(dir, shardedTestTensors(t)[:3], 10, nil))
	checkpoint, err := OpenDir(dir)
	require.NoError(t, err)
	defer checkpoint.Close()
	assert.Len(t, checkpoint.shards, 3)
}

func TestWriteShardedRejectsExistingCheckpoint(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, WriteSharded(dir, shardedTestTensors(t), 128, nil))
	err := WriteSharded(dir, shardedTestTensors(t), 1<<30, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "directory already contains")
	_, statErr := os.Stat(filepath.Join(dir, SingleFileName))
	assert.ErrorIs(t, statErr, os.ErrNotExist)
}

func TestWriteShardedRejectsBadLimit(t *testing.T) {
	err := WriteSharded(t.TempDir(), shardedTestTensors(t), 0, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "maxShardBytes is 0, must be positive")
}

// writeIndex writes a model.safetensors.index.json with weightMap into dir.
func writeIndex(t *testing.T, dir string, weightMap map[string]string) {
	t.Helper()
	content, err := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 0}, "weight_map": weightMap})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, IndexFileName), content, 0o644))
}

func TestOpenDirBadInput(t *testing.T) {
	shard := ShardFileName(1, 2)
	cases := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		wantErr string
	}{
		{
			name:    "empty directory",
			setup:   func(t *testing.T, dir string) {},
			wantErr: "directory contains neither model.safetensors.index.json nor model.safetensors",
		},
		{
			name: "index names missing shard",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, WriteFile(filepath.Join(dir, shard), shardedTestTensors(t)[:1], nil))
				writeIndex(t, dir, map[string]string{"layer.0.weight": shard, "layer.1.weight": ShardFileName(2, 2)})
			},
			wantErr: `shard "model-00002-of-00002.safetensors" does not exist`,
		},
		{
			name: "index lists tensor the shard lacks",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, WriteFile(filepath.Join(dir, shard), shardedTestTensors(t)[:1], nil))
				writeIndex(t, dir, map[string]string{"layer.0.weight": shard, "layer.9.weight": shard})
			},
			wantErr: `tensor "layer.9.weight" is listed in shard "model-00001-of-00002.safetensors", but that shard does not contain it`,
		},
		{
			name: "index not JSON",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, IndexFileName), []byte("{weight_map"), 0o644))
			},
			wantErr: "invalid JSON",
		},
		{
			name: "index without weight_map",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, IndexFileName), []byte(`{"metadata":{}}`), 0o644))
			},
			wantErr: "weight_map is missing or empty",
		},
		{
			name: "shard outside directory",
			setup: func(t *testing.T, dir string) {
				writeIndex(t, dir, map[string]string{"w": "../model.safetensors"})
			},
			wantErr: `shard name "../model.safetensors" must be a file name inside the directory`,
		},
		{
			name: "corrupt shard",
			setup: func(t *testing.T, dir string) {
				require.NoError(t, os.WriteFile(filepath.Join(dir, shard), []byte{1, 2, 3}, 0o644))
				writeIndex(t, dir, map[string]string{"w": shard})
			},
			wantErr: "file is 3 bytes, too short",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			var checkpoint *Checkpoint
			var err error
			require.NotPanics(t, func() { checkpoint, err = OpenDir(dir) })
			if checkpoint != nil {
				checkpoint.Close()
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Contains(t, err.Error(), dir, "error must name the directory or file")
		})
	}
}
