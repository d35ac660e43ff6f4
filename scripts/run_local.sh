#!/usr/bin/env bash
# The main command: on a fresh machine, set up, generate the built-in sample data and run the whole
# flow (features -> segments -> report) in local mode. Outputs go under output/local/.
# Extra arguments go to the job, e.g. scripts/run_local.sh --as-of 2025-12-01 --set model.k=5
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec "${CUSTSEG_VENV:-$ROOT/.venv}/bin/python" jobs/run_pipeline.py --conf conf/local.yaml --generate-sample "$@"
