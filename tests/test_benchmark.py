"""Smoke test of scripts/benchmark.py on tiny data: every workload runs and the results add up.

No timing is asserted (speed is measured by the benchmark itself, see benchmarks/README.md); this checks
that the numbers it reports are the ones it measured and that the peer and our jobs segment the same customers.
The benchmark's main() runs as on the command line, except that the Spark workloads (generate, the floors,
ours) run in the test session instead of a fresh JVM each; the peer, which starts no JVM, runs in its own
process as in a real benchmark.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import measure, report, workloads
from custseg.platform.runs import RunRecord
from scripts import benchmark

SMALL_MODEL = ["model.k_min=2", "model.k_max=3", "model.stability_runs=1", "model.n_init=1"]


def in_session(spark) -> benchmark.Runner:
    """run_scale's runner: Spark workloads in this session, the peer through the usual worker process."""
    def run(workload: str, data_dir: Path, out_dir: Path, args, customers: int) -> dict:
        if workload == "peer":
            return benchmark.run_worker(workload, data_dir, out_dir, args, customers)
        conf = workloads.bench_conf(data_dir, out_dir, args.driver_memory, args.overrides)
        result = benchmark.run_in_session(spark, workload, conf, data_dir, customers, args.transactions_per_customer)
        return {**result, "python_peak_mb": measure.python_peak_mb()}
    return run


@pytest.fixture(scope="module")
def results(spark, tmp_path_factory):
    base = tmp_path_factory.mktemp("bench")
    argv = ["--scales", "3000", "--transactions-per-customer", "20", "--driver-memory", "1g",
            "--data-dir", str(base / "data"), "--work-dir", str(base / "work"), "--results-dir", str(base / "results"),
            "--name", "smoke", "--no-demo", *[f"--set={o}" for o in SMALL_MODEL]]
    assert benchmark.main(argv, run=in_session(spark)) == 0
    return {"json": json.loads((base / "results" / "smoke.json").read_text()),
            "md": (base / "results" / "smoke.md").read_text(), "work": base / "work" / "3k"}


def test_every_workload_ran_on_the_generated_scale(results):
    (scale,) = results["json"]["scales"]
    assert scale["label"] == "3k" and scale["customers"] == 150
    rows = scale["generate"]["dataset"]["rows"]
    assert rows["customers"] >= 150 and rows["transactions"] > 2000
    for workload in ("floor", "contract_floor", "ours", "peer"):
        stages = scale[workload]["stages"]
        assert stages["total"] > 0 and "error" not in scale[workload]
    ours = scale["ours"]["stages"]
    assert set(ours) >= {"ingest_validate", "features", "k_selection", "final_fit", "profiles_and_writes", "report"}
    assert ours["total"] >= sum(ours[s] for s in ("features", "k_selection", "final_fit", "report"))
    assert scale["ours"]["jvm_heap_peak_mb"] > 0 and scale["ours"]["python_peak_mb"] > 0


def test_summary_ratios_are_computed_from_the_measured_totals(results):
    (scale,) = results["json"]["scales"]
    (row,) = results["json"]["summary"]["rows"]
    ours, floor, peer = (scale[w]["stages"]["total"] for w in ("ours", "floor", "peer"))
    assert row["ours_over_floor"] == round(ours / floor, 2)
    assert row["ours_over_peer"] == round(ours / peer, 2)
    contract_floor = scale["contract_floor"]["stages"]["total"]
    assert row["contract_floor_over_floor"] == round(contract_floor / floor, 2)
    assert row["ours_over_contract_floor"] == round(ours / contract_floor, 2)
    assert row["transactions"] == scale["generate"]["dataset"]["rows"]["transactions"]
    machine = results["json"]["machine"]
    assert machine["cores"] >= 1 and machine["spark"] and "openjdk" in machine["java"].lower()
    assert f"| 3k | {row['transactions']:,} |" in results["md"]


