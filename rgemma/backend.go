package rgemma

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // Registers the pure-Go "go" backend.
	"github.com/gomlx/gomlx/backends/xla"
)

// BackendAuto selects XLA when a PJRT plugin is installed and SimpleGo otherwise.
const BackendAuto = "auto"

// NewBackend creates the execution backend. choice is one of:
//
//   - "" : the value of $GOMLX_BACKEND if set, else "auto";
//   - "auto": XLA with the first PJRT plugin found in the folders of
//     $PJRT_PLUGIN_LIBRARY_PATH (or the standard go-xla folders), else SimpleGo;
//   - "go": the pure-Go SimpleGo backend;
//   - "xla" or "xla:PLUGIN" (e.g. "xla:cpu", "xla:cuda"): XLA, or an error.
//
// It never downloads a plugin: the automatic install of go-xla is disabled,
// because it needs the internet and fails behind a firewall. One log line
// states the backend in use.
func NewBackend(choice string) (backend backends.Backend, err error) {
	xla.EnableAutoInstall(false)
	if choice == "" {
		choice = os.Getenv(backends.ConfigEnvVar)
	}
	if choice == "" {
		choice = BackendAuto
	}

	// GoMLX panics on an unknown backend name; report it as an error.
	defer func() {
		if r := recover(); r != nil {
			backend, err = nil, fmt.Errorf("creating backend %q: %v", choice, r)
		}
	}()

	switch {
	case choice == BackendAuto:
		plugins := xla.GetAvailablePlugins()
		if len(plugins) > 0 {
			backend, err = backends.NewWithConfig("xla:" + plugins[0])
			if err == nil {
				logBackend(backend, "XLA plugin found")
				return backend, nil
			}
			slog.Warn("XLA plugin failed to load, falling back to SimpleGo", "plugin", plugins[0], "error", err)
		}
		backend, err = backends.NewWithConfig("go")
		if err != nil {
			return nil, fmt.Errorf("creating SimpleGo backend: %w", err)
		}
		logBackend(backend, "no XLA PJRT plugin found (set PJRT_PLUGIN_LIBRARY_PATH, see scripts/install-xla-cpu.sh)")
		return backend, nil

	case choice == "go" || choice == "simplego":
		backend, err = backends.NewWithConfig("go")

	case choice == "xla" || strings.HasPrefix(choice, "xla:"):
		backend, err = backends.NewWithConfig(choice)

	default:
		return nil, fmt.Errorf("unknown backend %q: use auto, go, xla or xla:PLUGIN", choice)
	}
	if err != nil {
		return nil, fmt.Errorf("creating backend %q: %w", choice, err)
	}
	logBackend(backend, "requested")
	return backend, nil
}

func logBackend(b backends.Backend, reason string) {
	slog.Info("execution backend", "name", b.Name(), "description", b.Description(), "reason", reason)
}
