package safetensors

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTripFloat32(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	values := []float32{0, 1, -2.5, 1e-30, 3.4e38, float32(math.Inf(1)), float32(math.NaN())}
	tensors := []Tensor{
		mustFloat32Tensor(t, "b.weight", []int{7}, values, "F32"),
		mustFloat32Tensor(t, "a.scalar", []int{}, []float32{42}, "F32"),
		mustFloat32Tensor(t, "c.empty", []int{0, 3}, nil, "F32"),
	}
	require.NoError(t, WriteFile(path, tensors, nil))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()

	names := []string{}
	for _, info := range f.Tensors() {
		names = append(names, info.Name)
	}
	assert.Equal(t, []string{"a.scalar", "b.weight", "c.empty"}, names)

	got, err := f.ReadFloat32("b.weight")
	require.NoError(t, err)
	require.Len(t, got, len(values))
	for i := range values {
		assert.Equal(t, math.Float32bits(values[i]), math.Float32bits(got[i]), "element %d", i)
	}

	scalar, err := f.ReadFloat32("a.scalar")
	require.NoError(t, err)
	assert.Equal(t, []float32{42}, scalar)

	info, ok := f.Info("a.scalar")
	require.True(t, ok)
	assert.Equal(t, "F32", info.DType)
	assert.Equal(t, []int{}, info.Shape)

	empty, err := f.ReadFloat32("c.empty")
	require.NoError(t, err)
	assert.Empty(t, empty)
	info, ok = f.Info("c.empty")
	require.True(t, ok)
	assert.Equal(t, []int{0, 3}, info.Shape)

	raw, err := f.ReadRaw("b.weight")
	require.NoError(t, err)
	assert.Equal(t, tensors[0].Data, raw)
}

func TestRoundTripBFloat16(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	input := []float32{1, 1 + 0x1p-9, -0.375, float32(math.NaN()), 1 + 0x1p-8 + 0x1p-20}
	want := []float32{1, 1, -0.375, float32(math.NaN()), 1 + 0x1p-7}
	tensor := mustFloat32Tensor(t, "x", []int{5}, input, "BF16")
	assert.Len(t, tensor.Data, 10)
	require.NoError(t, WriteFile(path, []Tensor{tensor}, nil))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()

	info, ok := f.Info("x")
	require.True(t, ok)
	assert.Equal(t, "BF16", info.DType)
	assert.Equal(t, int64(10), info.NumBytes())

	got, err := f.ReadFloat32("x")
	require.NoError(t, err)
	require.Len(t, got, len(want))
	for i := range want {
		if want[i] != want[i] {
			assert.True(t, got[i] != got[i], "element %d: want NaN, got %v", i, got[i])
			continue
		}
		assert.Equal(t, want[i], got[i], "element %d", i)
	}
}

func TestRoundTripFloat16(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	input := []float32{1, -0.5, 65504, 1.0 / 3, float32(math.NaN()), 1e6}
	require.NoError(t, WriteFile(path, []Tensor{mustFloat32Tensor(t, "h", []int{2, 3}, input, "F16")}, nil))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()

	got, err := f.ReadFloat32("h")
	require.NoError(t, err)
	assert.Equal(t, []float32{1, -0.5, 65504}, got[:3])
	assert.InDelta(t, 1.0/3, got[3], 1e-3)
	assert.NotEqual(t, float32(1.0/3), got[3], "F16 must lose precision")
	assert.True(t, got[4] != got[4], "NaN must stay NaN, got %v", got[4])
	assert.Equal(t, float32(math.Inf(1)), got[5], "values beyond the F16 range must become infinity")
}

func TestRoundTripMetadata(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	metadata := map[string]string{"format": "pt", "note": "ünïcode \"quoted\" <tag>", "empty": ""}
	require.NoError(t, WriteFile(path, []Tensor{mustFloat32Tensor(t, "w", []int{1}, []float32{1}, "F32")}, metadata))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	assert.Equal(t, metadata, f.Metadata())
}