def test_each_spark_workload_reports_the_jobs_stages_tasks_and_delta_commits_it_made(results):
    (scale,) = results["json"]["scales"]
    floor, ours = scale["floor"]["work"], scale["ours"]["work"]
    assert floor["delta_commits"] == 0 and floor["spark_jobs"] >= 1  # the floor writes Parquet
    for work in (floor, ours):  # every stage that ran had at least one task
        assert work["spark_tasks"] >= work["spark_stages"] > 0 and work["spark_jobs"] > 0, work
    # Only ours writes Delta tables into the work folder: its commits are every table's versions 0 .. latest.
    latest: dict[Path, int] = {}
    for path in results["work"].glob("**/_delta_log/*.json"):
        if path.stem.isdigit():
            latest[path.parent] = max(latest.get(path.parent, -1), int(path.stem))
    assert latest and ours["delta_commits"] == sum(v + 1 for v in latest.values())
    assert f"| 3k | ours | {ours['spark_jobs']:,} | {ours['spark_stages']:,} |" in results["md"]


def test_contract_floor_writes_each_customers_count_sum_and_gaps_without_duplicate_ids(results):
    no_id = "<null>"  # the dirty rows without a customer id form a group of their own, as in Spark
    transactions = pd.read_parquet(results["work"].parent.parent / "data" / "3k" / "transactions")
    transactions = transactions[~transactions["transaction_id"].duplicated(keep=False)]  # every copy dropped
    transactions = transactions.fillna({"customer_id": no_id}).sort_values(["customer_id", "transaction_ts"])
    gaps = transactions.groupby("customer_id")["transaction_ts"].diff().dt.total_seconds() / 86400.0
    expected = transactions.assign(gap_days=gaps).groupby("customer_id").agg(
        n=("amount", "size"), amount=("amount", "sum"), gap_mean_days=("gap_days", "mean"),
        gap_std_days=("gap_days", "std"))
    written = pd.read_parquet(results["work"] / "contract_floor").fillna({"customer_id": no_id})
    written = written.set_index("customer_id").sort_index()
    pd.testing.assert_frame_equal(written[expected.columns], expected.sort_index(), check_dtype=False,
                                  check_names=False, rtol=1e-9)


def test_peer_and_ours_segment_the_same_customers(spark, results):
    ours = spark.read.format("delta").load(str(results["work"] / "segment_assignments")).toPandas()
    peer = pd.read_parquet(results["work"] / "peer" / "assignments.parquet")
    assert set(ours["customer_id"]) == set(peer["customer_id"])
    assert ours["segment_id"].nunique() == scale_k(results) and peer["segment_id"].nunique() in (2, 3)


def scale_k(results) -> int:
    return results["json"]["scales"][0]["ours"]["stages"]["chosen_k"]


def test_only_the_peer_running_out_of_memory_does_not_fail_the_run():
    is_failure = benchmark.is_failure
    out_of_memory = {"error": "killed by SIGKILL (exit -9): out of memory", "out_of_memory": True}
    assert not is_failure("peer", out_of_memory)
    assert is_failure("ours", out_of_memory) and is_failure("floor", out_of_memory)
    assert is_failure("peer", {"error": "exit code 1: ['ValueError']"})
    assert not is_failure("ours", {"stages": {"total": 1.0}})


def test_the_demo_reads_its_stages_from_the_jobs_log_lines(caplog):
    """The demo runs in its own process; what it reports of its stages comes from the lines the jobs log."""
    record = RunRecord(run_id="r1", job="build_features", as_of=dt.date(2026, 1, 1), params={})
    with caplog.at_level(logging.INFO, logger="custseg.platform.runs"):
        record.stage_done("ingest_validate")
        record.stage_done("features", "written to file:/tmp/out in/customer_features")
    assert benchmark.stage_seconds(caplog.text) == {
        "build_features.ingest_validate": round(record.timings["ingest_validate"], 1),
        "build_features.features": round(record.timings["features"], 1)}
    demo = {"command": "jobs/run_pipeline.py", "rounds": [
        {"seconds": 50.0, "stages": {"build_features.features": 20.0}, "delta_commits": 16},
        {"seconds": 48.5, "stages": {}}]}  # a round of results written before commits were counted
    text = "\n".join(report.demo_lines(demo))
    assert "50.0 s (16 Delta commits), 48.5 s." in text and "| build_features.features | 20.00 |" in text
    assert "Outside these stages (JVM and session start, sample check, report): 30.0 s." in text
    assert "failed, exit code 1" in "\n".join(report.demo_lines({"command": "x", "error": "exit code 1: []"}))
