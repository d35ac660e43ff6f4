"""A run is all or nothing for readers: a job killed after writing some outputs leaves the date's previous run
visible (the views and the jobs' own readers follow the runs table), and rerunning it completes it."""
from __future__ import annotations

import copy
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from pyspark.sql import functions as F

from custseg.bi import views as bi
from custseg.config import parse_config
from custseg.contract import outputs
from custseg.flows.train_segments import run_train_segments
from custseg.platform.runs import latest_run_id
from custseg.platform.storage import read_delta
from golden import AS_OF

ROOT = Path(__file__).resolve().parents[1]


def run_ids(spark, conf, table):
    df = read_delta(spark, conf.table_path(table)).filter(F.col("as_of_date") == F.lit(AS_OF))
    return {r["run_id"] for r in df.select("run_id").distinct().collect()}


def view(spark, name, out):
    return spark.sql(bi.render_sql(name, str(out)))


def test_a_killed_training_run_is_never_seen_and_a_rerun_completes_it(spark, golden, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(golden.out_dir, out, ignore=shutil.ignore_patterns("reports"))
    raw = copy.deepcopy(golden.conf.raw)
    raw["output"] = {"path": str(out)}
    raw["model"]["k"] = 5  # another configuration: another run of the same date
    conf_file = tmp_path / "other.yaml"
    conf_file.write_text(yaml.safe_dump(raw))
    conf = parse_config(raw)
    previous = golden.train.run_id

    killed = subprocess.run([sys.executable, "jobs/train_segments.py", "--conf", str(conf_file)], cwd=ROOT,
                            env={**os.environ, "CUSTSEG_CRASH_AFTER": outputs.SEGMENT_ASSIGNMENTS},
                            capture_output=True, text=True, timeout=900)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    runs_df = read_delta(spark, conf.table_path(outputs.RUNS_TABLE)).filter("job = 'train_segments'")
    statuses = {r["run_id"]: r["status"] for r in runs_df.filter(F.col("as_of_date") == F.lit(AS_OF)).collect()}
    new = next(run for run in statuses if run != previous)
    assert statuses == {previous: "succeeded", new: "started"}
    assert run_ids(spark, conf, outputs.SEGMENT_ASSIGNMENTS) == {previous, new}  # both in the raw table...
    assert run_ids(spark, conf, outputs.SEGMENT_CENTROIDS) == {previous}
    # ...but every reader that follows the runs table sees the previous run only, whole.
    assert latest_run_id(spark, str(out)) == previous
    overview = view(spark, "segment_overview", out).filter(F.col("as_of_date") == F.lit(AS_OF))
    assert {r["run_id"] for r in overview.collect()} == {previous}
    history = view(spark, "segment_history", out).filter(F.col("as_of_date") == F.lit(AS_OF))
    assert {r["model_run_id"] for r in history.collect()} == {previous}
    assert history.count() == golden.table(spark, outputs.SEGMENT_ASSIGNMENTS, AS_OF).count()
    killed_rows = sorted(read_delta(spark, conf.table_path(outputs.SEGMENT_ASSIGNMENTS))
                         .filter(F.col("run_id") == new).drop("run_id").collect())

    record = run_train_segments(spark, conf)

    assert record.run_id == new
    for table in outputs.SEGMENT_TABLES:
        if table != outputs.SEGMENT_MIGRATION:  # no rows on the first date: nothing earlier to compare with
            assert run_ids(spark, conf, table) == {new}, table
    rerun_rows = sorted(read_delta(spark, conf.table_path(outputs.SEGMENT_ASSIGNMENTS))
                        .filter(F.col("as_of_date") == F.lit(AS_OF)).drop("run_id").collect())
    assert rerun_rows == killed_rows  # the rerun writes what the killed run had written: deterministic
    overview = view(spark, "segment_overview", out).filter(F.col("as_of_date") == F.lit(AS_OF))
    assert {r["run_id"] for r in overview.collect()} == {new}
