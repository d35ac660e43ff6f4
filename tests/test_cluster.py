"""spark-submit to a real standalone cluster (a master and two 1-core workers on this machine).

Deselect with `-m "not cluster"`. Checks that the packaged library reaches the executors and that the
cluster run computes the same features, K and segments for every customer as the in-process local run
on the same data and configuration.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import yaml
from chispa import assert_df_equality
from custseg_sample.datagen import generate, write_dataset

from custseg.config import apply_overrides, parse_config
from custseg.contract import outputs as tables
from custseg.flows.build_features import run_build_features
from custseg.flows.train_segments import run_train_segments
from custseg.platform.storage import read_delta

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"
AS_OF = dt.date(2026, 1, 1)
INPUTS = ("customers", "transactions", "loans", "loan_payments")
SMALL_MODEL = ["model.k_min=4", "model.k_max=5", "model.stability_runs=1"]
ZIP = ROOT / "dist" / "custseg_lib.zip"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_logged(cmd: list[str], env: dict[str, str], log_file: Path) -> str:
    """Run a command from the repo root, keep its output in log_file, fail with the output's tail."""
    with log_file.open("w") as handle:
        result = subprocess.run(cmd, cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT, check=False)
    output = log_file.read_text()
    assert result.returncode == 0, f"{' '.join(cmd)} exited {result.returncode}:\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Start the cluster with the project's scripts on free ports; always stop it (by its pids)."""
    state = tmp_path_factory.mktemp("cluster")
    env = {**os.environ, "CUSTSEG_CLUSTER_DIR": str(state), "SPARK_MASTER_PORT": str(free_port()),
           "SPARK_MASTER_WEBUI_PORT": str(free_port()), "CUSTSEG_WORKER_WEBUI_PORT": "0"}
    try:
        output = run_logged(["bash", str(SCRIPTS / "start_local_cluster.sh")], env, state / "start.log")
        master = output.strip().splitlines()[-1]
        assert master == f"spark://127.0.0.1:{env['SPARK_MASTER_PORT']}"
        yield {"master": master, "env": env, "json": f"http://127.0.0.1:{env['SPARK_MASTER_WEBUI_PORT']}/json/"}
    finally:
        subprocess.run(["bash", str(SCRIPTS / "stop_local_cluster.sh")], cwd=ROOT, env=env, check=False)
    assert not list((state / "pids").glob("*.pid")), "stop_local_cluster.sh left pid files behind"


def master_state(cluster) -> dict:
    with urllib.request.urlopen(cluster["json"], timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def data_dir(spark, tmp_path_factory):
    path = tmp_path_factory.mktemp("cluster_data")
    write_dataset(generate(spark, 200, 20, AS_OF, seed=7, dirt_rate=0.03), str(path), "delta")
    return path


def cluster_conf_overrides(data_dir: Path, out_dir: Path) -> list[str]:
    return [f"output.path={out_dir}", *[f"inputs.{t}.path={data_dir / t}" for t in INPUTS], *SMALL_MODEL]


def test_cluster_has_two_workers_with_one_core_each(cluster):
    workers = [w for w in master_state(cluster)["workers"] if w["state"] == "ALIVE"]
    assert [w["cores"] for w in workers] == [1, 1]
    assert all(w["host"] == "127.0.0.1" for w in workers)


def test_executors_import_custseg_from_the_zip(cluster, tmp_path):
    subprocess.run(["bash", str(SCRIPTS / "package.sh")], cwd=ROOT, check=True)
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.appName('custseg-probe').getOrCreate()\n"
        "rdd = spark.sparkContext.parallelize(range(4), 4)\n"
        "files = rdd.map(lambda _: __import__('custseg.contract.outputs').tables.__file__).distinct().collect()\n"
        "print('CUSTSEG_FILES=' + '|'.join(sorted(files)))\n"
        "spark.stop()\n")
    spark_submit = Path(sys.executable).parent / "spark-submit"
    env = {**cluster["env"], "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1"}
    output = run_logged([str(spark_submit), "--master", cluster["master"], "--py-files", str(ZIP), str(probe)],
                        env, tmp_path / "probe.log")
    files = next(line for line in output.splitlines() if line.startswith("CUSTSEG_FILES=")).split("=", 1)[1]
    # Each executor imports its own downloaded copy of the zip, not the checkout's lib/ folder.
    assert files and all(f.endswith("custseg_lib.zip/custseg/tables.py") for f in files.split("|")), files


@pytest.fixture(scope="module")
def both_runs(spark, cluster, data_dir, tmp_path_factory):
    """run_pipeline spark-submitted to the cluster, and the same flow in this process (local[2])."""
    base = tmp_path_factory.mktemp("cluster_vs_local")
    cluster_out, local_out = base / "cluster_out", base / "local_out"
    args = [f"--set={item}" for item in cluster_conf_overrides(data_dir, cluster_out)]
    env = {**cluster["env"], "SPARK_MASTER": cluster["master"]}
    log = run_logged(["bash", str(SCRIPTS / "submit.sh"), "run_pipeline", *args], env, base / "submit.log")

    # The same conf file and overrides, another output folder.
    raw = yaml.safe_load((ROOT / "conf" / "cluster.yaml").read_text())
    local_conf = parse_config(apply_overrides(raw, cluster_conf_overrides(data_dir, local_out)))
    run_build_features(spark, local_conf)
    run_train_segments(spark, local_conf)
    return {"cluster": cluster_out, "local": local_out, "log": log, "conf": local_conf}


def read_both(spark, both_runs, table: str, columns: list[str]) -> tuple:
    return tuple(read_delta(spark, str(both_runs[side] / table)).select(columns) for side in ("cluster", "local"))


def test_the_submitted_job_ran_on_both_workers(cluster, both_runs):
    assert f"master={cluster['master']}" in both_runs["log"]  # the job's session used the standalone master
    apps = [a for a in master_state(cluster)["completedapps"] if a["name"] == "custseg-cluster"]
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED"
    work = Path(cluster["env"]["CUSTSEG_CLUSTER_DIR"]) / "work"
    assert (work / "worker1" / apps[0]["id"]).is_dir() and (work / "worker2" / apps[0]["id"]).is_dir()


def test_cluster_and_local_compute_the_same_clustering_features_and_k(spark, both_runs):
    columns = ["customer_id", *both_runs["conf"].model.features]
    cluster_df, local_df = read_both(spark, both_runs, "customer_features", columns)
    assert local_df.count() >= 190  # the 200 generated customers less the rejected duplicates
    assert_df_equality(cluster_df, local_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)
    cluster_k, local_k = read_both(spark, both_runs, tables.K_SELECTION, ["k", "is_chosen", "segments"])
    assert_df_equality(cluster_k, local_k, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


def test_cluster_and_local_put_every_customer_in_the_same_named_segment(spark, both_runs):
    # Names are unique within a run, so equal names per customer means the same grouping too.
    cluster_df, local_df = read_both(spark, both_runs, tables.SEGMENT_ASSIGNMENTS, ["customer_id", "segment_name"])
    assert local_df.count() >= 190
    assert_df_equality(cluster_df, local_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


def test_cluster_and_local_assign_identical_segment_ids(spark, both_runs):
    columns = ["customer_id", "segment_id", "segment_name"]
    cluster_df, local_df = read_both(spark, both_runs, tables.SEGMENT_ASSIGNMENTS, columns)
    assert_df_equality(cluster_df, local_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)
