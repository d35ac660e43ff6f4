"""End to end on the golden run (tests/golden.py): generated data with planted personas, real Delta tables on disk,
content checked. Runs that need other inputs or another configuration (a failing write, a missing column,
CSV) have their own small setup next to the test."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F
from sklearn.metrics import adjusted_rand_score

from custseg.contract import outputs as tables
from custseg.contract.outputs import FEATURES_TABLE
from custseg.flows.build_features import run_build_features
from custseg.flows.train_segments import START_TOLERANCE
from custseg.platform.locations import model_location
from custseg.platform.storage import InputError, read_delta
from golden import AS_OF, LATER
from helpers import INPUTS, make_conf

PII_MARKERS = ("@example.com", '"email"', '"name"', '"phone"')


def read(spark, conf, table):
    return read_delta(spark, conf.table_path(table))


def build_features_run(spark, golden, as_of=AS_OF):
    """The runs table row of the golden build_features run of a date."""
    record = golden.features if as_of == AS_OF else golden.later_features
    return golden.table(spark, "runs").filter((F.col("job") == "build_features") & (F.col("run_id") == record.run_id)
                                              & (F.col("as_of_date") == F.lit(as_of))).first()


def test_every_input_row_is_accepted_or_rejected_with_a_reason(spark, golden):
    record = golden.features
    rejected_df = golden.table(spark, "rejected_records", AS_OF).filter(F.col("run_id") == record.run_id)
    for table in INPUTS:
        read_n = golden.input(spark, table).count()
        counts = record.counts["inputs"][table]
        rejected_n = rejected_df.filter(F.col("source_table") == table).count()
        assert counts["read"] == read_n
        assert counts["accepted"] + rejected_n == read_n
    reasons = {r["reason"] for r in rejected_df.select("reason").distinct().collect()}
    assert {"duplicate_key", "missing_required_value", "unknown_customer", "zero_amount"} <= reasons
    # The counts per reason, observed while the rows were written, are those of the written rows.
    for row in rejected_df.groupBy("source_table", "reason").count().collect():
        assert record.counts["inputs"][row["source_table"]][f"rejected_{row['reason']}"] == row["count"]
    runs_row = build_features_run(spark, golden)
    assert json.loads(runs_row["counts_json"])["inputs"]["transactions"] == record.counts["inputs"]["transactions"]


def cached_plans(spark) -> bool:
    return not spark._jsparkSession.sharedState().cacheManager().isEmpty()


def test_a_failed_run_is_recorded_and_releases_its_caches(spark, golden, tmp_path):
    conf = make_conf(golden.data_dir, tmp_path / "out")
    blocker = Path(conf.table_path(FEATURES_TABLE))  # a file where the features table goes: its write fails
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a table")
    spark.catalog.clearCache()
    with pytest.raises(Exception):  # noqa: B017 - whatever Delta raises for a path that is a file
        run_build_features(spark, conf)
    assert not cached_plans(spark)  # the validation caches of the failed run are gone
    run = read(spark, conf, "runs").filter("job = 'build_features'").first()
    assert run["status"] == "failed" and run["error"]
    # Written before the failure: the same rows the successful golden run on the same inputs rejected.
    columns = ["source_table", "reason", "detail", "record_json"]
    failed_df = read(spark, conf, "rejected_records").filter(F.col("run_id") == run["run_id"]).select(columns)
    succeeded_df = (golden.table(spark, "rejected_records", AS_OF)
                    .filter(F.col("run_id") == golden.features.run_id).select(columns))
    assert_df_equality(failed_df, succeeded_df, ignore_row_order=True)


def test_features_match_an_independent_pandas_computation(spark, golden):
    transactions_df = golden.input(spark, "transactions")
    txn = transactions_df.toPandas()
    customers = golden.input(spark, "customers").toPandas()
    # The same definitions, written plainly: clean rows only, strictly before the as-of date.
    txn = txn.dropna(subset=["customer_id", "transaction_ts"])
    txn = txn[(txn["amount"] != 0) & txn["customer_id"].isin(customers["customer_id"])]
    txn = txn.drop_duplicates("transaction_id", keep=False)  # ids seen twice are ambiguous: skip those rows
    as_of_ts = pd.Timestamp(AS_OF)
    txn = txn[txn["transaction_ts"] < as_of_ts]
    window = txn[txn["transaction_ts"] >= as_of_ts - pd.Timedelta(days=365)]
    purchases = window[window["amount"] > 0]
    expected = pd.DataFrame({
        "frequency": purchases.groupby("customer_id").size(),
        "monetary": window.groupby("customer_id")["amount"].sum(),
        "last": txn[txn["amount"] > 0].groupby("customer_id")["transaction_ts"].max(),
    })
    features = golden.table(spark, FEATURES_TABLE, AS_OF).toPandas().set_index("customer_id")
    duplicated_ids = transactions_df.groupBy("transaction_id").count().filter("count > 1").count()
    assert duplicated_ids > 0  # the dirt is there; customers touched by it are compared separately below
    touched = set(transactions_df.groupBy("transaction_id")
                  .agg(F.count("*").alias("n"), F.first("customer_id").alias("c")).filter("n > 1")
                  .toPandas()["c"])
    checked = [c for c in expected.index if c not in touched and c in features.index][:60]
    assert len(checked) >= 40
    for customer in checked:
        row = features.loc[customer]
        assert row["frequency"] == expected.loc[customer, "frequency"] or (
            pd.isna(expected.loc[customer, "frequency"]) and row["frequency"] == 0), customer
        assert row["monetary"] == pytest.approx(expected.loc[customer, "monetary"], abs=1e-6), customer
        last = expected.loc[customer, "last"]
        if not pd.isna(last):
            assert row["recency_days"] == (AS_OF - last.date()).days, customer


def test_no_pii_in_any_output_and_no_protected_attribute_as_feature(spark, golden):
    for table in (FEATURES_TABLE, "rejected_records", tables.SEGMENT_ASSIGNMENTS, tables.SEGMENT_PROFILES,
                  tables.SEGMENT_FEATURE_STATS, tables.SEGMENT_CENTROIDS):
        df = golden.table(spark, table)
        assert not {"name", "email", "phone", "birth_date", "sex"} & set(df.columns), table
    records = [r["record_json"] for r in golden.table(spark, "rejected_records").select("record_json").collect()]
    assert records and not [r for r in records if any(m in r for m in PII_MARKERS)]
    used = {r["feature"] for r in golden.table(spark, tables.SEGMENT_CENTROIDS).select("feature").collect()}
    assert not used & set(golden.conf.protected_attributes)


def test_segments_recover_the_planted_personas(spark, golden):
    conf, record = golden.conf, golden.train
    joined = (golden.table(spark, tables.SEGMENT_ASSIGNMENTS, AS_OF)
              .join(golden.input(spark, "truth"), on="customer_id", how="inner").toPandas())
    assert adjusted_rand_score(joined["persona"], joined["segment_id"]) >= 0.9
    assert record.metrics["chosen_k"] in (5, 6)
    chosen = golden.table(spark, tables.K_SELECTION).filter("is_chosen").collect()
    assert len(chosen) == 1 and chosen[0]["k"] == record.metrics["chosen_k"] and chosen[0]["reason"]
    # Fewer Spark starts than model.n_init only when the centres are as good as the sweep's on its sample.
    starts, ratio = record.metrics["final_fit_starts"], record.metrics["final_fit_sample_sse_ratio"]
    assert 1 <= starts <= conf.model.n_init
    assert starts == conf.model.n_init or ratio <= 1 + START_TOLERANCE


@pytest.mark.parametrize("as_of", [AS_OF, LATER], ids=["trained", "scored"])
def test_every_customer_has_exactly_one_segment(spark, golden, as_of):
    features_n = golden.table(spark, FEATURES_TABLE, as_of).count()
    assignments_df = golden.table(spark, tables.SEGMENT_ASSIGNMENTS, as_of)
    assert features_n > 0
    assert assignments_df.count() == features_n
    assert assignments_df.select("customer_id").distinct().count() == features_n
    assert assignments_df.filter(F.col("segment_name").isNull()).count() == 0


def test_profiles_agree_with_assignments_and_features(spark, golden):
    profiles = golden.table(spark, tables.SEGMENT_PROFILES).toPandas()
    assignments = golden.table(spark, tables.SEGMENT_ASSIGNMENTS, AS_OF).toPandas()
    features = golden.table(spark, FEATURES_TABLE, AS_OF).toPandas()
    assert profiles["size"].sum() == len(assignments)
    assert profiles["share"].sum() == pytest.approx(1.0)
    joined = assignments.merge(features, on="customer_id")
    direct = joined.groupby("segment_id")["monetary"].mean()
    for _, row in profiles.iterrows():
        assert row["mean_monetary"] == pytest.approx(direct[row["segment_id"]], rel=1e-9)
        assert row["size"] == (assignments["segment_id"] == row["segment_id"]).sum()
    assert profiles["segment_name"].is_unique
    assert set(profiles["risk_tier"]) <= {"low", "medium", "high", "unrated"}
    stats = golden.table(spark, tables.SEGMENT_FEATURE_STATS).toPandas()
    credit = stats[stats["feature"] == "credit_score"].set_index("segment_id")["mean"]
    for segment, value in joined.groupby("segment_id")["credit_score"].mean().items():
        assert credit[segment] == pytest.approx(value, rel=1e-9)


def test_saved_model_reproduces_training_labels(spark, golden):
    model = PipelineModel.load(model_location(golden.conf.output_path, golden.train.run_id))
    rescored_df = model.transform(golden.table(spark, FEATURES_TABLE, AS_OF)).select(
        "customer_id", F.col("segment_id").cast("int").alias("segment_id"))
    trained_df = golden.table(spark, tables.SEGMENT_ASSIGNMENTS, AS_OF).select("customer_id", "segment_id")
    assert_df_equality(rescored_df, trained_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


def test_rerun_is_idempotent_and_deterministic(spark, golden):
    # build_features again with the same configuration: the same run id, and the date's rows replaced by equal
    # ones, not added. A training rerun is checked the same way by tests/test_crash.py, after a killed attempt.
    conf, record = golden.conf, golden.features

    def rows(table: str) -> list[tuple]:
        return sorted(map(tuple, golden.table(spark, table, AS_OF).collect()))

    before = {table: rows(table) for table in (FEATURES_TABLE, tables.REJECTED_TABLE)}
    again = run_build_features(spark, conf)
    assert again.run_id == record.run_id
    assert len(before[FEATURES_TABLE]) >= 285 and before[tables.REJECTED_TABLE]
    for table, earlier in before.items():
        assert rows(table) == earlier, table


def test_score_job_assigns_another_date_with_the_same_names(spark, golden):
    record = golden.train
    assert golden.score.metrics["model_run_id"] == record.run_id
    scored_df = golden.table(spark, tables.SEGMENT_ASSIGNMENTS, LATER)
    names = {r["segment_id"]: r["segment_name"] for r in golden.table(spark, tables.SEGMENT_PROFILES).collect()}
    rows = scored_df.collect()
    assert rows and all(r["run_id"] == record.run_id and names[r["segment_id"]] == r["segment_name"] for r in rows)
    later_customers = golden.table(spark, FEATURES_TABLE, LATER)
    assert sorted(r["customer_id"] for r in rows) == sorted(r["customer_id"] for r in later_customers.collect())
    # Scoring another date left the training date's assignments as they were.
    before = golden.assignments_before_scoring
    assert before and golden.assignments_after_scoring == before


def test_missing_required_column_stops_before_writing(spark, tmp_path):
    data_dir = tmp_path / "data"
    spark.createDataFrame([("C1", "2020-01-01")], "customer_id string, signup_date string").write.format(
        "delta").save(str(data_dir / "customers"))
    spark.createDataFrame([("t1", "C1", 5.0)], "transaction_id string, customer_id string, amount double").write.format(
        "delta").save(str(data_dir / "transactions"))
    conf = make_conf(data_dir, tmp_path / "out", ["inputs.loans=null", "inputs.loan_payments=null"])
    with pytest.raises(InputError, match=r"'transactions'.*'transaction_ts'"):
        run_build_features(spark, conf)
    assert not (tmp_path / "out").exists()


RENAMES = {
    "customers": {"customer_id": "cust_no", "signup_date": "opened_on", "annual_income": "income"},
    "transactions": {"transaction_id": "txn_ref", "customer_id": "cust_no", "transaction_ts": "booked_at",
                     "amount": "amt"},
    "loans": {"customer_id": "cust_no", "principal": "loan_amount"},
    "loan_payments": {"customer_id": "cust_no", "due_date": "due_on"},
    "products": {"customer_id": "cust_no", "opened_date": "opened"},
}


def test_features_from_csv_with_other_column_names_match(spark, golden, tmp_path):
    csv_dir = tmp_path / "csv"
    for table, renames in RENAMES.items():
        df = golden.input(spark, table)
        df = df.select([F.col(c).alias(renames.get(c, c)) for c in df.columns])
        (df.write.option("header", "true").option("timestampFormat", "yyyy-MM-dd HH:mm:ss")
         .option("dateFormat", "dd/MM/yyyy").csv(str(csv_dir / table)))
    overrides = []
    for table, renames in RENAMES.items():
        overrides += [f"inputs.{table}.format=csv", f"inputs.{table}.date_format=dd/MM/yyyy"]
        overrides += [f"inputs.{table}.columns.{contract}={mine}" for contract, mine in renames.items()]
    mapped = make_conf(csv_dir, tmp_path / "out", overrides)
    record = run_build_features(spark, mapped)
    expected_df = golden.table(spark, FEATURES_TABLE, AS_OF).drop("run_id")  # the build run: another configuration
    actual_df = read(spark, mapped, FEATURES_TABLE).drop("run_id")
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)
    original = build_features_run(spark, golden)
    assert record.counts["inputs"] == json.loads(original["counts_json"])["inputs"]


def test_each_run_records_its_spark_jobs_and_stages_per_stage(spark, golden):
    row = build_features_run(spark, golden)
    jobs, timings = json.loads(row["spark_jobs_json"]), json.loads(row["timings_json"])
    stages = json.loads(row["spark_stages_json"])
    assert sorted(jobs) == sorted(timings) == sorted(stages) == ["features", "ingest_validate", "write_rejected"]
    assert all(n > 0 for n in jobs.values()), jobs  # each stage reads or writes a table
    assert all(n > 0 for n in stages.values()), stages
    assert golden.train.spark_jobs.keys() == golden.train.timings.keys() == golden.train.spark_stages.keys()


def test_each_job_writes_only_the_tables_listed_for_it(golden):
    # runs.recorded_run retires other runs' rows only from the tables JOB_OUTPUTS lists for the jobs of the date
    for record in (golden.features, golden.train, golden.score):
        assert record.outputs and set(record.outputs) <= set(tables.JOB_OUTPUTS[record.job]), record.job


def test_the_training_run_begins_from_the_runs_table_as_its_build_left_it(golden):
    # run_pipeline hands build_features' last read of the runs table to train_segments instead of a new read: it
    # was read after the build's succeeded row, so the training finds that build's features
    handed = golden.features.ledger_at_end
    assert handed.runs_of_date(AS_OF) == {(golden.features.run_id, "build_features")}
    assert handed.current_run_id("build_features", AS_OF) == golden.features.run_id
    assert golden.train.ledger is handed
    assert golden.train.ledger_at_end.current_run_id("train_segments", AS_OF) == golden.train.run_id


def test_a_dates_first_runs_append_their_rows_and_replace_only_their_own_runs_row(spark, golden):
    def commits(table: str, versions: int) -> list[tuple]:
        rows = spark.sql(f"DESCRIBE HISTORY delta.`{golden.conf.table_path(table)}`").collect()
        return [(r["operation"], r["operationParameters"].get("mode"))
                for r in sorted(rows, key=lambda r: r["version"])][:versions]

    create = [("CREATE TABLE AS SELECT", None)]  # a new table with its comment, in one commit
    # LATER was neither trained nor scored before: its scoring appends to the assignments, as its features did
    assert commits(tables.SEGMENT_ASSIGNMENTS, 2) == [*create, ("WRITE", "Append")]
    assert commits(FEATURES_TABLE, 2) == [*create, ("WRITE", "Append")]
    # each run appends its `started` row and replaces it when it ends; the first one created the table
    started, ended = ("WRITE", "Append"), ("WRITE", "Overwrite")
    assert commits(tables.RUNS_TABLE, 8) == [*create, ended, *[started, ended] * 3]