func TestOpenWithoutMetadata(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, WriteFile(path, []Tensor{mustFloat32Tensor(t, "w", []int{1}, []float32{1}, "F32")}, nil))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	assert.Empty(t, f.Metadata())
}

func TestReadFloat32AcrossChunks(t *testing.T) {
	// Both tensors are larger than readChunkSize and not a multiple of it,
	// so the conversion crosses several chunk boundaries and ends in a short one.
	path := filepath.Join(t.TempDir(), "model.safetensors")
	bf16Values := sequence(readChunkSize/2*2+123, 0.25)
	f32Values := sequence(readChunkSize/4*2+7, 0.001)
	require.NoError(t, WriteFile(path, []Tensor{
		mustFloat32Tensor(t, "big.bf16", []int{len(bf16Values)}, bf16Values, "BF16"),
		mustFloat32Tensor(t, "big.f32", []int{len(f32Values)}, f32Values, "F32"),
	}, nil))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()

	got, err := f.ReadFloat32("big.bf16")
	require.NoError(t, err)
	assert.Equal(t, bf16Values, got)

	got, err = f.ReadFloat32("big.f32")
	require.NoError(t, err)
	assert.Equal(t, f32Values, got)
}

func TestWriteFileLayout(t *testing.T) {
	// A BF16 tensor with an odd element count placed before an F32 tensor
	// would misalign the F32 data, so the writer puts larger elements first.
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, WriteFile(path, []Tensor{
		mustFloat32Tensor(t, "a.bf16", []int{3}, []float32{1, 2, 3}, "BF16"),
		mustFloat32Tensor(t, "b.f32", []int{2}, []float32{4, 5}, "F32"),
		{Name: "c.i64", DType: "I64", Shape: []int{1}, Data: make([]byte, 8)},
	}, nil))

	content, err := os.ReadFile(path)
	require.NoError(t, err)
	headerLength := binary.LittleEndian.Uint64(content)
	assert.Zero(t, headerLength%8, "header length %d is not a multiple of 8", headerLength)
	assert.Equal(t, byte(' '), content[8+headerLength-1], "header must be padded with spaces")

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	end := int64(0)
	for _, name := range []string{"c.i64", "b.f32", "a.bf16"} {
		info, ok := f.Info(name)
		require.True(t, ok, name)
		size, _ := DTypeSize(info.DType)
		assert.Equal(t, end, info.Begin, "%s must follow the previous tensor without a gap", name)
		assert.Zero(t, info.Begin%int64(size), "%s starts at %d", name, info.Begin)
		end = info.End
	}
	assert.Equal(t, int64(len(content))-8-int64(headerLength), end, "data must end with the last tensor")
}

func TestReadErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	require.NoError(t, WriteFile(path, []Tensor{
		{Name: "ids", DType: "I32", Shape: []int{2}, Data: make([]byte, 8)},
	}, nil))
	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()

	_, err = f.ReadFloat32("ids")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `tensor "ids" has dtype I32`)
	assert.Contains(t, err.Error(), "use ReadRaw")

	_, err = f.ReadRaw("missing")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `tensor "missing" not found`)
	assert.Contains(t, err.Error(), path)

	_, ok := f.Info("missing")
	assert.False(t, ok)
}

func TestOpenMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.safetensors")
	_, err := Open(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestOpenBadInput(t *testing.T) {
	validData := make([]byte, 16)
	validHeader := `{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`
	hugeLength := make([]byte, 16)
	binary.LittleEndian.PutUint64(hugeLength, MaxHeaderSize+1)
	truncated := rawFile(validHeader, validData)
	truncated = truncated[:len(truncated)-3]

	cases := []struct {
		name    string
		content []byte
		wantErr string
	}{
		{"empty file", nil, "file is 0 bytes, too short for the 8-byte header length"},
		{"five bytes", []byte{1, 2, 3, 4, 5}, "file is 5 bytes, too short"},
		{"header length zero", make([]byte, 8), "header length is 0"},
		{"header length larger than file", append(binary.LittleEndian.AppendUint64(nil, 1000), "{}"...), "header length 1000 is larger than the 2 bytes that follow it"},
		{"header length above maximum", hugeLength, "larger than the maximum of 100000000 bytes"},
		{"header not JSON", rawFile("hello world", nil), "header is not a JSON object"},
		{"header broken JSON", rawFile(`{"w": {`, nil), "header is not valid JSON"},
		{"header JSON array", rawFile(`[1, 2, 3]`, nil), "header is not a JSON object"},
		{"header JSON null", rawFile(`null`, nil), "header is not a JSON object"},
		{"trailing data after object", rawFile(`{} {}`, nil), "unexpected data after the top-level object"},
		{"invalid UTF-8", rawFile("{\"\xff\":{}}", nil), "header is not valid UTF-8"},
		{"duplicate tensor", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, make([]byte, 2)), `header contains the key "w" more than once`},
		{"entry not an object", rawFile(`{"w":[1]}`, nil), `tensor "w": entry must be a JSON object`},
		{"missing dtype", rawFile(`{"w":{"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": missing dtype`},
		{"missing shape", rawFile(`{"w":{"dtype":"F32","data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": missing shape`},
		{"missing data_offsets", rawFile(`{"w":{"dtype":"F32","shape":[1]}}`, make([]byte, 4)), `tensor "w": missing data_offsets`},
		{"unknown dtype", rawFile(`{"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": unknown dtype "F33"`},
		{"dtype not a string", rawFile(`{"w":{"dtype":32,"shape":[1],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": invalid dtype 32`},
		{"negative dimension", rawFile(`{"w":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}}`, validData), `tensor "w": shape [2 -2] has invalid dimension -2 at axis 1`},
		{"fractional dimension", rawFile(`{"w":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, make([]byte, 4)), `tensor "w": invalid shape [1.5]`},
		{"byte length mismatch", rawFile(`{"model.x.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`, validData), `tensor "model.x.weight": data_offsets [0, 12] give 12 bytes but dtype F32 × shape [2 2] needs 16`},
		{"shape overflow", rawFile(`{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, nil), `tensor "w": dtype F64 × shape [4294967296 4294967296] overflows int64 bytes`},
		{"three offsets", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, make([]byte, 2)), `tensor "w": data_offsets [0 1 2] must have exactly 2 elements`},
		{"begin after end", rawFile(`{"w":{"dtype":"U8","shape":[0],"data_offsets":[4,2]}}`, make([]byte, 4)), `tensor "w": invalid data_offsets [4, 2]: need 0 <= begin <= end`},
		{"negative begin", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}}`, make([]byte, 4)), `tensor "w": invalid data_offsets [-1, 0]`},
		{"offsets beyond data", rawFile(`{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[4,20]}}`, validData), `tensor "w": data_offsets [4, 20] end beyond the data buffer of 16 bytes`},
		{"overlapping tensors", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, validData), `tensor "b": data_offsets [4, 12] overlap tensor "a" at [0, 8]`},
		{"truncated data section", truncated, `data_offsets [0, 16] end beyond the data buffer of 13 bytes: the file is truncated`},
		{"metadata not strings", rawFile(`{"__metadata__":{"n":1}}`, nil), "__metadata__ must be a JSON object of string values"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTempFile(t, "bad.safetensors", tc.content)
			var f *File
			var err error
			require.NotPanics(t, func() { f, err = Open(path) })
			if f != nil {
				f.Close()
			}
			require.Error(t, err)
			assert.Nil(t, f)
			assert.Contains(t, err.Error(), tc.wantErr)
			assert.Contains(t, err.Error(), path, "error must name the file")
		})
	}
}

func TestOpenAcceptsEdgeCases(t *testing.T) {
	cases := []struct {
		name    string
		content []byte
		tensors []string
	}{
		{"empty header object", rawFile(`{}`, nil), nil},
		{"space padding after header", rawFile(`{"w":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}     `, []byte{1, 2}), []string{"w"}},
		{"gap between tensors", rawFile(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"b":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}}`, make([]byte, 4)), []string{"a", "b"}},
		{"empty tensor inside another", rawFile(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`, make([]byte, 8)), []string{"a", "b"}},
		{"metadata null", rawFile(`{"__metadata__":null}`, nil), nil},
		{"unknown entry field", rawFile(`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"extra":true}}`, []byte{7}), []string{"w"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Open(writeTempFile(t, "ok.safetensors", tc.content))
			require.NoError(t, err)
			defer f.Close()
			var names []string
			for _, info := range f.Tensors() {
				names = append(names, info.Name)
			}
			assert.Equal(t, tc.tensors, names)
		})
	}
}

func TestWriteFileRejectsBadTensors(t *testing.T) {
	cases := []struct {
		name    string
		tensor  Tensor
		wantErr string
	}{
		{"unknown dtype", Tensor{Name: "w", DType: "F12", Shape: []int{1}, Data: []byte{0}}, `tensor "w": unknown dtype "F12"`},
		{"negative dimension", Tensor{Name: "w", DType: "U8", Shape: []int{-1}}, `tensor "w": shape [-1] has invalid dimension -1`},
		{"data size mismatch", Tensor{Name: "w", DType: "F32", Shape: []int{2}, Data: make([]byte, 7)}, `tensor "w": data has 7 bytes but dtype F32 × shape [2] needs 8`},
		{"reserved name", Tensor{Name: "__metadata__", DType: "U8", Shape: []int{1}, Data: []byte{0}}, `tensor name "__metadata__" is reserved`},
		{"invalid UTF-8 name", Tensor{Name: "w\xff", DType: "U8", Shape: []int{1}, Data: []byte{0}}, "is not valid UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "model.safetensors")
			err := WriteFile(path, []Tensor{tc.tensor}, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.wantErr)
			entries, readErr := os.ReadDir(dir)
			require.NoError(t, readErr)
			assert.Empty(t, entries, "a failed write must leave no file")
		})
	}
}

func TestWriteFileRejectsDuplicateNames(t *testing.T) {
	tensor := mustFloat32Tensor(t, "w", []int{1}, []float32{1}, "F32")
	err := WriteFile(filepath.Join(t.TempDir(), "model.safetensors"), []Tensor{tensor, tensor}, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `tensor "w" appears more than once`)
}

func TestWriteFileMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent", "model.safetensors")
	err := WriteFile(path, nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), path)
	_, statErr := os.Stat(path)
	assert.ErrorIs(t, statErr, os.ErrNotExist)
}

func TestWriteFileReplacesExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.safetensors")
	require.NoError(t, WriteFile(path, []Tensor{mustFloat32Tensor(t, "old", []int{1}, []float32{1}, "F32")}, nil))
	require.NoError(t, WriteFile(path, []Tensor{mustFloat32Tensor(t, "new", []int{1}, []float32{2}, "F32")}, nil))

	f, err := Open(path)
	require.NoError(t, err)
	defer f.Close()
	_, hasOld := f.Info("old")
	assert.False(t, hasOld)
	got, err := f.ReadFloat32("new")
	require.NoError(t, err)
	assert.Equal(t, []float32{2}, got)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file may remain")
}

func TestFloat32TensorErrors(t *testing.T) {
	_, err := Float32Tensor("w", []int{2, 2}, []float32{1, 2, 3}, "F32")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `tensor "w": shape [2 2] needs 4 values, got 3`)

	_, err = Float32Tensor("w", []int{1}, []float32{1}, "I32")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `dtype "I32" cannot be encoded from float32`)

	_, err = Float32Tensor("w", []int{-1}, nil, "F32")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "invalid dimension -1")
}
