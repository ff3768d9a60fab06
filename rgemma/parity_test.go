package rgemma

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParityForward(t *testing.T) {
	m, g := loadTiny(t)
	in := goldenInputs(t, g, "input_ids", "position_ids")
	res, err := m.Forward(in)
	require.NoError(t, err)

	want, shape, err := g.Float32("logits")
	require.NoError(t, err)
	require.Equal(t, shape, res.Logits.Shape().Dimensions)
	requireClose(t, "logits", want, flat(t, res.Logits), 1e-4, 0)

	require.Len(t, res.Hidden, m.Config.NumHiddenLayers)
	for i, h := range res.Hidden {
		name := fmt.Sprintf("hidden_states.%d", i)
		want, _, err := g.Float32(name)
		require.NoError(t, err)
		requireClose(t, name, want, flat(t, h), 1e-4, 0)
	}
}
