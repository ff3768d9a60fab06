package rgemma

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/gomlx/go-xla/pkg/pjrt"
	"github.com/gomlx/gomlx/backends"
	_ "github.com/gomlx/gomlx/backends/simplego" // Registers the pure-Go "go" backend.
	"github.com/gomlx/gomlx/backends/xla"
)

// simpleGoConfig runs the ops of a graph one after another, each op still
// using several cores. With graph-level parallelism, SimpleGo in GoMLX
// v0.26.0 can deadlock on 2 cores: DotGeneral nodes running in pool workers
// wait for more workers of the same pool (seen in a goroutine dump, blocked in
// workersPool.WaitToStart from execDotGeneralSmall).
const simpleGoConfig = "go:ops_sequential"

// BackendAuto selects XLA when a PJRT plugin is installed and SimpleGo otherwise.
const BackendAuto = "auto"

// NewBackend creates the execution backend. choice is one of:
//
//   - "" : the value of $GOMLX_BACKEND if set, else "auto";
//   - "auto": XLA with the first PJRT plugin found in the folders of
//     $PJRT_PLUGIN_LIBRARY_PATH (or the standard go-xla folders), in
//     $RGEMMA_XLA_DIR, or in a .xla folder of the working directory or one of
//     its parents, else SimpleGo;
//   - "go": the pure-Go SimpleGo backend ("go:OPTIONS" passes SimpleGo options);
//   - "xla" or "xla:PLUGIN" (e.g. "xla:cpu", "xla:cuda"): XLA, or an error.
//
// It never downloads a plugin: the automatic install of go-xla is disabled,
// because it needs the internet and fails behind a firewall. One log line
// states the backend in use. A CPU plugin gets the device count of
// $RGEMMA_XLA_CPU_DEVICES (see CPUDevicesEnvVar). An invalid value is an
// error whenever XLA may be chosen.
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

	if choice == BackendAuto || choice == "xla" || (strings.HasPrefix(choice, "xla:") && isCPUPlugin(xlaPluginName(choice))) {
		// A bad value stops the program, so that auto does not fall back to SimpleGo.
		if _, err := xlaCPUDevices(); err != nil {
			return nil, err
		}
	}

	switch {
	case choice == BackendAuto:
		if config := findXLAPlugin(); config != "" {
			backend, err = newXLABackend(config)
			if err == nil {
				logBackend(backend, "XLA plugin found: "+config)
				return backend, nil
			}
			slog.Warn("XLA plugin failed to load, falling back to SimpleGo", "config", config, "error", err)
		}
		backend, err = backends.NewWithConfig(simpleGoConfig)
		if err != nil {
			return nil, fmt.Errorf("creating SimpleGo backend: %w", err)
		}
		logBackend(backend, "no XLA PJRT plugin found: run scripts/install-xla-cpu.sh, then run from the repository or set RGEMMA_XLA_DIR=REPO/.xla")
		return backend, nil

	case choice == "go" || choice == "simplego":
		backend, err = backends.NewWithConfig(simpleGoConfig)

	case strings.HasPrefix(choice, "go:"):
		backend, err = backends.NewWithConfig(choice)

	case choice == "xla" || choice == "xla:cpu":
		// The CPU plugin may sit in a .xla folder that go-xla does not search.
		config := findXLAPlugin()
		if config == "" {
			config = choice
		}
		backend, err = newXLABackend(config)

	case strings.HasPrefix(choice, "xla:"):
		backend, err = newXLABackend(choice)

	default:
		return nil, fmt.Errorf("unknown backend %q: use auto, go, xla or xla:PLUGIN", choice)
	}
	if err != nil {
		hint := ""
		if strings.HasPrefix(choice, "xla") {
			hint = " (install a plugin with scripts/install-xla-cpu.sh and pass its path: -backend xla:REPO/.xla/pjrt_c_api_cpu_plugin.so, or eval the exports it prints)"
		}
		return nil, fmt.Errorf("creating backend %q: %w%s", choice, err, hint)
	}
	logBackend(backend, "requested")
	return backend, nil
}

