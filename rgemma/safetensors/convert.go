package safetensors

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/x448/float16"
)

// BFloat16Bits converts f to bfloat16, the upper 16 bits of a float32, with
// round-to-nearest-even. NaN stays NaN with its sign, and values beyond the
// bfloat16 range round to infinity.
func BFloat16Bits(f float32) uint16 {
	bits := math.Float32bits(f)
	if f != f {
		// Truncating could clear every mantissa bit and turn NaN into
		// infinity, so set the quiet bit instead.
		return uint16(bits>>16) | 0x0040
	}
	// Adding 0x7FFF rounds up when the dropped half is above 0x8000, and the
	// lowest kept bit breaks the tie at exactly 0x8000 towards even.
	rounding := uint32(0x7FFF) + (bits>>16)&1
	return uint16((bits + rounding) >> 16)
}

// BFloat16ToFloat32 converts bfloat16 bits to float32 exactly.
func BFloat16ToFloat32(b uint16) float32 {
	return math.Float32frombits(uint32(b) << 16)
}

// decodeFloat32s converts the little-endian elements of src, of the float
// dtype F32, BF16 or F16, into dst. The caller guarantees that
// len(src) == len(dst) × the dtype size.
func decodeFloat32s(dst []float32, src []byte, dtype string) error {
	switch dtype {
	case "F32":
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
		}
	case "BF16":
		for i := range dst {
			dst[i] = BFloat16ToFloat32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case "F16":
		for i := range dst {
			dst[i] = float16.Frombits(binary.LittleEndian.Uint16(src[2*i:])).Float32()
		}
	default:
		return fmt.Errorf("dtype %s cannot be converted to float32: supported dtypes are F32, BF16 and F16", dtype)
	}
	return nil
}

// encodeFloat32s converts values to little-endian bytes of dtype F32, BF16 or F16.
// BF16 and F16 round to nearest even.
func encodeFloat32s(values []float32, dtype string) ([]byte, error) {
	switch dtype {
	case "F32":
		data := make([]byte, 4*len(values))
		for i, value := range values {
			binary.LittleEndian.PutUint32(data[4*i:], math.Float32bits(value))
		}
		return data, nil
	case "BF16":
		data := make([]byte, 2*len(values))
		for i, value := range values {
			binary.LittleEndian.PutUint16(data[2*i:], BFloat16Bits(value))
		}
		return data, nil
	case "F16":
		data := make([]byte, 2*len(values))
		for i, value := range values {
			binary.LittleEndian.PutUint16(data[2*i:], float16.Fromfloat32(value).Bits())
		}
		return data, nil
	default:
		return nil, fmt.Errorf("dtype %q cannot be encoded from float32: supported dtypes are F32, BF16 and F16", dtype)
	}
}
