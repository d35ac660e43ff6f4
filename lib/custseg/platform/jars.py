"""Delta's jars, resolved once from Maven Central into a local folder and put on the classpath from there.

Resolving `spark.jars.packages` at every session start costs seconds and prints a page of Ivy output;
scripts/setup_env.sh calls `resolve_jars` once, and sessions and scripts/submit.sh then use the folder.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

# Must match pyspark 4.2.0 / delta-spark 4.4.0 in setup.py.
DELTA_PACKAGE = "io.delta:delta-spark_4.2_2.13:4.4.0"
MANIFEST = "manifest.json"


def jars_dir() -> str:
    """The folder of the resolved jars: $CUSTSEG_JARS_DIR, else one per Delta version in the user's cache."""
    default = os.path.join(os.path.expanduser("~"), ".cache", "custseg", DELTA_PACKAGE.replace(":", "_"))
    return os.environ.get("CUSTSEG_JARS_DIR", default)


def resolved_jars(folder: str | None = None) -> list[str] | None:
    """The jar files listed in the folder's manifest, or None unless every one is there with its size."""
    folder = folder or jars_dir()
    try:
        listed = json.loads(Path(folder, MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if listed.get("package") != DELTA_PACKAGE:
        return None
    paths = [os.path.join(folder, name) for name in sorted(listed["jars"])]
    intact = all(os.path.isfile(p) and os.path.getsize(p) == listed["jars"][os.path.basename(p)] for p in paths)
    return paths if intact else None


def _broken(jar: str) -> str | None:
    """Why a downloaded jar is unusable (empty, cut short, not a zip), or None."""
    if os.path.getsize(jar) == 0:
        return "empty"
    if not zipfile.is_zipfile(jar):
        return "not a jar (zip)"
    with zipfile.ZipFile(jar) as archive:
        bad = archive.testzip()
    return f"corrupt entry {bad}" if bad else None


def resolve_jars(attempts: int = 3) -> list[str]:
    """Resolve DELTA_PACKAGE with Ivy in a fresh folder, check every jar, keep them in jars_dir().

    A failed or corrupt download is retried with a clean Ivy cache; after `attempts` it raises with
    one line that says what to do.
    """
    from pyspark.sql import SparkSession

    target = jars_dir()
    problem = ""
    for _ in range(attempts):
        ivy = tempfile.mkdtemp(prefix="custseg-ivy-")
        try:
            spark = (SparkSession.builder.master("local[1]").appName("custseg-resolve-jars")
                     .config("spark.jars.packages", DELTA_PACKAGE).config("spark.jars.ivy", ivy)
                     .config("spark.ui.enabled", "false").getOrCreate())
            spark.stop()
            jars = sorted(str(p) for p in Path(ivy, "jars").glob("*.jar"))
            problems = [f"{os.path.basename(j)}: {why}" for j in jars if (why := _broken(j))]
            if jars and not problems:
                return _keep(jars, target)
            problem = "; ".join(problems) or "no jar was downloaded"
        except Exception as err:  # noqa: BLE001 - retried, then reported in one line
            problem = str(err).splitlines()[0] if str(err) else type(err).__name__
        finally:
            shutil.rmtree(ivy, ignore_errors=True)
    raise RuntimeError(f"could not download Delta's jars ({DELTA_PACKAGE}) from Maven Central after {attempts} "
                       f"attempts: {problem}. Check network access to repo1.maven.org and run scripts/setup_env.sh "
                       "again")


def _keep(jars: list[str], target: str) -> list[str]:
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".jars-", dir=parent)
    for jar in jars:
        shutil.copy2(jar, staging)
    sizes = {os.path.basename(j): os.path.getsize(j) for j in jars}
    Path(staging, MANIFEST).write_text(json.dumps({"package": DELTA_PACKAGE, "jars": sizes}, indent=1))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)  # the manifest appears with its complete folder
    return [os.path.join(target, name) for name in sorted(sizes)]
