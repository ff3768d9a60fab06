package safetensors

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestBFloat16Rounding(t *testing.T) {
	cases := []struct {
		name  string
		input float32
		want  float32
	}{
		{"one is exact", 1, 1},
		{"below half ulp rounds down", 1 + 0x1p-9, 1},
		{"tie rounds to even down", 1 + 0x1p-8, 1},
		{"tie rounds to even up", 1 + 0x1p-7 + 0x1p-8, 1 + 0x1p-6},
		{"above half ulp rounds up", 1 + 0x1p-8 + 0x1p-20, 1 + 0x1p-7},
		{"negative value", -3.140625, -3.140625},
		{"max float32 rounds to infinity", math.MaxFloat32, float32(math.Inf(1))},
		{"infinity stays infinity", float32(math.Inf(-1)), float32(math.Inf(-1))},
		{"smallest subnormal rounds to zero", math.SmallestNonzeroFloat32, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := BFloat16ToFloat32(BFloat16Bits(tc.input))
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestBFloat16NaNStaysNaN(t *testing.T) {
	// A NaN whose payload sits only in the low 16 bits would become infinity
	// if the conversion just truncated.
	lowPayloadNaN := math.Float32frombits(0x7F800001)
	for _, input := range []float32{float32(math.NaN()), lowPayloadNaN, -lowPayloadNaN} {
		got := BFloat16ToFloat32(BFloat16Bits(input))
		assert.True(t, got != got, "bits %#x became %v", math.Float32bits(input), got)
		assert.Equal(t, math.Signbit(float64(input)), math.Signbit(float64(got)))
	}
}

func TestBFloat16NegativeZero(t *testing.T) {
	negativeZero := float32(math.Copysign(0, -1))
	got := BFloat16ToFloat32(BFloat16Bits(negativeZero))
	assert.Equal(t, uint32(0x80000000), math.Float32bits(got))
}
