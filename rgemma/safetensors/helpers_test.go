package safetensors

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// rawFile builds safetensors bytes from a header and a data buffer, without
// any validation, so tests can build invalid files.
func rawFile(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

// writeTempFile writes content to a new file in a test directory and returns its path.
func writeTempFile(t *testing.T, name string, content []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, content, 0o644))
	return path
}

// mustFloat32Tensor calls Float32Tensor and fails the test on an error.
func mustFloat32Tensor(t *testing.T, name string, shape []int, values []float32, dtype string) Tensor {
	t.Helper()
	tensor, err := Float32Tensor(name, shape, values, dtype)
	require.NoError(t, err)
	return tensor
}

// sequence returns n float32 values (i%200-100)×scale, which are exact in
// bfloat16 when scale is a power of two.
func sequence(n int, scale float32) []float32 {
	values := make([]float32, n)
	for i := range values {
		values[i] = float32(i%200-100) * scale
	}
	return values
}
