package rgemma

import "strings"

// ParamGroups counts the parameters by role: "embedding", "lm_head",
// "final_norm", "recurrent" (temporal blocks of recurrent layers), "attention"
// (temporal blocks of attention layers), "mlp" and "norms" (pre-norms).
func (c *Config) ParamGroups() map[string]int64 {
	out := map[string]int64{}
	for _, p := range c.Params() {
		var group string
		switch {
		case p.Name == "model.embed_tokens.weight":
			group = "embedding"
		case p.Name == "lm_head.weight":
			group = "lm_head"
		case p.Name == "model.final_norm.weight":
			group = "final_norm"
		case strings.Contains(p.Name, ".mlp_block."):
			group = "mlp"
		case strings.Contains(p.Name, "_pre_norm."):
			group = "norms"
		default:
			group = string(p.Block)
		}
		out[group] += p.Size()
	}
	return out
}

// DecodeStateBytes returns the size in bytes of the float32 decoding state of
// one sequence: per recurrent layer the RG-LRU state [L] and the conv state
// [K-1, L]; per attention layer the key and value ring buffers [W, KV, hd].
// It does not depend on the sequence length.
func (c *Config) DecodeStateBytes() int64 {
	var n int64
	for i := 0; i < c.NumHiddenLayers; i++ {
		switch c.LayerType(i) {
		case Recurrent:
			n += int64(c.LRUWidth) * int64(c.Conv1DWidth)
		case Attention:
			n += 2 * int64(c.AttentionWindow) * int64(c.NumKeyValueHeads) * int64(c.HeadDim())
		}
	}
	return 4 * n
}
