"""The driver JVM a session of this library starts: its Java, its logging and its ahead-of-time cache.

A cold driver spends most of a small run loading, linking and compiling Spark's code. A JDK 25 or later can
start from an ahead-of-time (AOT) cache of the classes an earlier run loaded and linked, with the method
profiles it gathered (JEP 483, 514, 515). `ensure_cache` records one by running the sample flow once
(scripts/setup_env.sh and scripts/benchmark.py call it); every later session with `spark.jvm_cache` then starts
from it, on that JDK even when JAVA_HOME is an older one (Spark runs on Java 17, 21 and 25, with the same
results: benchmarks/README.md). Without such a JDK, or a cache, the session starts as it always did.
CUSTSEG_JVM_CACHE=off turns the cache and the choice of JDK off (the tests do). Nothing here applies when
spark-submit started the JVM.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import pyspark

from custseg.platform.jars import jars_dir

log = logging.getLogger(__name__)

MIN_JAVA = 25                 # -XX:AOTCacheOutput records a cache in one run from this release on (JEP 514)
SWITCH = "CUSTSEG_JVM_CACHE"  # "off": neither cache nor choice of JDK; "record": the session records the cache
JDK_FOLDERS = ("/usr/lib/jvm", "/usr/local/lib/jvm", "/opt/java", "/opt/jdk", "/Library/Java/JavaVirtualMachines")
LOG4J_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
# A cache the JVM cannot use (another classpath) is skipped; its notes about that are not the job's output, nor
# are the classes a recording leaves out (generated, signed or JFR classes).
QUIET_AOT = ("-Xlog:aot=off", "-Xlog:cds=off")
QUIET_RECORDING = ("-Xlog:aot=error", "-Xlog:cds=error")
EXIT_WAIT_SECONDS = 600       # the recording JVM writes the cache as it exits


@dataclass(frozen=True)
class DriverJvm:
    """How to start the driver JVM: the JDK (None: JAVA_HOME or the java on the PATH) and its options."""
    java_home: str | None
    options: tuple[str, ...]
    cache: str | None = None      # the AOT cache it starts from
    record_to: str | None = None  # where it writes the cache it records, as it exits


def enabled() -> bool:
    return os.environ.get(SWITCH, "on").strip().lower() != "off"


def java_version(home: str) -> int | None:
    """The feature release (17, 25) of the JDK at home, from its `release` file; None when it has none."""
    try:
        with open(os.path.join(home, "release"), encoding="utf-8") as handle:
            found = re.search(r'^JAVA_VERSION="(\d+)', handle.read(), re.MULTILINE)
    except OSError:
        return None
    return int(found.group(1)) if found else None


def default_java_home() -> str | None:
    """The JDK Spark's launcher would run: $JAVA_HOME, else the one the java on the PATH belongs to."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    java = shutil.which("java")
    return os.path.dirname(os.path.dirname(os.path.realpath(java))) if java else None


def cache_java_home(folders: tuple[str, ...] = JDK_FOLDERS) -> str | None:
    """A JDK that can use an AOT cache: the default one when it is recent enough, else the newest one installed
    in a usual folder, else None."""
    default = default_java_home()
    if default and (java_version(default) or 0) >= MIN_JAVA:
        return default
    installed = [(java_version(home) or 0, home) for folder in folders
                 for home in sorted(glob.glob(os.path.join(glob.escape(folder), "*")))]
    recent = [(version, home) for version, home in installed if version >= MIN_JAVA]
    return max(recent, key=lambda vh: vh[0])[1] if recent else None


def cache_path(home: str) -> str:
    """The cache for this JDK build, Spark and Delta jars: a file beside the Delta jars' folder."""
    with open(os.path.join(home, "release"), "rb") as handle:
        release = handle.read()
    key = hashlib.sha256(b"|".join([os.path.realpath(home).encode(), release, pyspark.__version__.encode(),
                                    jars_dir().encode()])).hexdigest()[:12]
    return os.path.join(os.path.dirname(jars_dir()), f"driver-{key}.aot")


