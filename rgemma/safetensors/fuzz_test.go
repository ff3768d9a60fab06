package safetensors

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// fuzzSeedHeaders are valid and invalid headers for the fuzz corpus.
var fuzzSeedHeaders = []string{
	`{}`,
	`{"__metadata__":{"format":"pt"}}`,
	`{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}`,
	`{"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"F16","shape":[1],"data_offsets":[6,8]}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}`,
	`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`,
	`{"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}`,
	`{"w":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`,
	`{"w":{"dtype":"I8","shape":[-1],"data_offsets":[0,1]}}`,
	`{"w":{"dtype":"X","shape":[1],"data_offsets":[0,1]}}`,
	`{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`,
	`[1,2]`,
	`{"w":`,
	"{\"\xff\":1}",
}

// checkParsedHeader fails the test unless infos satisfy every guarantee of
// ParseHeader for a data buffer of dataSize bytes.
func checkParsedHeader(t *testing.T, infos []TensorInfo, dataSize int64) {
	t.Helper()
	for i, info := range infos {
		if i > 0 && infos[i-1].Name >= info.Name {
			t.Fatalf("tensors not sorted by unique name: %q then %q", infos[i-1].Name, info.Name)
		}
		if info.Begin < 0 || info.Begin > info.End || info.End > dataSize {
			t.Fatalf("tensor %q: offsets [%d, %d] outside data of %d bytes", info.Name, info.Begin, info.End, dataSize)
		}
		elementSize, ok := DTypeSize(info.DType)
		if !ok {
			t.Fatalf("tensor %q: unknown dtype %q accepted", info.Name, info.DType)
		}
		dims := make([]int64, len(info.Shape))
		for axis, dim := range info.Shape {
			if dim < 0 {
				t.Fatalf("tensor %q: negative dimension %d accepted", info.Name, dim)
			}
			dims[axis] = int64(dim)
		}
		needed, ok := byteSize(dims, elementSize)
		if !ok || needed != info.NumBytes() {
			t.Fatalf("tensor %q: %d bytes do not match dtype %s × shape %v", info.Name, info.NumBytes(), info.DType, info.Shape)
		}
	}

	nonEmpty := make([]TensorInfo, 0, len(infos))
	for _, info := range infos {
		if info.NumBytes() > 0 {
			nonEmpty = append(nonEmpty, info)
		}
	}
	sort.Slice(nonEmpty, func(i, j int) bool { return nonEmpty[i].Begin < nonEmpty[j].Begin })
	for i := 1; i < len(nonEmpty); i++ {
		if nonEmpty[i].Begin < nonEmpty[i-1].End {
			t.Fatalf("tensors %q and %q overlap", nonEmpty[i-1].Name, nonEmpty[i].Name)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, header := range fuzzSeedHeaders {
		f.Add([]byte(header), int64(16))
		f.Add([]byte(header), int64(0))
	}
	f.Fuzz(func(t *testing.T, header []byte, dataSize int64) {
		infos, _, err := ParseHeader(header, dataSize)
		if err != nil {
			return
		}
		checkParsedHeader(t, infos, dataSize)
	})
}

func FuzzOpen(f *testing.F) {
	for _, header := range fuzzSeedHeaders {
		f.Add(rawFile(header, make([]byte, 16)))
	}
	f.Add([]byte{})
	f.Add([]byte{1, 2, 3, 4, 5})
	// Each fuzz worker process calls the fuzz function sequentially, so the
	// calls can reuse one file instead of creating a directory each time.
	path := filepath.Join(f.TempDir(), "fuzz.safetensors")
	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(path, content, 0o644); err != nil {
			t.Fatal(err)
		}
		file, err := Open(path)
		if err != nil {
			return
		}
		defer file.Close()

		dataSize := int64(len(content)) - file.dataStart
		checkParsedHeader(t, file.Tensors(), dataSize)
		for _, info := range file.Tensors() {
			raw, err := file.ReadRaw(info.Name)
			if err != nil {
				t.Fatalf("ReadRaw(%q): %v", info.Name, err)
			}
			if int64(len(raw)) != info.NumBytes() {
				t.Fatalf("ReadRaw(%q) returned %d bytes, want %d", info.Name, len(raw), info.NumBytes())
			}
			values, err := file.ReadFloat32(info.Name)
			isFloat := info.DType == "F32" || info.DType == "BF16" || info.DType == "F16"
			if isFloat != (err == nil) {
				t.Fatalf("ReadFloat32(%q) of dtype %s: error %v", info.Name, info.DType, err)
			}
			if isFloat && int64(len(values)) != info.NumElements() {
				t.Fatalf("ReadFloat32(%q) returned %d values, want %d", info.Name, len(values), info.NumElements())
			}
		}
	})
}
