#!/usr/bin/env bash
# Run the test suite on both execution backends.
#
# 1. Installs the XLA CPU plugin into .xla/ (scripts/install-xla-cpu.sh,
#    from PyPI; skipped when it is already there).
# 2. Runs `go test ./...` on the pure-Go SimpleGo backend.
# 3. Runs `go test ./...` again on XLA, loading the plugin by its path so a
#    broken plugin fails the run instead of falling back to SimpleGo.
#
# Set RGEMMA_SKIP_XLA=1 to run only the SimpleGo pass (for example on a
# machine that cannot reach PyPI and has no plugin).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== go vet" >&2
go vet ./...

echo "== go test on SimpleGo" >&2
GOMLX_BACKEND=go go test -count=1 -timeout 30m ./...

if [[ "${RGEMMA_SKIP_XLA:-0}" == "1" ]]; then
  echo "== XLA pass skipped (RGEMMA_SKIP_XLA=1)" >&2
  exit 0
fi
scripts/install-xla-cpu.sh >/dev/null
plugin="$PWD/.xla/pjrt_c_api_cpu_plugin.so"
echo "== go test on XLA ($plugin)" >&2
GOMLX_BACKEND="xla:$plugin,shared_buffers" go test -count=1 -timeout 40m ./...
