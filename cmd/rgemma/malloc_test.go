package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rgemma-toolkit/rgemma/rgemma"
)

// TestMallocTunablesRerun checks that the command re-runs itself with the
// malloc settings for XLA, and that it leaves them alone when asked to or
// when the user set GLIBC_TUNABLES.
func TestMallocTunablesRerun(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the re-run is done on Linux only")
	}
	run := func(extraEnv ...string) string {
		cmd := exec.Command(binary, "inspect", "-preset", "tiny")
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, "GLIBC_TUNABLES=") && !strings.HasPrefix(kv, "RGEMMA_MALLOC_TUNING=") {
				env = append(env, kv)
			}
		}
		cmd.Env = append(append(env, "RGEMMA_LOG=debug"), extraEnv...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		require.NoError(t, cmd.Run(), stderr.String())
		for _, line := range strings.Split(stderr.String(), "\n") {
			if strings.Contains(line, "malloc settings") {
				return line
			}
		}
		t.Fatalf("no malloc settings line in:\n%s", stderr.String())
		return ""
	}
	require.Contains(t, run(), fmt.Sprintf("GLIBC_TUNABLES=%q", rgemma.MallocTunables))
	require.Contains(t, run("RGEMMA_MALLOC_TUNING=0"), "GLIBC_TUNABLES=\"\"")
	own := "glibc.malloc.tcache_count=0"
	require.Contains(t, run("GLIBC_TUNABLES="+own), fmt.Sprintf("GLIBC_TUNABLES=%q", own))
}
