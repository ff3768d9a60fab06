package rgemma

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsCPUPlugin(t *testing.T) {
	for name, want := range map[string]bool{
		"cpu":                                 true,
		"/repo/.xla/pjrt_c_api_cpu_plugin.so": true,
		"cuda":                                false,
		"/opt/pjrt_c_api_cuda_plugin.so":      false,
		"/opt/cpu-plugins/pjrt_c_api_tpu.so":  false,
	} {
		assert.Equal(t, want, isCPUPlugin(name), name)
	}
}

func TestXLACPUDevicesBadValue(t *testing.T) {
	for _, v := range []string{"0", "-1", "two", "1.5"} {
		t.Setenv(CPUDevicesEnvVar, v)
		_, err := newXLABackend("xla:cpu")
		require.Error(t, err, v)
		assert.Contains(t, err.Error(), CPUDevicesEnvVar, v)
		assert.Contains(t, err.Error(), v)
	}
}

func TestNewBackendBadCPUDevices(t *testing.T) {
	t.Setenv(CPUDevicesEnvVar, "two")
	for _, choice := range []string{"auto", "xla", "xla:cpu", "xla:/opt/pjrt_c_api_cpu_plugin.so"} {
		_, err := NewBackend(choice)
		require.Error(t, err, choice)
		assert.Contains(t, err.Error(), CPUDevicesEnvVar, choice)
		assert.Contains(t, err.Error(), "unset it", choice)
	}

	// SimpleGo does not read the variable.
	b, err := NewBackend("go")
	require.NoError(t, err)
	b.Finalize()
}

// TestXLACPUDevices checks that the CPU plugin creates DefaultCPUDevices
// devices unless $RGEMMA_XLA_CPU_DEVICES sets another count. It needs an
// installed plugin.
func TestXLACPUDevices(t *testing.T) {
	config := findXLAPlugin()
	if config == "" {
		t.Skip("no XLA plugin installed (scripts/install-xla-cpu.sh)")
	}
	def := fmt.Sprintf("[%d device(s)]", DefaultCPUDevices())
	for env, want := range map[string]string{"": def, "1": "[1 device(s)]", "3": "[3 device(s)]"} {
		t.Setenv(CPUDevicesEnvVar, env)
		b, err := newXLABackend(config)
		require.NoError(t, err)
		assert.Contains(t, b.Description(), want, "%s=%q", CPUDevicesEnvVar, env)
		b.Finalize()
	}
}
