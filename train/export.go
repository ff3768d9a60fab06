package train

import (
	"fmt"

	"github.com/gomlx/gomlx/pkg/core/tensors"

	"github.com/rgemma-toolkit/rgemma/rgemma"
)

// Export writes the model to dir in Hugging Face format (config.json and
// model.safetensors, float32), with every LoRA adapter merged into its base
// weight: W + scale·B·A.
func Export(m *rgemma.Model, dir string) error {
	out, err := rgemma.NewModel(m.Backend, m.Config)
	if err != nil {
		return err
	}
	for _, spec := range m.Config.Params() {
		values, err := m.Param(spec.Name)
		if err != nil {
			return err
		}
		if len(spec.Shape) == 2 {
			if err := mergeLoRA(m, spec, values); err != nil {
				return err
			}
		}
		if err := out.SetParam(spec.Name, values); err != nil {
			return err
		}
	}
	return out.Save(dir, rgemma.SaveOptions{})
}

// mergeLoRA adds scale·B·A to the weight values [out, in] when the layer has
// an adapter.
func mergeLoRA(m *rgemma.Model, spec rgemma.ParamSpec, weight []float32) error {
	prefix := spec.Name[:len(spec.Name)-len(".weight")]
	scope := rgemma.LoRAScope(prefix)
	aVar := m.Context.GetVariableByScopeAndName(scope, "a")
	if aVar == nil {
		return nil
	}
	read := func(name string) ([]float32, error) {
		v := m.Context.GetVariableByScopeAndName(scope, name)
		if v == nil {
			return nil, fmt.Errorf("LoRA adapter %s has no %q", scope, name)
		}
		t, err := v.Value()
		if err != nil {
			return nil, err
		}
		return tensors.CopyFlatData[float32](t)
	}
	a, err := read("a")
	if err != nil {
		return err
	}
	b, err := read("b")
	if err != nil {
		return err
	}
	scale, err := read("scale")
	if err != nil {
		return err
	}
	outDim, inDim := spec.Shape[0], spec.Shape[1]
	rank := len(a) / inDim
	for o := range outDim {
		row := weight[o*inDim : (o+1)*inDim]
		for r := range rank {
			coef := scale[0] * b[o*rank+r]
			if coef == 0 {
				continue
			}
			aRow := a[r*inDim : (r+1)*inDim]
			for i := range row {
				row[i] += coef * aRow[i]
			}
		}
	}
	return nil
}