// CPUDevicesEnvVar names the environment variable that sets the number of
// devices the XLA CPU plugin creates (default: see DefaultCPUDevices).
const CPUDevicesEnvVar = "RGEMMA_XLA_CPU_DEVICES"

// newXLABackend creates the XLA backend of config ("xla:PLUGIN[,OPTIONS]").
//
// A CPU plugin gets the client option cpu_device_count (see xlaCPUDevices).
// Without that option the plugin creates 4 devices and 4 worker threads, even
// on 2 cores. With 1 or 2 devices it started one thread per core there, and
// BatchExec splits a batch over 2 devices (figures in docs/xla.md).
func newXLABackend(config string) (backends.Backend, error) {
	xla.EnableAutoInstall(false)
	if !isCPUPlugin(xlaPluginName(config)) {
		return backends.NewWithConfig(config)
	}
	plugin := strings.TrimPrefix(config, "xla:")
	devices, err := xlaCPUDevices()
	if err != nil {
		return nil, err
	}
	b, err := xla.NewWithOptions(plugin, pjrt.NamedValuesMap{"cpu_device_count": int64(devices)})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// DefaultCPUDevices returns the number of devices the XLA CPU plugin gets
// when $RGEMMA_XLA_CPU_DEVICES is unset: 2, or 1 on a single core. Graphs
// run on the first device, except that BatchExec splits a batch over both.
func DefaultCPUDevices() int {
	return min(2, runtime.NumCPU())
}

// xlaCPUDevices returns the device count for the XLA CPU plugin: the value
// of $RGEMMA_XLA_CPU_DEVICES, or DefaultCPUDevices when it is unset or empty.
func xlaCPUDevices() (int, error) {
	v := os.Getenv(CPUDevicesEnvVar)
	if v == "" {
		return DefaultCPUDevices(), nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("invalid $%s=%q: expected a whole number of devices, 1 or more (unset it to use %d)", CPUDevicesEnvVar, v, DefaultCPUDevices())
	}
	return n, nil
}

// xlaPluginName returns the plugin name or path of an XLA config
// ("xla:PLUGIN[,OPTIONS]"), without the prefix and the options.
func xlaPluginName(config string) string {
	name, _, _ := strings.Cut(strings.TrimPrefix(config, "xla:"), ",")
	return name
}

// isCPUPlugin reports whether the go-xla plugin name or path names the XLA
// CPU plugin: "cpu", or a file whose name contains "cpu".
func isCPUPlugin(name string) bool {
	return name == "cpu" || strings.Contains(filepath.Base(name), "cpu")
}

// xlaPluginFile is the CPU plugin name that go-xla v0.1.4 looks for.
const xlaPluginFile = "pjrt_c_api_cpu_plugin.so"

// findXLAPlugin returns the backend config of an installed XLA plugin, or ""
// when none is found. It looks in the folders of $PJRT_PLUGIN_LIBRARY_PATH
// and the standard go-xla folders, then in a `.xla` folder (where
// scripts/install-xla-cpu.sh installs) in $RGEMMA_XLA_DIR, the working
// directory or one of its parents.
func findXLAPlugin() string {
	xla.EnableAutoInstall(false) // GetAvailablePlugins would otherwise download one.
	if plugins := xla.GetAvailablePlugins(); len(plugins) > 0 {
		return "xla:" + plugins[0]
	}
	var candidates []string
	if dir := os.Getenv("RGEMMA_XLA_DIR"); dir != "" {
		candidates = append(candidates, filepath.Join(dir, xlaPluginFile))
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			candidates = append(candidates, filepath.Join(dir, ".xla", xlaPluginFile))
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	for _, path := range candidates {
		if st, err := os.Stat(path); err == nil && !st.IsDir() {
			// A plugin given by path needs shared_buffers to keep zero-copy
			// transfers, which GoMLX otherwise disables for such plugins.
			return "xla:" + path + ",shared_buffers"
		}
	}
	return ""
}

func logBackend(b backends.Backend, reason string) {
	slog.Info("execution backend", "name", b.Name(), "description", b.Description(), "reason", reason)
}
