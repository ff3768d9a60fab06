// Package golden reads the reference outputs of the original Griffin
// implementation that the parity tests compare against.
package golden

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"

	"github.com/rgemma-toolkit/rgemma/rgemma/safetensors"
)

// TinyDir returns the folder of the `tiny` reference checkpoint and its
// golden outputs, inside this repository.
func TinyDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "rgemma", "testdata", "tiny")
}

// Data holds the tensors of a golden.safetensors file.
type Data struct {
	file *safetensors.File
}

// Open opens golden.safetensors in dir.
func Open(dir string) (*Data, error) {
	f, err := safetensors.Open(filepath.Join(dir, "golden.safetensors"))
	if err != nil {
		return nil, err
	}
	return &Data{file: f}, nil
}

// Close releases the file.
func (d *Data) Close() error { return d.file.Close() }

// Names lists the tensor names.
func (d *Data) Names() []string {
	var out []string
	for _, t := range d.file.Tensors() {
		out = append(out, t.Name)
	}
	return out
}

// Float32 returns a floating-point tensor and its shape.
func (d *Data) Float32(name string) ([]float32, []int, error) {
	info, ok := d.file.Info(name)
	if !ok {
		return nil, nil, fmt.Errorf("golden tensor %q not found", name)
	}
	values, err := d.file.ReadFloat32(name)
	return values, info.Shape, err
}

// Int32 returns an I64 or I32 tensor converted to int32, and its shape.
func (d *Data) Int32(name string) ([]int32, []int, error) {
	info, ok := d.file.Info(name)
	if !ok {
		return nil, nil, fmt.Errorf("golden tensor %q not found", name)
	}
	raw, err := d.file.ReadRaw(name)
	if err != nil {
		return nil, nil, err
	}
	var out []int32
	switch info.DType {
	case "I64":
		for i := 0; i+8 <= len(raw); i += 8 {
			out = append(out, int32(int64(binary.LittleEndian.Uint64(raw[i:]))))
		}
	case "I32":
		for i := 0; i+4 <= len(raw); i += 4 {
			out = append(out, int32(binary.LittleEndian.Uint32(raw[i:])))
		}
	default:
		return nil, nil, fmt.Errorf("golden tensor %q has dtype %s, expected I64 or I32", name, info.DType)
	}
	return out, info.Shape, nil
}

// Rows splits a flat [B,T] tensor into B rows.
func Rows(flat []int32, shape []int) [][]int32 {
	rows := make([][]int32, shape[0])
	for b := range rows {
		rows[b] = flat[b*shape[1] : (b+1)*shape[1]]
	}
	return rows
}
