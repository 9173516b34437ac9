#!/usr/bin/env bash
# The prepared GPU run: `scripts/gpu_run.sh OUT [--dry-run] [--steps ...]` (see scripts/gpu_run.py).
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/gpu_run.py "$@"
