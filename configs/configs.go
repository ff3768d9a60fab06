// Package configs embeds the JSON presets of this repository: model configs
// under models/ (Hugging Face `config.json` format).
package configs

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed models/*.json
var modelFiles embed.FS

// ModelPreset returns the `config.json` bytes of the named model preset, e.g.
// "small" or "recurrentgemma-2b".
func ModelPreset(name string) ([]byte, error) {
	data, err := modelFiles.ReadFile("models/" + name + ".json")
	if err != nil {
		return nil, fmt.Errorf("unknown model preset %q, available: %s", name, strings.Join(ModelPresetNames(), ", "))
	}
	return data, nil
}

// ModelPresetNames lists the model presets, sorted.
func ModelPresetNames() []string {
	entries, _ := fs.ReadDir(modelFiles, "models")
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".json"))
	}
	sort.Strings(names)
	return names
}
