package rgemma

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rgemma-toolkit/rgemma/internal/golden"
)

func tinyConfigJSON(t *testing.T) string {
	data, err := os.ReadFile(filepath.Join(golden.TinyDir(), "config.json"))
	require.NoError(t, err)
	return string(data)
}

func TestConfigErrorsNameTheField(t *testing.T) {
	base := tinyConfigJSON(t)
	cases := []struct {
		name, from, to, wantErr string
	}{
		{"heads do not divide width", `"num_attention_heads": 4`, `"num_attention_heads": 5`, "num_attention_heads (5) must divide hidden_size (64)"},
		{"kv heads do not divide heads", `"num_key_value_heads": 1`, `"num_key_value_heads": 3`, "num_key_value_heads (3) must divide num_attention_heads (4)"},
		{"lru width not divisible", `"lru_width": 64`, `"lru_width": 66`, "must divide lru_width (66)"},
		{"unknown block type", `"attention"
  ]`, `"mamba"
  ]`, `block_types[2] is "mamba"`},
		{"zero layers", `"num_hidden_layers": 3`, `"num_hidden_layers": 0`, "num_hidden_layers must be > 0"},
		{"negative window", `"attention_window_size": 8`, `"attention_window_size": -1`, "attention_window_size must be > 0"},
		{"odd intermediate size", `"intermediate_size": 192`, `"intermediate_size": 191`, "intermediate_size must be even"},
		{"bad rope type", `"rope_theta": 10000.0`, `"rope_parameters": {"rope_type": "yarn"}`, "rope_type"},
		{"not JSON", `{`, `[`, "invalid config JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			modified := strings.Replace(base, tc.from, tc.to, 1)
			require.NotEqual(t, base, modified, "the case must change the config")
			_, err := ParseConfig([]byte(modified))
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

func TestConfigRopeParametersForm(t *testing.T) {
	base := tinyConfigJSON(t)
	nested := strings.Replace(base, `"rope_theta": 10000.0`, `"rope_parameters": {"rope_theta": 500.0, "partial_rotary_factor": 0.25, "rope_type": "default"}`, 1)
	nested = strings.Replace(nested, `"partial_rotary_factor": 0.5,`, ``, 1)
	cfg, err := ParseConfig([]byte(nested))
	require.NoError(t, err)
	require.Equal(t, 500.0, cfg.RopeTheta)
	require.Equal(t, 0.25, cfg.PartialRotary)
	require.Equal(t, 4, cfg.RotaryDim())
}

func TestConfigDefaults(t *testing.T) {
	cfg, err := ParseConfig([]byte(`{"num_hidden_layers": 4, "vocab_size": 300, "hidden_size": 32,
		"intermediate_size": 64, "num_attention_heads": 2, "attention_window_size": 16,
		"block_types": ["recurrent", "attention"], "lru_width": null}`))
	require.NoError(t, err)
	require.Equal(t, 2, cfg.NumKeyValueHeads, "absent num_key_value_heads means num_attention_heads")
	require.Equal(t, 32, cfg.LRUWidth, "null lru_width means hidden_size")
	require.Equal(t, 0.5, cfg.FinalWInitVarianceScale, "2 / num_hidden_layers")
	require.Equal(t, Attention, cfg.LayerType(3))
	require.Equal(t, Recurrent, cfg.LayerType(2))
}

func TestEmbeddingScaleRoundsToBF16(t *testing.T) {
	cfg := &Config{HiddenSize: 2560, EmbeddingsScaleBySqrtDim: true}
	require.Equal(t, float32(50.5), cfg.EmbeddingScale())
	cfg.HiddenSize = 64
	require.Equal(t, float32(8), cfg.EmbeddingScale())
	cfg.EmbeddingsScaleBySqrtDim = false
	require.Equal(t, float32(1), cfg.EmbeddingScale())
}

func TestForwardRejectsBadTokens(t *testing.T) {
	m, _ := loadTiny(t)
	cases := []struct {
		name    string
		in      Inputs
		wantErr string
	}{
		{"id equal to vocab", Inputs{IDs: [][]int32{{5, 256}}, Positions: [][]int32{{0, 1}}}, "token id 256 at row 0, index 1 is out of range [0, vocab_size=256)"},
		{"negative id", Inputs{IDs: [][]int32{{-1}}, Positions: [][]int32{{0}}}, "token id -1"},
		{"ragged rows", Inputs{IDs: [][]int32{{5, 6}, {7}}, Positions: [][]int32{{0, 1}, {0}}}, "row 1 has 1 ids"},
		{"empty", Inputs{}, "empty input"},
		{"negative position", Inputs{IDs: [][]int32{{5}}, Positions: [][]int32{{-2}}}, "position -2"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Forward(tc.in)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.wantErr)
		})
	}
}

// copyTiny copies the tiny checkpoint to a temporary folder, with
// model.safetensors replaced by weights when weights is not nil.
func copyTiny(t *testing.T, weights []byte) string {
	dir := t.TempDir()
	for _, name := range []string{"config.json", "model.safetensors"} {
		data, err := os.ReadFile(filepath.Join(golden.TinyDir(), name))
		require.NoError(t, err)
		if name == "model.safetensors" && weights != nil {
			data = weights
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
	}
	return dir
}

func TestLoadModelRejectsBadCheckpoints(t *testing.T) {
	backend := backendForTest(t)
	good, err := os.ReadFile(filepath.Join(golden.TinyDir(), "model.safetensors"))
	require.NoError(t, err)

	t.Run("truncated", func(t *testing.T) {
		_, err := LoadModel(backend, copyTiny(t, good[:len(good)/2]))
		require.Error(t, err)
		require.Contains(t, err.Error(), "model.safetensors")
	})
	t.Run("garbage", func(t *testing.T) {
		_, err := LoadModel(backend, copyTiny(t, []byte("this is not a safetensors file at all")))
		require.Error(t, err)
		require.Contains(t, err.Error(), "model.safetensors")
	})
	t.Run("missing directory", func(t *testing.T) {
		_, err := LoadModel(backend, filepath.Join(t.TempDir(), "nope"))
		require.Error(t, err)
		require.Contains(t, err.Error(), "config.json")
	})
	t.Run("wrong shape and missing tensor", func(t *testing.T) {
		// A config with a wider MLP than the weights: every MLP tensor has the
		// wrong shape.
		dir := copyTiny(t, nil)
		cfgData := strings.Replace(tinyConfigJSON(t), `"intermediate_size": 192`, `"intermediate_size": 200`, 1)
		cfgData = strings.Replace(cfgData, `"tie_word_embeddings": true`, `"tie_word_embeddings": false`, 1)
		require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfgData), 0o644))
		_, err := LoadModel(backend, dir)
		require.Error(t, err)
		require.Contains(t, err.Error(), `tensor "model.layers.0.mlp_block.up_proj.weight" has shape [96 64], expected [100 64]`)
		require.Contains(t, err.Error(), `missing tensor "lm_head.weight"`)
	})
}

func TestSaveAndLoadRoundTrip(t *testing.T) {
	m, g := loadTiny(t)
	in := goldenInputs(t, g, "input_ids", "position_ids")
	want, err := m.Forward(in)
	require.NoError(t, err)

	for _, opts := range []SaveOptions{{DType: "F32"}, {DType: "F32", MaxShardBytes: 100_000}, {DType: "BF16"}} {
		dir := filepath.Join(t.TempDir(), "saved")
		require.NoError(t, m.Save(dir, opts))
		loaded, err := LoadModel(m.Backend, dir)
		require.NoError(t, err)
		got, err := loaded.Forward(in)
		require.NoError(t, err)
		tol := 1e-6
		if opts.DType == "BF16" {
			tol = 0.5 // bfloat16 keeps 8 bits of mantissa: only a coarse match.
		}
		requireClose(t, "logits after save/load "+opts.DType, flat(t, want.Logits), flat(t, got.Logits), tol, 0)
		if opts.MaxShardBytes > 0 {
			_, err := os.Stat(filepath.Join(dir, "model.safetensors.index.json"))
			require.NoError(t, err, "a small shard limit must write an index")
		}
	}
}
