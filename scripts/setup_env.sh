#!/usr/bin/env bash
# Prepare a fresh machine: a virtualenv with the library and test tools, and the Delta jars in Ivy's cache.
# Idempotent: a second call only checks. Needs Python 3.11 and Java 17 on the PATH.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${CUSTSEG_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3
command -v java >/dev/null || { echo "Java 17 is required (java not found on PATH)" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.custseg-installed"
if [ ! -f "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ]; then
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -e "$ROOT[test]"
  touch "$stamp"
fi

# Resolve Delta's jars once (Maven Central through Ivy, cached in ~/.ivy2.5.2), so jobs and tests start offline.
ivy_stamp="$VENV/.delta-jars-resolved"
if [ ! -f "$ivy_stamp" ]; then
  "$VENV/bin/python" - <<'PY'
from custseg.config import SparkConf
from custseg.platform.session import build_session

spark = build_session(SparkConf(master="local[1]", app_name="warm-up", shuffle_partitions=1, driver_memory=None,
                                use_delta_pip=True, extra={"spark.ui.enabled": "false"}))
spark.range(1).count()
spark.stop()
PY
  touch "$ivy_stamp"
fi
