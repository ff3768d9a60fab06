package main

import (
	"log/slog"
	"os"
	"runtime"
	"syscall"

	"github.com/rgemma-toolkit/rgemma/rgemma"
)

// rerunWithMallocTunables replaces the process with itself, same arguments,
// with GLIBC_TUNABLES=rgemma.MallocTunables added to the environment, so that
// XLA reuses its per-call buffers. It returns only when no re-run is needed
// or the exec failed, and the program then goes on with glibc's defaults.
func rerunWithMallocTunables() {
	if runtime.GOOS != "linux" || !rgemma.NeedsMallocRerun() {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		slog.Debug("malloc tuning skipped: executable path unknown", "error", err)
		return
	}
	env := append(os.Environ(), "GLIBC_TUNABLES="+rgemma.MallocTunables)
	err = syscall.Exec(exe, os.Args, env)
	slog.Debug("malloc tuning skipped: exec failed", "error", err)
}

// minorPageFaults returns the count of minor page faults of the process so
// far, or 0 when getrusage fails.
func minorPageFaults() int64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return usage.Minflt
}
