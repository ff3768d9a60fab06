package rgemma

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rgemma-toolkit/rgemma/configs"
)

func TestPresetsParse(t *testing.T) {
	names := configs.ModelPresetNames()
	require.Contains(t, names, "recurrentgemma-2b")
	for _, name := range names {
		cfg, err := Preset(name)
		require.NoError(t, err, name)
		t.Logf("%s: %s, %.3fB parameters", name, cfg.Summary(), float64(cfg.NumParams())/1e9)
	}
}

func TestPresetShapes(t *testing.T) {
	cfg, err := Preset("recurrentgemma-2b")
	require.NoError(t, err)
	// The published RecurrentGemma-2B has 2.68 billion parameters (tied
	// embedding of 256000 × 2560 included).
	require.InDelta(t, 2.68e9, float64(cfg.NumParams()), 0.01e9)
	require.Equal(t, 7680, cfg.MLPWidth())
	require.Equal(t, 128, cfg.RotaryDim())

	hawk, err := Preset("hawk-7b")
	require.NoError(t, err)
	for i := 0; i < hawk.NumHiddenLayers; i++ {
		require.Equal(t, Recurrent, hawk.LayerType(i))
	}
	_, err = Preset("nope")
	require.ErrorContains(t, err, "unknown model preset \"nope\"")
}
