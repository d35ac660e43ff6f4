"""One Spark session for the whole test run: local[2], UI off, few partitions, Delta, temp warehouse."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from custseg.config import SparkConf  # noqa: E402
from custseg.platform.session import build_session  # noqa: E402


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    warehouse = tmp_path_factory.mktemp("warehouse")
    conf = SparkConf(
        master="local[2]",
        app_name="custseg-tests",
        shuffle_partitions=2,
        driver_memory="3g",
        use_delta_pip=True,
        extra={
            "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": str(warehouse),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={warehouse}",
            "spark.default.parallelism": "2",
            "spark.databricks.delta.snapshotPartitions": "2",
        },
    )
    session = build_session(conf)
    yield session
    session.stop()
