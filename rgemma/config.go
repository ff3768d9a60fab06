package rgemma

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strings"

	"github.com/rgemma-toolkit/rgemma/configs"
)

// BlockType is the kind of temporal-mixing block of a residual layer.
type BlockType string

const (
	// Recurrent is a block with a causal conv1d and an RG-LRU recurrence.
	Recurrent BlockType = "recurrent"
	// Attention is a block with local (sliding-window) multi-query attention.
	Attention BlockType = "attention"
)

// Config holds the model hyperparameters, with Hugging Face `config.json`
// field names. Read it with ParseConfig or LoadConfig and check it with
// Validate.
type Config struct {
	NumHiddenLayers   int         `json:"num_hidden_layers"`
	VocabSize         int         `json:"vocab_size"`
	HiddenSize        int         `json:"hidden_size"`       // D
	IntermediateSize  int         `json:"intermediate_size"` // 2F: gate and up projections each have width F = IntermediateSize/2.
	NumAttentionHeads int         `json:"num_attention_heads"`
	NumKeyValueHeads  int         `json:"num_key_value_heads"` // KV; 0 in the file means NumAttentionHeads.
	LRUWidth          int         `json:"lru_width"`           // L; 0 in the file means HiddenSize.
	AttentionWindow   int         `json:"attention_window_size"`
	Conv1DWidth       int         `json:"conv1d_width"`
	LogitsSoftCap     float64     `json:"logits_soft_cap"` // 0 disables the cap.
	RMSNormEps        float64     `json:"rms_norm_eps"`
	PartialRotary     float64     `json:"partial_rotary_factor"`
	RopeTheta         float64     `json:"rope_theta"`
	BlockTypes        []BlockType `json:"block_types"` // Repeated cyclically over the layers.
	AttentionBias     bool        `json:"attention_bias"`
	HiddenActivation  string      `json:"hidden_activation"`

	WInitVarianceScale      float64 `json:"w_init_variance_scale"`
	FinalWInitVarianceScale float64 `json:"final_w_init_variance_scale"` // Derived: 2 / NumHiddenLayers.

	EmbeddingsScaleBySqrtDim bool `json:"embeddings_scale_by_sqrt_dim"`
	TieWordEmbeddings        bool `json:"tie_word_embeddings"`

	PadTokenID int `json:"pad_token_id"`
	EOSTokenID int `json:"eos_token_id"`
	BOSTokenID int `json:"bos_token_id"`

	ModelType  string   `json:"model_type,omitempty"`
	Arch       []string `json:"architectures,omitempty"`
	TorchDType string   `json:"torch_dtype,omitempty"`
}

// ropeParameters is the nested RoPE form of newer Hugging Face files.
type ropeParameters struct {
	RopeTheta     *float64 `json:"rope_theta"`
	PartialRotary *float64 `json:"partial_rotary_factor"`
	RopeType      string   `json:"rope_type"`
}

// ParseConfig decodes a Hugging Face RecurrentGemma `config.json`, fills the
// defaults of absent fields and validates the result.
func ParseConfig(data []byte) (*Config, error) {
	// Defaults of the Hugging Face RecurrentGemmaConfig, for fields a file may omit.
	cfg := &Config{
		RMSNormEps:               1e-6,
		PartialRotary:            0.5,
		RopeTheta:                10000,
		Conv1DWidth:              4,
		HiddenActivation:         "gelu_pytorch_tanh",
		WInitVarianceScale:       0.01,
		EmbeddingsScaleBySqrtDim: true,
		TieWordEmbeddings:        true,
		PadTokenID:               0,
		EOSTokenID:               1,
		BOSTokenID:               2,
	}
	if err := json.Unmarshal(data, cfg); err != nil {
		return nil, fmt.Errorf("invalid config JSON: %w", err)
	}

	// Fields whose presence matters: null/absent lru_width and num_key_value_heads,
	// and the nested rope_parameters form.
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("invalid config JSON: %w", err)
	}
	if rp, ok := raw["rope_parameters"]; ok && string(rp) != "null" {
		var rope ropeParameters
		if err := json.Unmarshal(rp, &rope); err != nil {
			return nil, fmt.Errorf("invalid config field rope_parameters: %w", err)
		}
		if rope.RopeType != "" && rope.RopeType != "default" {
			return nil, fmt.Errorf("config field rope_parameters.rope_type is %q, but only \"default\" RoPE is supported", rope.RopeType)
		}
		if rope.RopeTheta != nil {
			cfg.RopeTheta = *rope.RopeTheta
		}
		if rope.PartialRotary != nil {
			cfg.PartialRotary = *rope.PartialRotary
		}
	}
	if _, ok := raw["final_w_init_variance_scale"]; !ok && cfg.NumHiddenLayers > 0 {
		cfg.FinalWInitVarianceScale = 2 / float64(cfg.NumHiddenLayers)
	}
	cfg.fillDefaults()

	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// fillDefaults replaces the zero values that mean "same as another field".
