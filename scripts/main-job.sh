#!/usr/bin/env bash
# The main job: train the `small` Griffin preset, byte-level, on the Go
# standard library sources of the local Go installation, and write the run
# folder under runs/. Extra arguments go to `rgemma train` (e.g. -max-steps 50).
#
# It first tries to install the XLA CPU plugin (scripts/install-xla-cpu.sh,
# from PyPI), which makes training about 20 times faster than the pure-Go
# backend. Without it the job runs on SimpleGo and stops at its 10-minute
# budget after fewer steps.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! scripts/install-xla-cpu.sh >/dev/null; then
  echo "main-job: the XLA plugin could not be installed; training on the slower pure-Go backend" >&2
fi
go run ./cmd/rgemma train "$@"