def _option(flag: str) -> str:
    """A JVM option as Spark's launcher splits them: quoted when a path in it holds a space."""
    return f'"{flag}"' if " " in flag else flag


def driver_jvm(jvm_cache: bool) -> DriverJvm:
    """The driver JVM for a session: Spark's logging at WARN (log4j2.properties beside this module, unless
    SPARK_CONF_DIR gives the user's own) and, with `jvm_cache`, the AOT cache and its JDK when there are both."""
    options: tuple[str, ...] = () if os.environ.get("SPARK_CONF_DIR") else (
        _option(f"-Dlog4j2.configurationFile={LOG4J_FILE}"),)
    home = cache_java_home() if jvm_cache and enabled() else None
    if home is None:
        return DriverJvm(None, options)
    cache = cache_path(home)
    if os.environ.get(SWITCH) == "record":
        partial = f"{cache}.{os.getpid()}.partial"
        return DriverJvm(home, (*options, _option(f"-XX:AOTCacheOutput={partial}"), *QUIET_RECORDING),
                         record_to=partial)
    if os.path.isfile(cache):
        return DriverJvm(home, (*options, _option(f"-XX:AOTCache={cache}"), *QUIET_AOT), cache=cache)
    return DriverJvm(None, options)


def keep_recorded(jvm: DriverJvm) -> None:
    """After a recording session stopped: let its JVM exit (it writes the cache as it does) and move the cache
    into place whole. Nothing to do without a recording, or when the JVM was not started here."""
    from pyspark import SparkContext

    process = getattr(SparkContext._gateway, "proc", None)
    if jvm.record_to is None or process is None:
        return
    process.stdin.close()  # the JVM exits when its input closes
    try:
        exited = process.wait(timeout=EXIT_WAIT_SECONDS) == 0
    except subprocess.TimeoutExpired:
        exited = False
    if exited and os.path.isfile(jvm.record_to):
        os.replace(jvm.record_to, cache_path(jvm.java_home))
        log.info("driver JVM cache written to %s: later sessions start from it", cache_path(jvm.java_home))
    else:
        log.warning("the JVM wrote no cache to %s; sessions start without one", jvm.record_to)
    for left in (jvm.record_to, f"{jvm.record_to}.config"):
        with contextlib.suppress(OSError):
            os.remove(left)


def ensure_cache(conf_path: str, cwd: str | None = None) -> str | None:
    """Record the AOT cache when a JDK can use one and there is none yet: the sample flow of `conf_path` runs
    once, in a process of its own in `cwd`, into a temporary output folder. Return the cache's path, or None."""
    home = cache_java_home() if enabled() else None
    if home is None:
        return None
    cache = cache_path(home)
    if not os.path.isfile(cache):
        print(f"setup: recording the driver JVM's cache for Java {java_version(home)} ({home}) by a run of the "
              "sample flow, once", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="custseg-jvm-cache-") as out:
            run = subprocess.run([sys.executable, "-m", "custseg.cli", "run-pipeline", "--conf", conf_path,
                                  "--generate-sample", f"--set=output.path={out}", "--log-level", "warning"],
                                 env={**os.environ, SWITCH: "record"}, cwd=cwd, check=False)
        # Speed only: without a cache every session starts as it would on an older JDK.
        print(f"setup: driver JVM cache in {cache}" if os.path.isfile(cache) else
              f"setup: no driver JVM cache (the recording run exited {run.returncode}); sessions start without one",
              file=sys.stderr)
    return cache if os.path.isfile(cache) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Record the driver JVM's AOT cache when a JDK 25+ is installed.")
    parser.add_argument("--conf", required=True, help="the config whose sample flow the recording runs")
    ensure_cache(parser.parse_args(argv).conf)
    return 0


if __name__ == "__main__":
    sys.exit(main())
