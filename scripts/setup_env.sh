#!/usr/bin/env bash
# Prepare a fresh machine: a virtualenv with the library and test tools, the Delta jars in a local folder and,
# when a JDK 25 or later is installed, the driver JVM's ahead-of-time cache.
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
# Installed again when the requirements or this script (how it installs) changed since.
if [ ! -f "$stamp" ] || [ "$ROOT/setup.py" -nt "$stamp" ] || [ "$ROOT/scripts/setup_env.sh" -nt "$stamp" ]; then
  # uv installs the same requirements in about half pip's time, from its cache alone when that holds them all
  # (no download nor build of pyspark's source archive again); pip does it where uv cannot be had or fails.
  # Compiled to bytecode once here, as pip does: where PYTHONDONTWRITEBYTECODE is set, every job would otherwise
  # compile pandas, scikit-learn and matplotlib again at each start (benchmarks/README.md).
  uv_install() {
    "$VENV/bin/uv" pip install --quiet --compile-bytecode --python "$VENV/bin/python" "$@" -e "$ROOT[test]"
  }
  if ! { "$VENV/bin/pip" install --quiet uv && { uv_install --offline 2>/dev/null || uv_install; }; }; then
    "$VENV/bin/pip" install --quiet -e "$ROOT[test]"
  fi
  touch "$stamp"
fi

# Delta's jars: resolved once from Maven Central, checked, and kept in a folder (custseg.platform.jars) that
# sessions and scripts/submit.sh put on the classpath without resolving again. One line on failure.
"$VENV/bin/python" - <<'PY'
import sys

from custseg.platform.jars import jars_dir, resolve_jars, resolved_jars

if resolved_jars() is None:
    try:
        print(f"setup: {len(resolve_jars())} Delta jars in {jars_dir()}")
    except RuntimeError as err:
        print(f"setup failed: {err}", file=sys.stderr)
        sys.exit(1)
PY

# The driver JVM's ahead-of-time cache (custseg.platform.driver_jvm): recorded once, by a run of the sample flow,
# when a JDK 25 or later is installed; local runs then start from it. CUSTSEG_JVM_CACHE=off skips it.
(cd "$ROOT" && "$VENV/bin/python" -m custseg.platform.driver_jvm --conf conf/local.yaml)
