#!/usr/bin/env bash
# The test command: set up the environment on a fresh machine, then run the whole suite.
# Extra arguments go to pytest, e.g. scripts/run_tests.sh -k features. Two pytest processes (tests/conftest.py says
# how the tests are grouped); CUSTSEG_TEST_WORKERS=0 runs them all in this one.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# The tests' JVMs start the same whatever an earlier run left on the machine: no driver JVM cache to record.
export CUSTSEG_JVM_CACHE=off
bash "$ROOT/scripts/setup_env.sh"
cd "$ROOT"
exec "${CUSTSEG_VENV:-$ROOT/.venv}/bin/python" -m pytest tests -n "${CUSTSEG_TEST_WORKERS:-2}" --dist loadgroup "$@"
