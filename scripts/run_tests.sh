#!/usr/bin/env bash
# The test command: set up the environment on a fresh machine, then run the whole suite.
# Extra arguments go to pytest, e.g. scripts/run_tests.sh -k features. Two pytest processes (tests/conftest.py says
# how the tests are grouped); CUSTSEG_TEST_WORKERS=0 runs them all in this one.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec "${CUSTSEG_VENV:-$ROOT/.venv}/bin/python" -m pytest tests -n "${CUSTSEG_TEST_WORKERS:-2}" --dist loadgroup "$@"
