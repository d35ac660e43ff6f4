"""spark-submit to a real standalone cluster (a master and two 1-core workers on this machine).

Deselect with `-m "not cluster"`. Checks that the packaged library reaches the executors and that
run_pipeline, submitted with conf/cluster.yaml on the golden run's inputs and model settings
(tests/golden.py), computes the same features, K and segments for every customer as the golden run did
in this process (local[2]). The cluster and both submits start with the session and run in the background
(tests/standalone.py, the cluster_jobs fixture); these tests run last, wait for them and check their results.
"""
from __future__ import annotations

import dataclasses
import json
import urllib.request
from pathlib import Path

import pytest
from chispa import assert_df_equality

from custseg.config import Config, load_config
from custseg.contract import outputs as tables
from custseg.platform.storage import read_delta
from golden import AS_OF

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
# What may differ between the submitted run and the golden run: how Spark runs and where outputs go.
NOT_THE_RUNS_SETTINGS = {"spark", "output_path", "output_database", "sample_data", "raw"}


@pytest.fixture(scope="module")
def cluster(cluster_jobs):
    """The cluster scripts/start_local_cluster.sh started on free ports (stopped by its pids at the session's end)."""
    cluster = cluster_jobs.cluster.result()
    assert cluster.master == f"spark://127.0.0.1:{cluster.env['SPARK_MASTER_PORT']}"
    return cluster


def master_state(cluster) -> dict:
    with urllib.request.urlopen(cluster.json, timeout=10) as response:
        return json.load(response)


def test_cluster_has_two_workers_with_one_core_each(cluster):
    workers = [w for w in master_state(cluster)["workers"] if w["state"] == "ALIVE"]
    assert [w["cores"] for w in workers] == [1, 1]
    assert all(w["host"] == "127.0.0.1" for w in workers)


def test_executors_import_custseg_from_the_zip(cluster, cluster_jobs):
    output = cluster_jobs.probe.result()
    files = next(line for line in output.splitlines() if line.startswith("CUSTSEG_FILES=")).split("=", 1)[1]
    # Each executor imports its own downloaded copy of the zip, not the checkout's lib/ folder.
    assert files and all(f.endswith("custseg_lib.zip/custseg/contract/outputs.py") for f in files.split("|")), files


@pytest.fixture(scope="module")
def both_runs(cluster, cluster_jobs, golden):
    """run_pipeline spark-submitted to the cluster with conf/cluster.yaml on the golden run's inputs and model
    settings; "local" is the golden run's output, trained in this process (local[2])."""
    submitted = cluster_jobs.pipeline.result()
    # The cluster's conf file with those overrides is the golden run's configuration, but for Spark and outputs.
    submitted_conf = load_config(ROOT / "conf" / "cluster.yaml", submitted.overrides)
    for field in {f.name for f in dataclasses.fields(Config)} - NOT_THE_RUNS_SETTINGS:
        assert getattr(submitted_conf, field) == getattr(golden.conf, field), field
    return {"cluster": submitted.out_dir, "local": golden.out_dir, "log": submitted.log, "conf": golden.conf}


def read_both(spark, both_runs, table: str, columns: list[str]) -> tuple:
    """The table's AS_OF rows in each run (the golden run also scored a later date)."""
    return tuple(read_delta(spark, str(both_runs[side] / table)).filter(f"as_of_date = DATE'{AS_OF}'").select(columns)
                 for side in ("cluster", "local"))


def test_the_submitted_job_ran_on_both_workers(cluster, both_runs):
    assert f"master={cluster.master}" in both_runs["log"]  # the job's session used the standalone master
    apps = [a for a in master_state(cluster)["completedapps"] if a["name"] == "custseg-cluster"]
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED"
    work = cluster.state / "work"
    assert (work / "worker1" / apps[0]["id"]).is_dir() and (work / "worker2" / apps[0]["id"]).is_dir()


def test_cluster_and_local_compute_the_same_clustering_features_and_k(spark, both_runs):
    columns = ["customer_id", *both_runs["conf"].model.features]
    cluster_df, local_df = read_both(spark, both_runs, "customer_features", columns)
    assert local_df.count() >= 285  # the golden run's 300 generated customers less the rejected ones
    assert_df_equality(cluster_df, local_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)
    cluster_k, local_k = read_both(spark, both_runs, tables.K_SELECTION, ["k", "is_chosen", "segments"])
    assert_df_equality(cluster_k, local_k, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


def test_cluster_and_local_put_every_customer_in_the_same_named_segment(spark, both_runs):
    # Names are unique within a run, so equal names per customer means the same grouping too.
    cluster_df, local_df = read_both(spark, both_runs, tables.SEGMENT_ASSIGNMENTS, ["customer_id", "segment_name"])
    assert local_df.count() >= 285
    assert_df_equality(cluster_df, local_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


def test_cluster_and_local_assign_identical_segment_ids(spark, both_runs):
    columns = ["customer_id", "segment_id", "segment_name"]
    cluster_df, local_df = read_both(spark, both_runs, tables.SEGMENT_ASSIGNMENTS, columns)
    assert_df_equality(cluster_df, local_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)
