package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// MaxHeaderSize is the largest JSON header, in bytes, that Open accepts. It
// bounds the memory that a corrupt length field can make Open allocate. The
// safetensors Python package (version 0.8.0) has the same limit.
const MaxHeaderSize = 100_000_000

// readChunkSize is the number of bytes that ReadFloat32 reads from the file
// per step while it converts a tensor.
const readChunkSize = 1 << 20

// File is an open safetensors file. Open reads only the header, and each read
// method reads the data of one tensor with ReadAt, so a File is safe for
// concurrent reads from several goroutines.
type File struct {
	path      string
	file      *os.File
	dataStart int64
	tensors   []TensorInfo
	byName    map[string]int
	metadata  map[string]string
}

// Open opens the safetensors file at path and validates its header against
// the size of the file. A file whose data buffer is shorter than the header
// declares, for example a truncated download, is rejected here.
func Open(path string) (*File, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: %w", err)
	}
	f, err := openFile(path, file)
	if err != nil {
		file.Close()
		return nil, err
	}
	return f, nil
}

// openFile reads and validates the header of the already opened file.
func openFile(path string, file *os.File) (*File, error) {
	stat, err := file.Stat()
	if err != nil {
		return nil, fmt.Errorf("safetensors file %s: %w", path, err)
	}
	fileSize := stat.Size()
	if !stat.Mode().IsRegular() {
		return nil, fmt.Errorf("safetensors file %s: not a regular file", path)
	}
	if fileSize < 8 {
		return nil, fmt.Errorf("safetensors file %s: file is %d bytes, too short for the 8-byte header length", path, fileSize)
	}

	var lengthBytes [8]byte
	if _, err := file.ReadAt(lengthBytes[:], 0); err != nil {
		return nil, fmt.Errorf("safetensors file %s: reading the header length: %w", path, err)
	}
	headerLength := binary.LittleEndian.Uint64(lengthBytes[:])
	switch {
	case headerLength == 0:
		return nil, fmt.Errorf("safetensors file %s: header length is 0", path)
	case headerLength > MaxHeaderSize:
		return nil, fmt.Errorf("safetensors file %s: header length %d is larger than the maximum of %d bytes", path, headerLength, MaxHeaderSize)
	case headerLength > uint64(fileSize-8):
		return nil, fmt.Errorf("safetensors file %s: header length %d is larger than the %d bytes that follow it in the file", path, headerLength, fileSize-8)
	}

	header := make([]byte, headerLength)
	if _, err := file.ReadAt(header, 8); err != nil {
		return nil, fmt.Errorf("safetensors file %s: reading the %d-byte header: %w", path, headerLength, err)
	}
	dataStart := 8 + int64(headerLength)
	dataSize := fileSize - dataStart
	tensors, metadata, err := ParseHeader(header, dataSize)
	if err != nil {
		if errors.Is(err, errBeyondData) {
			return nil, fmt.Errorf("safetensors file %s: %w: the file is truncated or its header is corrupt", path, err)
		}
		return nil, fmt.Errorf("safetensors file %s: %w", path, err)
	}

	byName := make(map[string]int, len(tensors))
	for i, info := range tensors {
		byName[info.Name] = i
	}
	return &File{
		path:      path,
		file:      file,
		dataStart: dataStart,
		tensors:   tensors,
		byName:    byName,
		metadata:  metadata,
	}, nil
}

// Path returns the path that the file was opened with.
func (f *File) Path() string {
	return f.path
}

// Tensors returns the tensors of the file sorted by name. The caller may
// modify the returned slice but not the Shape slices inside it.
func (f *File) Tensors() []TensorInfo {
	return append([]TensorInfo(nil), f.tensors...)
}

// Info returns the tensor called name, and false if the file has none.
func (f *File) Info(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.tensors[i], true
}

// Metadata returns a copy of the "__metadata__" map of the header, which is
// empty when the header has none.
func (f *File) Metadata() map[string]string {
	metadata := make(map[string]string, len(f.metadata))
	for key, value := range f.metadata {
		metadata[key] = value
	}
	return metadata
}

// Close closes the underlying file.
func (f *File) Close() error {
	return f.file.Close()
}

// lookup returns the tensor called name or an error that names the file.
func (f *File) lookup(name string) (TensorInfo, error) {
	info, ok := f.Info(name)
	if !ok {
		return TensorInfo{}, fmt.Errorf("safetensors file %s: tensor %q not found", f.path, name)
	}
	return info, nil
}

// ReadRaw reads the little-endian bytes of the tensor called name. It
// allocates only that tensor's data.
func (f *File) ReadRaw(name string) ([]byte, error) {
	info, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	data := make([]byte, info.NumBytes())
	if _, err := f.file.ReadAt(data, f.dataStart+info.Begin); err != nil {
		return nil, fmt.Errorf("safetensors file %s: reading tensor %q: %w", f.path, name, err)
	}
	return data, nil
}

// ReadFloat32 reads the tensor called name, of dtype F32, BF16 or F16, and
// converts it to float32. It reads and converts the data in chunks of at
// most 1 MiB, so the only large allocation is the returned slice.
func (f *File) ReadFloat32(name string) ([]float32, error) {
	info, err := f.lookup(name)
	if err != nil {
		return nil, err
	}
	elementSize := dtypeSizes[info.DType]
	if info.DType != "F32" && info.DType != "BF16" && info.DType != "F16" {
		return nil, fmt.Errorf("safetensors file %s: tensor %q has dtype %s, but ReadFloat32 supports only F32, BF16 and F16: use ReadRaw", f.path, name, info.DType)
	}

	values := make([]float32, info.NumElements())
	reader := io.NewSectionReader(f.file, f.dataStart+info.Begin, info.NumBytes())
	chunkElements := readChunkSize / elementSize
	chunk := make([]byte, min(len(values), chunkElements)*elementSize)
	for start := 0; start < len(values); start += chunkElements {
		count := min(chunkElements, len(values)-start)
		raw := chunk[:count*elementSize]
		if _, err := io.ReadFull(reader, raw); err != nil {
			return nil, fmt.Errorf("safetensors file %s: reading tensor %q: %w", f.path, name, err)
		}
		if err := decodeFloat32s(values[start:start+count], raw, info.DType); err != nil {
			return nil, fmt.Errorf("safetensors file %s: tensor %q: %w", f.path, name, err)
		}
	}
	return values, nil
}
