#!/usr/bin/env bash
# Run one job with spark-submit, the way a cluster runs it:
#   scripts/submit.sh JOB [job args...]      e.g. scripts/submit.sh build_features --as-of 2026-01-01
# JOB is a file in jobs/ (build_features, train_segments, score_customers, run_pipeline).
# The job gets `--conf conf/cluster.yaml` first; a later --conf in the job args wins (argparse keeps the last).
# Environment:
#   SPARK_MASTER         where to run (default local[2]); spark://127.0.0.1:7177 for start_local_cluster.sh
#   CUSTSEG_SUBMIT_OPTS  extra spark-submit options, e.g. "--driver-memory 4g --executor-memory 1g"
# Runs from the repository root, so relative paths (jobs/, dist/, conf/ and the conf's data/ and output/)
# mean the same thing to the driver and to workers on this machine. On a real cluster use shared storage.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${CUSTSEG_VENV:-$ROOT/.venv}"

if [ "$#" -lt 1 ]; then
  echo "usage: $0 JOB [job args...]; jobs: $(cd "$ROOT/jobs" && ls [a-z]*.py | sed 's/\.py$//' | tr '\n' ' ')" >&2
  exit 2
fi
JOB="${1%.py}"; shift
[ -f "$ROOT/jobs/$JOB.py" ] || { echo "no job jobs/$JOB.py" >&2; exit 2; }
cd "$ROOT"

# Rebuild the zip when it is missing or older than any library file, so executors never run stale code.
ZIP="dist/custseg_lib.zip"
newer="$(find lib/custseg -newer "$ZIP" -type f ! -name '*.pyc' 2>/dev/null | head -n 1 || true)"
if [ ! -f "$ZIP" ] || [ -n "$newer" ]; then
  bash scripts/package.sh
fi

MASTER="${SPARK_MASTER:-local[2]}"
# A master on this machine: the driver binds to loopback too, like the cluster scripts (nothing exposed).
case "$MASTER" in
  local*|spark://127.0.0.1:*|spark://localhost:*) export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}" ;;
esac
# Driver and Python workers use the project's interpreter (pyspark, pandas, numpy are there).
export PYSPARK_PYTHON="${PYSPARK_PYTHON:-$VENV/bin/python}"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PYSPARK_PYTHON}"
SPARK_HOME="${SPARK_HOME:-$("$VENV/bin/python" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')}"
read -r -a extra_opts <<<"${CUSTSEG_SUBMIT_OPTS:-}"

# Delta's jars from the folder setup_env.sh filled (no resolution at start); --packages from Maven Central
# when it is missing. The library goes through --py-files; the conf's use_delta_pip is false, so the
# session does not ask for the jars again. Spark's logging at WARN: the library's log4j2.properties.
DELTA_JARS="$("$VENV/bin/python" -c 'from custseg.platform.jars import resolved_jars; print(",".join(resolved_jars() or []))')"
if [ -n "$DELTA_JARS" ]; then
  delta_opts=(--jars "$DELTA_JARS")
else
  delta_opts=(--packages "$("$VENV/bin/python" -c 'from custseg.platform.jars import DELTA_PACKAGE; print(DELTA_PACKAGE)')")
fi
export SPARK_CONF_DIR="${SPARK_CONF_DIR:-$ROOT/lib/custseg/platform}"
exec "$SPARK_HOME/bin/spark-submit" \
  --master "$MASTER" \
  "${delta_opts[@]}" \
  --py-files "$ZIP" \
  "${extra_opts[@]}" \
  "jobs/$JOB.py" --conf conf/cluster.yaml "$@"
