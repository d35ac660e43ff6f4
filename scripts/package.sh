#!/usr/bin/env bash
# Build dist/custseg_lib.zip: the custseg package for spark-submit --py-files, which takes .py/.zip/.egg
# but not wheels. The zip has custseg/ at its root so `import custseg` works on the driver and executors;
# the BI views (custseg/sql/*.sql) are package data, so custseg.bi.views finds them inside the zip too.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${CUSTSEG_VENV:-$ROOT/.venv}/bin/python"
[ -x "$PYTHON" ] || PYTHON=python3   # only the standard library is needed here
OUT="$ROOT/dist/custseg_lib.zip"
mkdir -p "$ROOT/dist"

# Python's zipfile rather than `zip`: always present, and we skip caches and compiled files explicitly.
"$PYTHON" - "$ROOT" "$OUT" <<'PY'
import os
import sys
import zipfile
from pathlib import Path

root, out = Path(sys.argv[1]), Path(sys.argv[2])
package = root / "lib" / "custseg"
files = sorted(p for p in package.rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"))
# A name of its own: two builds at once (parallel tests) each replace the zip whole, with the same content.
tmp = out.with_suffix(f".zip.{os.getpid()}.tmp")
with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
    for path in files:
        archive.write(path, str(path.relative_to(package.parent)))
    # zipimport cannot import a namespace package (a folder without __init__.py): without this marker
    # `import custseg` fails on any executor whose Python does not have the library installed.
    if not (package / "__init__.py").exists():
        archive.writestr("custseg/__init__.py", '"""Customer segmentation on Spark (packaged for --py-files)."""\n')
tmp.replace(out)  # never leave a half-written zip where submit.sh would pick it up
print(f"{out}: {len(files)} package files")
PY
