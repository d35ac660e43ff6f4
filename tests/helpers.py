"""Shared by the test modules: a test configuration pointed at generated data and an output folder."""
from __future__ import annotations

from pathlib import Path

import yaml

from custseg.config import Config, SparkConf, apply_overrides, parse_config
from custseg.platform.session import LOCAL_CHECKPOINTS, SMALL_INPUT

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ("customers", "transactions", "loans", "loan_payments", "products")
# The golden run's model settings (tests/golden.py): K in 4..6, since the five planted personas need K up to 6,
# and one stability refit.
MODEL_OVERRIDES = ("model.k_min=4", "model.k_max=6", "model.stability_runs=1")
# Every JVM the tests start (the session's, a job in a subprocess, the cluster's) compiles with C1 only: their many
# small queries end before C2's optimisations pay back the CPU they cost to compile, CPU the cluster's JVMs and the
# session share on two cores. C1 alone gets a 48 MB code cache, which one flow fills ("CodeCache is full. Compiler
# has been disabled": everything after it is interpreted), so the cache is raised. They collect garbage with the
# serial collector: their heaps are small, and G1's concurrent marking threads take CPU from the other JVMs on the
# two cores (benchmarks/README.md). Speed only: same results.
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m -XX:+UseSerialGC"


def session_conf(warehouse: str, small_input: bool = True) -> SparkConf:
    """The test session's settings (tests/conftest.py); small_input=False for the benchmark that compares."""
    return SparkConf(
        master="local[2]",
        app_name="custseg-tests",
        shuffle_partitions=2,
        driver_memory="3g",
        use_delta_pip=True,
        extra={
            "spark.ui.enabled": "false",
            "spark.sql.warehouse.dir": warehouse,
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={warehouse} {JVM_OPTIONS}",
            "spark.default.parallelism": "2",
            "spark.databricks.delta.snapshotPartitions": "2",
            # The session runs as a job does on inputs this small (custseg.platform.session.SMALL_INPUT).
            **({**SMALL_INPUT, LOCAL_CHECKPOINTS: "true"} if small_input else {}),
        },
    )


def write_features(spark, conf: Config, rows) -> None:
    """customer_features rows of conf.as_of_date (every FEATURES column, customer_id), written as a succeeded
    build_features run writes them: for tests of the later flows that need no input tables."""
    from custseg.contract.outputs import FEATURES_TABLE
    from custseg.platform.runs import RunRecord
    from custseg.platform.storage import write_output

    build = RunRecord(run_id=f"build-{conf.as_of_date}", job="build_features", as_of=conf.as_of_date, params={})
    write_output(spark.createDataFrame(rows), FEATURES_TABLE, conf.output_path, build.run_id, conf.as_of_date)
    build.write(spark, conf.output_path, "succeeded")


def input_overrides(data_dir: Path) -> list[str]:
    """Read every input table from data_dir/<table>, a Delta table (as tests/golden.py writes them)."""
    return [o for t in INPUTS for o in (f"inputs.{t}.path={data_dir / t}", f"inputs.{t}.format=delta")]


def make_conf(data_dir: Path, out_dir: Path, extra: list[str] | None = None) -> Config:
    """conf/test.yaml reading data_dir/<table>, writing out_dir, with the golden run's model settings (and the
    tests' JVM options for a job a test starts in a process of its own with this configuration)."""
    raw = yaml.safe_load((ROOT / "conf" / "test.yaml").read_text())
    overrides = [f"output.path={out_dir}", *input_overrides(data_dir), *MODEL_OVERRIDES,
                 f"spark.conf.spark.driver.extraJavaOptions={JVM_OPTIONS}", *(extra or [])]
    return parse_config(apply_overrides(raw, overrides))
