"""The driver JVM's options for a session this library starts: its logging and its class-data-sharing archive.

A cold driver loads some 30,000 classes, each read from a jar, parsed and verified on the thread that first
needs it. From a class-data-sharing (CDS) archive they are mapped from one file instead. The first job run on a
machine records the classes its JVM loaded into the archive as it exits (`recording_path`, `keep_recorded`); every
session after it starts on the archive. A JVM that cannot use it (another Java or classpath) runs without it,
silently. CUSTSEG_CLASS_ARCHIVE=off turns it off (the tests do: their JVMs do not depend on what an earlier run
left on the machine). Speed only, same results (benchmarks/README.md).
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import logging
import os
import shutil
import subprocess

import pyspark

from custseg.platform.jars import jars_dir

log = logging.getLogger(__name__)

LOG4J_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
# Silences the JVM's notes when it cannot use the archive.
QUIET_CDS = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")
EXIT_WAIT_SECONDS = 300
SWITCH = "CUSTSEG_CLASS_ARCHIVE"


def enabled() -> bool:
    return os.environ.get(SWITCH, "on").strip().lower() != "off"


def java_executable() -> str:
    """The java that Spark's launcher runs: $JAVA_HOME/bin/java, else the one on the PATH."""
    if os.environ.get("JAVA_HOME"):
        return os.path.realpath(os.path.join(os.environ["JAVA_HOME"], "bin", "java"))
    return os.path.realpath(shutil.which("java") or "java")


def archive_path() -> str:
    """The archive for this Java, Spark and Delta: a file beside the Delta jars' folder."""
    key = hashlib.sha256(f"{java_executable()}|{pyspark.__version__}|{jars_dir()}".encode()).hexdigest()[:12]
    return os.path.join(os.path.dirname(jars_dir()), f"driver-classes-{key}.jsa")


def recording_path() -> str | None:
    """Where a job's JVM records its classes when there is no archive yet (a file of its own), else None.

    Recordings a killed job's JVM left are removed first (their process is gone)."""
    if not enabled() or os.path.isfile(archive_path()):
        return None
    for left in glob.glob(f"{glob.escape(archive_path())}.*.partial"):
        if not _is_running(int(left.rsplit(".", 2)[-2])):
            with contextlib.suppress(OSError):
                os.remove(left)
    return f"{archive_path()}.{os.getpid()}.partial"


def _is_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _option(flag: str) -> str:
    """A JVM option as Spark's launcher splits them: quoted when a path in it holds a space."""
    return f'"{flag}"' if " " in flag else flag


def driver_java_options(record_to: str | None = None) -> str:
    """Spark's logging at WARN (log4j2.properties beside this module) and the class archive: used when there is
    one, else recorded at exit to `record_to` when given."""
    options = [_option(f"-Dlog4j2.configurationFile={LOG4J_FILE}")]
    if not enabled():
        return options[0]
    if os.path.isfile(archive_path()):
        options += [_option(f"-XX:SharedArchiveFile={archive_path()}"), *QUIET_CDS]
    elif record_to:
        os.makedirs(os.path.dirname(record_to), exist_ok=True)
        options += [_option(f"-XX:ArchiveClassesAtExit={record_to}"), *QUIET_CDS]
    return " ".join(options)


def keep_recorded(record_to: str | None) -> None:
    """After the session stopped: let its JVM exit (it writes the classes as it does) and move the archive into
    place whole. Nothing to do without a recording, or when the JVM was not started here (spark-submit)."""
    from pyspark import SparkContext

    jvm = getattr(SparkContext._gateway, "proc", None)
    if record_to is None or jvm is None:
        return
    jvm.stdin.close()  # the JVM exits when its input closes
    try:
        exited = jvm.wait(timeout=EXIT_WAIT_SECONDS) == 0
    except subprocess.TimeoutExpired:  # a slow exit leaves no archive; the job's result stands
        exited = False
    if exited and os.path.isfile(record_to):
        os.replace(record_to, archive_path())
        log.info("JVM class archive written to %s: later sessions start faster", archive_path())
    elif os.path.exists(record_to):
        os.remove(record_to)
