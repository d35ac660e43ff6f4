"""One Spark session per test process (tests/helpers.py: local[2], UI off, few partitions, no code generation,
Delta, temp warehouse), and the golden run on it (tests/golden.py): one small flow shared by the end-to-end, BI,
report, peer and cluster tests.

scripts/run_tests.sh runs the tests in two processes (pytest-xdist, `--dist loadgroup`): the tests that read the
golden run, and the cluster tests beside it, form one group that one process runs from the start; the other
process takes every other test meanwhile. Much of a small Spark job is one driver thread planning and committing,
so one session alone leaves the second core idle.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from custseg.platform import driver_jvm
from custseg.platform.session import build_session
from golden import GoldenRun, run_golden, write_inputs
from helpers import session_conf
from standalone import ClusterJobs

# The MLflow tracking tests log to a local file store, which MLflow 3 serves only on request (a database backend
# needs more than mlflow-skinny).
os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
# No driver JVM cache nor JDK choice (custseg.platform.driver_jvm) in the tests' JVMs and jobs: they start the
# same whatever an earlier run left on the machine.
os.environ[driver_jvm.SWITCH] = "off"


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    session = build_session(session_conf(str(tmp_path_factory.mktemp("warehouse"))))
    yield session
    session.stop()


@pytest.fixture(scope="session")
def golden_inputs(spark, tmp_path_factory) -> Path:
    """The golden run's generated inputs (Delta tables and truth/), written once."""
    return write_inputs(spark, tmp_path_factory.mktemp("golden_inputs"))


@pytest.fixture(scope="session")
def golden(spark, golden_inputs, cluster_jobs, tmp_path_factory) -> GoldenRun:
    """Features -> segments -> BI views -> a later date scored -> the report, once, on golden_inputs (with the
    cluster's submits started beside it when the cluster tests are selected)."""
    return run_golden(spark, golden_inputs, tmp_path_factory.mktemp("golden_out"))


# Tests that need any of these share the golden run, so they run in one process: the golden group.
GOLDEN_FIXTURES = {"golden", "golden_inputs", "cluster_jobs"}


def is_cluster_test(item: pytest.Item) -> bool:
    return item.get_closest_marker("cluster") is not None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The cluster tests last: their submits run in the background meanwhile (cluster_jobs). For pytest-xdist's
    loadgroup distribution, the golden group, and each other module whole (its module fixtures built once)."""
    items.sort(key=is_cluster_test)  # stable: every other test keeps its place
    for item in items:
        golden = GOLDEN_FIXTURES & set(getattr(item, "fixturenames", ()))
        item.add_marker(pytest.mark.xdist_group("golden" if golden else item.path.stem))


@pytest.fixture(scope="session")
def cluster_jobs(request, golden_inputs, tmp_path_factory) -> Iterator[ClusterJobs | None]:
    """When cluster tests are selected: as soon as the golden inputs exist, a standalone cluster, the probe and the
    run_pipeline submit of tests/test_cluster.py in a background thread (tests/standalone.py); stopped at the end."""
    if not any(is_cluster_test(item) for item in request.session.items):
        yield None
        return
    jobs = ClusterJobs(golden_inputs, tmp_path_factory.mktemp("cluster_jobs"))
    yield jobs
    jobs.close()
