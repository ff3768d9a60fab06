package rgemma

import (
	"fmt"
	"math"
	"strings"
)

// InitKind is the initialisation of a parameter for a from-scratch run.
type InitKind int

const (
	// InitZeros fills the tensor with zeros (biases, norm scales).
	InitZeros InitKind = iota
	// InitNormal draws from a normal distribution with mean 0 and ParamSpec.Std.
	InitNormal
	// InitRecurrentParam draws u ~ U[0.9², 0.999²] and stores
	// log(expm1(-0.5·log u)), so that softplus(param) = -0.5·log(u).
	InitRecurrentParam
)

// ParamSpec describes one parameter tensor of the model.
type ParamSpec struct {
	Name  string    // Hugging Face name, e.g. "model.layers.0.temporal_block.linear_x.weight".
	Shape []int     // Linear weights are [out, in].
	Layer int       // Residual layer index, or -1 for embedding, final norm and LM head.
	Block BlockType // Block type of Layer; empty when Layer is -1.
	Init  InitKind
	Std   float64 // Standard deviation for InitNormal.
}

// Size returns the number of elements.
func (p ParamSpec) Size() int64 {
	n := int64(1)
	for _, d := range p.Shape {
		n *= int64(d)
	}
	return n
}

// ScopeAndName splits the Hugging Face name into the GoMLX context scope and
// variable name: "a.b.weight" becomes ("/a/b", "weight").
func (p ParamSpec) ScopeAndName() (scope, name string) {
	return scopeAndName(p.Name)
}

func scopeAndName(hfName string) (scope, name string) {
	i := strings.LastIndexByte(hfName, '.')
	if i < 0 {
		return "/", hfName
	}
	return "/" + strings.ReplaceAll(hfName[:i], ".", "/"), hfName[i+1:]
}

// HFName converts a GoMLX scope and variable name back to the Hugging Face name.
func HFName(scope, name string) string {
	scope = strings.Trim(scope, "/")
	if scope == "" {
		return name
	}
	return strings.ReplaceAll(scope, "/", ".") + "." + name
}

// LayerPrefix returns "model.layers.{i}".
func LayerPrefix(i int) string { return fmt.Sprintf("model.layers.%d", i) }

// Params lists every parameter of the model in checkpoint order, with the
// initialisation of the original Griffin model. The LM head is included only
// when TieWordEmbeddings is false.
func (c *Config) Params() []ParamSpec {
	D, F, L, V, K := c.HiddenSize, c.MLPWidth(), c.LRUWidth, c.VocabSize, c.Conv1DWidth
	H, KV, hd := c.NumAttentionHeads, c.NumKeyValueHeads, c.HeadDim()
	s, f := c.WInitVarianceScale, c.FinalWInitVarianceScale
	std := func(v float64) float64 { return math.Sqrt(v) }

	var out []ParamSpec
	add := func(layer int, name string, shape []int, kind InitKind, sd float64) {
		p := ParamSpec{Name: name, Shape: shape, Layer: layer, Init: kind, Std: sd}
		if layer >= 0 {
			p.Block = c.LayerType(layer)
		}
		out = append(out, p)
	}
	add(-1, "model.embed_tokens.weight", []int{V, D}, InitNormal, std(1/float64(D)))
	for i := 0; i < c.NumHiddenLayers; i++ {
		pre := LayerPrefix(i)
		add(i, pre+".temporal_pre_norm.weight", []int{D}, InitZeros, 0)
		tb := pre + ".temporal_block."
		switch c.LayerType(i) {
		case Recurrent:
			add(i, tb+"linear_y.weight", []int{L, D}, InitNormal, std(1/float64(D)))
			add(i, tb+"linear_y.bias", []int{L}, InitZeros, 0)
			add(i, tb+"linear_x.weight", []int{L, D}, InitNormal, std(1/float64(D)))
			add(i, tb+"linear_x.bias", []int{L}, InitZeros, 0)
			add(i, tb+"linear_out.weight", []int{D, L}, InitNormal, std(f/float64(L)))
			add(i, tb+"linear_out.bias", []int{D}, InitZeros, 0)
			add(i, tb+"conv_1d.weight", []int{L, 1, K}, InitNormal, std(s/float64(K)))
			add(i, tb+"conv_1d.bias", []int{L}, InitZeros, 0)
			add(i, tb+"rg_lru.recurrent_param", []int{L}, InitRecurrentParam, 0)
			bw := L / H
			add(i, tb+"rg_lru.input_gate_weight", []int{H, bw, bw}, InitNormal, std(s/float64(bw)))
			add(i, tb+"rg_lru.input_gate_bias", []int{H, bw}, InitZeros, 0)
			add(i, tb+"rg_lru.recurrent_gate_weight", []int{H, bw, bw}, InitNormal, std(s/float64(bw)))
			add(i, tb+"rg_lru.recurrent_gate_bias", []int{H, bw}, InitZeros, 0)
		case Attention:
			add(i, tb+"q_proj.weight", []int{H * hd, D}, InitNormal, std(1/float64(D)))
			add(i, tb+"k_proj.weight", []int{KV * hd, D}, InitNormal, std(1/float64(D)))
			add(i, tb+"v_proj.weight", []int{KV * hd, D}, InitNormal, std(1/float64(D)))
			add(i, tb+"o_proj.weight", []int{D, H * hd}, InitNormal, std(f/float64(D)))
			add(i, tb+"o_proj.bias", []int{D}, InitZeros, 0)
		}
		add(i, pre+".channel_pre_norm.weight", []int{D}, InitZeros, 0)
		mb := pre + ".mlp_block."
		add(i, mb+"gate_proj.weight", []int{F, D}, InitNormal, std(1/float64(D)))
		add(i, mb+"gate_proj.bias", []int{F}, InitZeros, 0)
		add(i, mb+"up_proj.weight", []int{F, D}, InitNormal, std(1/float64(D)))
		add(i, mb+"up_proj.bias", []int{F}, InitZeros, 0)
		add(i, mb+"down_proj.weight", []int{D, F}, InitNormal, std(f/float64(F)))
		add(i, mb+"down_proj.bias", []int{D}, InitZeros, 0)
	}
	add(-1, "model.final_norm.weight", []int{D}, InitZeros, 0)
	if !c.TieWordEmbeddings {
		add(-1, "lm_head.weight", []int{V, D}, InitNormal, std(1/float64(D)))
	}
	return out
}

// NumParams returns the total number of parameters.
func (c *Config) NumParams() int64 {
	var n int64
	for _, p := range c.Params() {
		n += p.Size()
	}
	return n
}
