"""The driver JVM a session starts (custseg.platform.driver_jvm): which JDK, which options, and a cache the JVM
cannot use skipped without a word."""
from __future__ import annotations

import os
import subprocess

import pytest

from custseg.platform.driver_jvm import (
    LOG4J_FILE,
    SWITCH,
    DriverJvm,
    cache_java_home,
    cache_path,
    driver_jvm,
    ensure_cache,
    java_version,
)


def fake_jdk(folder, name: str, version: str) -> str:
    """A folder with a JDK's release file: what the choice of JDK reads."""
    home = folder / name
    (home / "bin").mkdir(parents=True)
    (home / "release").write_text(f'IMPLEMENTOR="Test"\nJAVA_VERSION="{version}"\n')
    return str(home)


@pytest.fixture
def cache_on(monkeypatch, tmp_path):
    """The cache switched on, its folder under tmp_path, no user conf dir."""
    monkeypatch.setenv(SWITCH, "on")
    monkeypatch.setenv("CUSTSEG_JARS_DIR", str(tmp_path / "cache" / "jars"))
    monkeypatch.delenv("SPARK_CONF_DIR", raising=False)
    (tmp_path / "cache").mkdir()


def test_java_version_is_the_feature_release_in_the_jdks_release_file(tmp_path):
    assert java_version(fake_jdk(tmp_path, "a", "25.0.3")) == 25
    assert java_version(fake_jdk(tmp_path, "b", "17.0.15")) == 17
    assert java_version(str(tmp_path / "no-such-jdk")) is None


def test_the_jdk_for_the_cache_is_a_recent_default_else_the_newest_installed(monkeypatch, tmp_path):
    jvm_folder = tmp_path / "jvm"
    old = fake_jdk(jvm_folder, "jdk-17", "17.0.15")
    fake_jdk(jvm_folder, "jdk-21", "21.0.2")
    recent = fake_jdk(jvm_folder, "jdk-25", "25.0.3")
    newest = fake_jdk(jvm_folder, "jdk-26", "26.0.1")

    monkeypatch.setenv("JAVA_HOME", old)
    assert cache_java_home((str(jvm_folder),)) == newest
    monkeypatch.setenv("JAVA_HOME", recent)
    assert cache_java_home((str(jvm_folder),)) == recent  # the user's own JDK when it can use a cache
    monkeypatch.setenv("JAVA_HOME", old)
    assert cache_java_home((str(tmp_path / "only-old"),)) is None


def test_a_session_starts_from_the_cache_only_when_there_is_one_and_never_when_switched_off(
        cache_on, monkeypatch, tmp_path):
    home = fake_jdk(tmp_path, "jdk-25", "25.0.3")
    monkeypatch.setenv("JAVA_HOME", home)
    log4j = f"-Dlog4j2.configurationFile={LOG4J_FILE}"

    assert driver_jvm(True) == DriverJvm(None, (log4j,))  # no cache yet: the JVM as before
    with open(cache_path(home), "wb"):
        pass
    started = driver_jvm(True)
    assert (started.java_home, started.cache) == (home, cache_path(home))
    assert started.options[:2] == (log4j, f"-XX:AOTCache={cache_path(home)}")
    assert driver_jvm(False) == DriverJvm(None, (log4j,))  # the config's spark.jvm_cache: false

    monkeypatch.setenv(SWITCH, "record")
    recording = driver_jvm(True)
    assert recording.record_to == f"{cache_path(home)}.{os.getpid()}.partial"
    assert f"-XX:AOTCacheOutput={recording.record_to}" in recording.options

    monkeypatch.setenv(SWITCH, "off")
    assert driver_jvm(True) == DriverJvm(None, (log4j,))
    monkeypatch.setenv("SPARK_CONF_DIR", str(tmp_path))  # the user's conf dir gives the logging
    assert driver_jvm(True).options == ()


def test_the_cache_is_keyed_by_the_jdk_build(cache_on, tmp_path):
    home = fake_jdk(tmp_path, "jdk", "25.0.3")
    before = cache_path(home)
    (tmp_path / "jdk" / "release").write_text('JAVA_VERSION="25.0.4"\n')  # the JDK updated in place
    assert cache_path(home) != before
    assert os.path.dirname(before) == str(tmp_path / "cache")


def test_a_cache_the_jvm_cannot_use_is_skipped_without_a_word(cache_on, monkeypatch):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    home = cache_java_home()
    if home is None:
        pytest.skip("no JDK 25 or later on this machine")
    with open(cache_path(home), "wb") as handle:
        handle.write(b"not an AOT cache")
    started = driver_jvm(True)
    assert started.cache == cache_path(home)

    java = subprocess.run([os.path.join(home, "bin", "java"), *started.options, "-version"],
                          capture_output=True, text=True, check=False)
    assert java.returncode == 0, java.stderr
    assert "aot" not in java.stderr.lower() and "cds" not in java.stderr.lower(), java.stderr
    assert f'version "{java_version(home)}' in java.stderr


def test_a_failed_recording_run_leaves_no_cache_and_says_so(cache_on, monkeypatch, tmp_path, capfd):
    monkeypatch.delenv("JAVA_HOME", raising=False)
    home = cache_java_home()
    if home is None:
        pytest.skip("no JDK 25 or later on this machine")
    # A config that does not exist: the recording job exits 2 before it starts any JVM.
    assert ensure_cache(str(tmp_path / "missing.yaml"), cwd=str(tmp_path)) is None
    assert not os.path.exists(cache_path(home))
    assert "no driver JVM cache (the recording run exited 2)" in capfd.readouterr().err
