"""The four timed workloads, each run in its own process by scripts/benchmark.py.

- floor: the least any Spark job on these inputs costs: read the transactions once, one grouped
  aggregation per customer (count, sum, max timestamp), write the result.
- contract_floor: the floor plus the two things no job meeting shared/DESIGN.md can leave out: the
  duplicate-key check (a shuffle of key hashes) and the lag window per customer in time order (the
  gap since the previous transaction), so the transactions are shuffled and sorted.
- ours: the real jobs (build_features, train_segments, segment_report) with their per-stage timings.
- peer: benchmarks/peer.py, pandas + scikit-learn on one machine, same features and K sweep.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

from custseg.config import Config, load_config
from custseg.contract.inputs import INPUT_TABLES

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 1, 1)
SEED = 42
INPUTS = INPUT_TABLES
MARKER = "_dataset.json"


def bench_conf(data_dir: Path, out_dir: Path, driver_memory: str, extra: list[str] | None = None) -> Config:
    """conf/local.yaml on Parquet inputs in data_dir, outputs in out_dir; the same for every workload."""
    overrides = [f"output.path={out_dir}", f"spark.driver_memory={driver_memory}", "spark.app_name=custseg-benchmark",
                 f"as_of_date={AS_OF}", f"seed={SEED}",
                 *[f"inputs.{t}.path={data_dir / t}" for t in INPUTS], *[f"inputs.{t}.format=parquet" for t in INPUTS],
                 *(extra or [])]
    return load_config(ROOT / "conf" / "local.yaml", overrides)


def ensure_dataset(spark, data_dir: Path, customers: int, transactions_per_customer: int) -> dict:
    """Generate the inputs as Parquet once; a marker with the parameters lets later runs reuse them."""
    from custseg_sample.datagen import generate, write_dataset

    params = {"customers": customers, "transactions_per_customer": transactions_per_customer,
              "as_of": AS_OF.isoformat(), "seed": SEED, "dirt_rate": 0.01, "tables": list(INPUTS)}
    marker = data_dir / MARKER
    if marker.exists() and json.loads(marker.read_text()).get("params") == params:
        return json.loads(marker.read_text())
    started = time.perf_counter()
    data = generate(spark, customers, transactions_per_customer, AS_OF, seed=SEED, dirt_rate=0.01)
    write_dataset(data, str(data_dir), "parquet")
    rows = {t: spark.read.parquet(str(data_dir / t)).count() for t in INPUTS}
    info = {"params": params, "rows": rows, "generate_seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info, indent=2))
    return info


def run_floor(spark, conf: Config) -> dict[str, float]:
    from pyspark.sql import functions as F

    started = time.perf_counter()
    transactions_df = spark.read.parquet(conf.inputs["transactions"].path)
    (transactions_df.groupBy("customer_id")
     .agg(F.count("*").alias("n"), F.sum("amount").alias("amount"), F.max("transaction_ts").alias("last_ts"))
     .write.mode("overwrite").parquet(str(Path(conf.output_path) / "floor")))
    return {"total": round(time.perf_counter() - started, 3)}


def run_contract_floor(spark, conf: Config) -> dict[str, float]:
    """Written on its own, like the floor, not with custseg's validation and features: a reference, not ours."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    started = time.perf_counter()
    transactions_df = spark.read.parquet(conf.inputs["transactions"].path).withColumn("_hash", F.xxhash64(
        "transaction_id"))
    rows_per_hash = F.count(F.lit(1)).over(Window.partitionBy("_hash"))
    shared_df = (transactions_df.select("_hash").withColumn("_rows", rows_per_hash).filter(F.col("_rows") > 1)
                 .select("_hash").distinct())
    unique_df = transactions_df.join(F.broadcast(shared_df), on="_hash", how="left_anti")  # drops every copy
    in_time_order = Window.partitionBy("customer_id").orderBy("transaction_ts")
    gap_days = (F.col("transaction_ts").cast("double") - F.lag("transaction_ts").over(in_time_order).cast("double")
                ) / 86400.0
    (unique_df.select("customer_id", "transaction_ts", "amount", gap_days.alias("gap_days"))
     .groupBy("customer_id")
     .agg(F.count("*").alias("n"), F.sum("amount").alias("amount"), F.max("transaction_ts").alias("last_ts"),
          F.mean("gap_days").alias("gap_mean_days"), F.stddev("gap_days").alias("gap_std_days"))
     .write.mode("overwrite").parquet(str(Path(conf.output_path) / "contract_floor")))
    return {"total": round(time.perf_counter() - started, 3)}


def run_ours(spark, conf: Config) -> dict[str, float]:
    """The jobs as run_pipeline runs them; stage seconds come from the runs table's timings."""
    from custseg.flows.build_features import run_build_features
    from custseg.flows.run_pipeline import report_of_held_run
    from custseg.flows.train_segments import run_train_segments
    from custseg.platform.session import apply_small_input_settings

    started = time.perf_counter()
    apply_small_input_settings(spark, conf)  # as the jobs' command line does
    features = run_build_features(spark, conf)
    train = run_train_segments(spark, conf, hold_report=True, ledger=features.ledger_at_end)  # as run_pipeline
    before_report = time.perf_counter()
    report_of_held_run(spark, conf, features, train)  # as run_pipeline
    stages = {**features.timings, **train.timings, "report": round(time.perf_counter() - before_report, 3)}
    stages["total"] = round(time.perf_counter() - started, 3)
    stages["chosen_k"] = train.metrics["chosen_k"]
    stages["customers"] = train.counts["customers"]
    return stages


def run_peer(conf: Config) -> dict[str, float]:
    from benchmarks.peer import run_peer as peer

    paths = {t: conf.inputs[t].path for t in INPUTS}
    return peer(paths, str(Path(conf.output_path) / "peer"), conf.as_of_date, conf)
