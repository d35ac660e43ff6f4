"""The driver JVM's options (custseg.platform.jvm_archive): its logging always; the class archive used when there
is one, recorded by a job when there is none, and nothing of it when switched off."""
from __future__ import annotations

import os
import subprocess

from custseg.platform import jvm_archive


def in_folder(monkeypatch, tmp_path, switch="on"):
    """The archive beside a jar folder of the test's own; the tests' own switch (off, tests/conftest.py) replaced."""
    monkeypatch.setenv("CUSTSEG_JARS_DIR", str(tmp_path / "jars"))
    monkeypatch.setenv(jvm_archive.SWITCH, switch)
    return jvm_archive.archive_path()


def test_an_archive_there_is_used_and_none_is_recorded(monkeypatch, tmp_path):
    archive = in_folder(monkeypatch, tmp_path)
    assert os.path.dirname(archive) == str(tmp_path) and archive.endswith(".jsa")
    open(archive, "wb").close()
    assert jvm_archive.recording_path() is None
    options = jvm_archive.driver_java_options().split()
    assert options == [f"-Dlog4j2.configurationFile={jvm_archive.LOG4J_FILE}", f"-XX:SharedArchiveFile={archive}",
                       *jvm_archive.QUIET_CDS]


def test_without_an_archive_a_job_records_one_and_leftovers_of_killed_jobs_go(monkeypatch, tmp_path):
    archive = in_folder(monkeypatch, tmp_path)
    dead = subprocess.Popen(["true"])
    dead.wait()
    left, running = f"{archive}.{dead.pid}.partial", f"{archive}.{os.getppid()}.partial"
    for path in (left, running):
        open(path, "wb").close()
    record_to = jvm_archive.recording_path()
    assert record_to == f"{archive}.{os.getpid()}.partial"
    assert not os.path.exists(left) and os.path.exists(running)  # another job may be writing that one
    assert f"-XX:ArchiveClassesAtExit={record_to}" in jvm_archive.driver_java_options(record_to).split()
    assert "ArchiveClassesAtExit" not in jvm_archive.driver_java_options()  # a session that is not a job's
    jvm_archive.keep_recorded(None)  # nothing recorded: nothing moved
    assert not os.path.exists(archive)


def test_switched_off_only_the_logging_is_given(monkeypatch, tmp_path):
    archive = in_folder(monkeypatch, tmp_path, switch="off")
    open(archive, "wb").close()
    assert jvm_archive.recording_path() is None
    assert jvm_archive.driver_java_options("/tmp/x.partial") == f"-Dlog4j2.configurationFile={jvm_archive.LOG4J_FILE}"


def test_a_path_with_a_space_is_one_option_for_sparks_launcher(monkeypatch, tmp_path):
    archive = in_folder(monkeypatch, tmp_path / "a folder")
    os.makedirs(os.path.dirname(archive))
    open(archive, "wb").close()
    assert f'"-XX:SharedArchiveFile={archive}"' in jvm_archive.driver_java_options()


def test_the_session_jvm_logs_sparks_warnings_only_through_the_given_file(spark):
    jvm = spark.sparkContext._jvm
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-Dlog4j2.configurationFile={jvm_archive.LOG4J_FILE}" in arguments
    assert not any("SharedArchiveFile" in a or "ArchiveClassesAtExit" in a for a in arguments)  # off in the tests
    assert str(jvm.org.apache.logging.log4j.LogManager.getRootLogger().getLevel()) == "WARN"