func (c *Config) fillDefaults() {
	if c.NumKeyValueHeads == 0 {
		c.NumKeyValueHeads = c.NumAttentionHeads
	}
	if c.LRUWidth == 0 {
		c.LRUWidth = c.HiddenSize
	}
	if c.FinalWInitVarianceScale == 0 && c.NumHiddenLayers > 0 {
		c.FinalWInitVarianceScale = 2 / float64(c.NumHiddenLayers)
	}
}

// LoadConfig reads and validates a `config.json` file, or the `config.json`
// inside a directory.
func LoadConfig(path string) (*Config, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = path + string(os.PathSeparator) + "config.json"
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading model config: %w", err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate checks every field and returns an error naming the first invalid one.
func (c *Config) Validate() error {
	positive := []struct {
		name  string
		value int
	}{
		{"num_hidden_layers", c.NumHiddenLayers},
		{"vocab_size", c.VocabSize},
		{"hidden_size", c.HiddenSize},
		{"intermediate_size", c.IntermediateSize},
		{"num_attention_heads", c.NumAttentionHeads},
		{"num_key_value_heads", c.NumKeyValueHeads},
		{"lru_width", c.LRUWidth},
		{"attention_window_size", c.AttentionWindow},
		{"conv1d_width", c.Conv1DWidth},
	}
	for _, p := range positive {
		if p.value <= 0 {
			return fmt.Errorf("config field %s must be > 0, got %d", p.name, p.value)
		}
	}
	if c.IntermediateSize%2 != 0 {
		return fmt.Errorf("config field intermediate_size must be even (gate and up projections each get half), got %d", c.IntermediateSize)
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("config field num_attention_heads (%d) must divide hidden_size (%d)", c.NumAttentionHeads, c.HiddenSize)
	}
	if c.LRUWidth%c.NumAttentionHeads != 0 {
		return fmt.Errorf("config field num_attention_heads (%d) must divide lru_width (%d)", c.NumAttentionHeads, c.LRUWidth)
	}
	if c.NumAttentionHeads%c.NumKeyValueHeads != 0 {
		return fmt.Errorf("config field num_key_value_heads (%d) must divide num_attention_heads (%d)", c.NumKeyValueHeads, c.NumAttentionHeads)
	}
	if c.PartialRotary <= 0 || c.PartialRotary > 1 {
		return fmt.Errorf("config field partial_rotary_factor must be in (0, 1], got %g", c.PartialRotary)
	}
	if rot := c.RotaryDim(); rot%2 != 0 || float64(rot) != float64(c.HeadDim())*c.PartialRotary {
		return fmt.Errorf("config field partial_rotary_factor (%g) times head_dim (%d) must be an even integer", c.PartialRotary, c.HeadDim())
	}
	if c.RopeTheta <= 0 {
		return fmt.Errorf("config field rope_theta must be > 0, got %g", c.RopeTheta)
	}
	if c.RMSNormEps <= 0 {
		return fmt.Errorf("config field rms_norm_eps must be > 0, got %g", c.RMSNormEps)
	}
	if c.LogitsSoftCap < 0 || math.IsNaN(c.LogitsSoftCap) {
		return fmt.Errorf("config field logits_soft_cap must be >= 0 (0 disables it), got %g", c.LogitsSoftCap)
	}
	if len(c.BlockTypes) == 0 {
		return fmt.Errorf("config field block_types is empty: list \"recurrent\" and/or \"attention\"")
	}
	for i, bt := range c.BlockTypes {
		if bt != Recurrent && bt != Attention {
			return fmt.Errorf("config field block_types[%d] is %q, expected \"recurrent\" or \"attention\"", i, bt)
		}
	}
	if c.HiddenActivation != "gelu_pytorch_tanh" && c.HiddenActivation != "gelu_tanh" {
		return fmt.Errorf("config field hidden_activation is %q, only \"gelu_pytorch_tanh\" is supported", c.HiddenActivation)
	}
	if c.AttentionBias {
		return fmt.Errorf("config field attention_bias is true, but biases on q/k/v projections are not supported")
	}
	for _, id := range []struct {
		name  string
		value int
	}{{"pad_token_id", c.PadTokenID}, {"eos_token_id", c.EOSTokenID}, {"bos_token_id", c.BOSTokenID}} {
		if id.value < 0 || id.value >= c.VocabSize {
			return fmt.Errorf("config field %s (%d) must be in [0, vocab_size=%d)", id.name, id.value, c.VocabSize)
		}
	}
	return nil
}

// HeadDim returns hidden_size / num_attention_heads.
func (c *Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }

// RotaryDim returns the number of leading head dimensions that RoPE rotates.
func (c *Config) RotaryDim() int { return int(float64(c.HeadDim()) * c.PartialRotary) }

// MLPWidth returns F, the width of each of the gate and up projections.
func (c *Config) MLPWidth() int { return c.IntermediateSize / 2 }

// LayerType returns the block type of layer i: block_types repeated cyclically.
func (c *Config) LayerType(i int) BlockType { return c.BlockTypes[i%len(c.BlockTypes)] }

// EmbeddingScale returns the factor applied to the embeddings: sqrt(D) rounded
// to bfloat16 as the original model does (2560 gives 50.5), or 1 when
// embeddings_scale_by_sqrt_dim is false.
func (c *Config) EmbeddingScale() float32 {
	if !c.EmbeddingsScaleBySqrtDim {
		return 1
	}
	return bf16Round(float32(math.Sqrt(float64(c.HiddenSize))))
}

// Summary returns a one-line description of the shape of the model.
func (c *Config) Summary() string {
	var kinds []string
	for _, bt := range c.BlockTypes {
		kinds = append(kinds, string(bt))
	}
	return fmt.Sprintf("layers=%d D=%d F=%d H=%d KV=%d L=%d W=%d K=%d vocab=%d cap=%g pattern=[%s]",
		c.NumHiddenLayers, c.HiddenSize, c.MLPWidth(), c.NumAttentionHeads, c.NumKeyValueHeads,
		c.LRUWidth, c.AttentionWindow, c.Conv1DWidth, c.VocabSize, c.LogitsSoftCap, strings.Join(kinds, ","))
}

// Clone returns a deep copy.
func (c *Config) Clone() *Config {
	out := *c
	out.BlockTypes = append([]BlockType(nil), c.BlockTypes...)
	out.Arch = append([]string(nil), c.Arch...)
	return &out
}

// Marshal encodes the config as an indented Hugging Face `config.json`.
func (c *Config) Marshal() ([]byte, error) {
	out := c.Clone()
	if out.ModelType == "" {
		out.ModelType = "recurrent_gemma"
	}
	if len(out.Arch) == 0 {
		out.Arch = []string{"RecurrentGemmaForCausalLM"}
	}
	return json.MarshalIndent(out, "", "  ")
}

// bf16Round rounds a float32 to the nearest bfloat16 value (ties to even).
func bf16Round(x float32) float32 {
	bits := math.Float32bits(x)
	bits += 0x7FFF + (bits>>16)&1
	return math.Float32frombits(bits &^ 0xFFFF)
}

// Preset returns the named model preset of the configs/models folder, e.g.
// "small", "recurrentgemma-2b", "griffin-7b" or "hawk-7b".
func Preset(name string) (*Config, error) {
	data, err := configs.ModelPreset(name)
	if err != nil {
		return nil, err
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return nil, fmt.Errorf("model preset %q: %w", name, err)
	}
	return cfg, nil
}
