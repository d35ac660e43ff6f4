"""End to end on generated data with planted personas: real Delta tables on disk, content checked."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality
from custseg_sample.datagen import generate, write_dataset
from pyspark.ml import PipelineModel
from pyspark.sql import functions as F
from sklearn.metrics import adjusted_rand_score

from custseg.contract import outputs as tables
from custseg.contract.outputs import FEATURES_TABLE
from custseg.flows.build_features import run_build_features
from custseg.flows.score_customers import run_score_customers
from custseg.flows.train_segments import START_TOLERANCE, run_train_segments
from custseg.platform.locations import model_location
from custseg.platform.storage import InputError, read_delta
from helpers import INPUTS
from helpers import make_conf as make_test_conf

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.date(2026, 1, 1)
PII_MARKERS = ("@example.com", '"email"', '"name"', '"phone"')



def make_conf(data_dir: Path, out_dir: Path, extra: list[str] | None = None):
    return make_test_conf(data_dir, out_dir, extra, k_max=6)  # the five planted personas need K up to 6


@pytest.fixture(scope="module")
def generated(spark, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    write_dataset(generate(spark, 300, 20, AS_OF, seed=11, dirt_rate=0.03), str(data_dir), "delta")
    return data_dir


@pytest.fixture(scope="module")
def trained(spark, generated, tmp_path_factory):
    conf = make_conf(generated, tmp_path_factory.mktemp("out"))
    features_record = run_build_features(spark, conf)
    train_record = run_train_segments(spark, conf)
    return conf, features_record, train_record


def read(spark, conf, table):
    return read_delta(spark, conf.table_path(table))


def test_every_input_row_is_accepted_or_rejected_with_a_reason(spark, generated, trained):
    conf, record, _ = trained
    rejected_df = read(spark, conf, "rejected_records")
    for table in INPUTS:
        read_n = spark.read.format("delta").load(str(generated / table)).count()
        counts = record.counts["inputs"][table]
        rejected_n = rejected_df.filter(F.col("source_table") == table).count()
        assert counts["read"] == read_n
        assert counts["accepted"] + rejected_n == read_n
    reasons = {r["reason"] for r in rejected_df.select("reason").distinct().collect()}
    assert {"duplicate_key", "missing_required_value", "unknown_customer", "zero_amount"} <= reasons
    # The counts per reason, observed while the rows were written, are those of the written rows.
    for row in rejected_df.groupBy("source_table", "reason").count().collect():
        assert record.counts["inputs"][row["source_table"]][f"rejected_{row['reason']}"] == row["count"]
    runs_row = read(spark, conf, "runs").filter("job = 'build_features'").first()
    assert json.loads(runs_row["counts_json"])["inputs"]["transactions"] == record.counts["inputs"]["transactions"]


def test_an_empty_input_table_is_counted_not_waited_for(spark, generated, tmp_path):
    empty_path = str(tmp_path / "empty_payments")
    spark.read.format("delta").load(str(generated / "loan_payments")).limit(0).write.format("delta").save(empty_path)
    conf = make_conf(generated, tmp_path / "out", [f"inputs.loan_payments.path={empty_path}"])
    record = run_build_features(spark, conf)
    assert record.counts["inputs"]["loan_payments"] == {"read": 0, "accepted": 0, "rejected": 0}
    assert record.counts["inputs"]["loans"]["accepted"] > 0


def cached_plans(spark) -> bool:
    return not spark._jsparkSession.sharedState().cacheManager().isEmpty()


def test_a_failed_run_is_recorded_and_releases_its_caches(spark, generated, trained, tmp_path):
    conf = make_conf(generated, tmp_path / "out")
    blocker = Path(conf.table_path(FEATURES_TABLE))  # a file where the features table goes: its write fails
    blocker.parent.mkdir(parents=True)
    blocker.write_text("not a table")
    spark.catalog.clearCache()
    with pytest.raises(Exception):  # noqa: B017 - whatever Delta raises for a path that is a file
        run_build_features(spark, conf)
    assert not cached_plans(spark)  # the validation caches of the failed run are gone
    run = read(spark, conf, "runs").filter("job = 'build_features'").first()
    assert run["status"] == "failed" and run["error"]
    # Written before the failure: the same rows the successful run on the same inputs rejected.
    columns = ["source_table", "reason", "detail", "record_json"]
    failed_df = read(spark, conf, "rejected_records").filter(F.col("run_id") == run["run_id"]).select(columns)
    assert_df_equality(failed_df, read(spark, trained[0], "rejected_records").select(columns), ignore_row_order=True)


def test_features_match_an_independent_pandas_computation(spark, generated, trained):
    conf, _, _ = trained
    txn = spark.read.format("delta").load(str(generated / "transactions")).toPandas()
    customers = spark.read.format("delta").load(str(generated / "customers")).toPandas()
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
    features = read(spark, conf, "customer_features").toPandas().set_index("customer_id")
    duplicated_ids = spark.read.format("delta").load(str(generated / "transactions")).groupBy(
        "transaction_id").count().filter("count > 1").count()
    assert duplicated_ids > 0  # the dirt is there; customers touched by it are compared separately below
    touched = set(spark.read.format("delta").load(str(generated / "transactions")).groupBy("transaction_id")
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


def test_no_pii_in_any_output_and_no_protected_attribute_as_feature(spark, trained):
    conf, _, _ = trained
    for table in ("customer_features", "rejected_records", tables.SEGMENT_ASSIGNMENTS, tables.SEGMENT_PROFILES,
                  tables.SEGMENT_FEATURE_STATS, tables.SEGMENT_CENTROIDS):
        df = read(spark, conf, table)
        assert not {"name", "email", "phone", "birth_date", "sex"} & set(df.columns), table
    records = [r["record_json"] for r in read(spark, conf, "rejected_records").select("record_json").collect()]
    assert records and not [r for r in records if any(m in r for m in PII_MARKERS)]
    used = {r["feature"] for r in read(spark, conf, tables.SEGMENT_CENTROIDS).select("feature").collect()}
    assert not used & set(conf.protected_attributes)


def test_segments_recover_the_planted_personas(spark, generated, trained):
    conf, _, record = trained
    truth_df = spark.read.format("delta").load(str(generated / "truth"))
    joined = read(spark, conf, tables.SEGMENT_ASSIGNMENTS).join(truth_df, on="customer_id", how="inner").toPandas()
    assert adjusted_rand_score(joined["persona"], joined["segment_id"]) >= 0.9
    assert record.metrics["chosen_k"] in (5, 6)
    chosen = read(spark, conf, tables.K_SELECTION).filter("is_chosen").collect()
    assert len(chosen) == 1 and chosen[0]["k"] == record.metrics["chosen_k"] and chosen[0]["reason"]
    # Fewer Spark starts than model.n_init only when the centres are as good as the sweep's on its sample.
    starts, ratio = record.metrics["final_fit_starts"], record.metrics["final_fit_sample_sse_ratio"]
    assert 1 <= starts <= conf.model.n_init
    assert starts == conf.model.n_init or ratio <= 1 + START_TOLERANCE


def test_every_customer_has_exactly_one_segment(spark, trained):
    conf, _, _ = trained
    features_n = read(spark, conf, "customer_features").count()
    assignments_df = read(spark, conf, tables.SEGMENT_ASSIGNMENTS)
    assert assignments_df.count() == features_n
    assert assignments_df.select("customer_id").distinct().count() == features_n
    assert assignments_df.filter(F.col("segment_name").isNull()).count() == 0


def test_profiles_agree_with_assignments_and_features(spark, trained):
    conf, _, _ = trained
    profiles = read(spark, conf, tables.SEGMENT_PROFILES).toPandas()
    assignments = read(spark, conf, tables.SEGMENT_ASSIGNMENTS).toPandas()
    features = read(spark, conf, "customer_features").toPandas()
    assert profiles["size"].sum() == len(assignments)
    assert profiles["share"].sum() == pytest.approx(1.0)
    joined = assignments.merge(features, on="customer_id")
    direct = joined.groupby("segment_id")["monetary"].mean()
    for _, row in profiles.iterrows():
        assert row["mean_monetary"] == pytest.approx(direct[row["segment_id"]], rel=1e-9)
        assert row["size"] == (assignments["segment_id"] == row["segment_id"]).sum()
    assert profiles["segment_name"].is_unique
    assert set(profiles["risk_tier"]) <= {"low", "medium", "high"}
    stats = read(spark, conf, tables.SEGMENT_FEATURE_STATS).toPandas()
    credit = stats[stats["feature"] == "credit_score"].set_index("segment_id")["mean"]
    for segment, value in joined.groupby("segment_id")["credit_score"].mean().items():
        assert credit[segment] == pytest.approx(value, rel=1e-9)


def test_saved_model_reproduces_training_labels(spark, trained):
    conf, _, record = trained
    model = PipelineModel.load(model_location(conf.output_path, record.run_id))
    rescored_df = model.transform(read(spark, conf, "customer_features")).select(
        "customer_id", F.col("segment_id").cast("int").alias("segment_id"))
    trained_df = read(spark, conf, tables.SEGMENT_ASSIGNMENTS).select("customer_id", "segment_id")
    assert_df_equality(rescored_df, trained_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)


def test_rerun_is_idempotent_and_deterministic(spark, trained):
    conf, _, record = trained
    before_df = read(spark, conf, tables.SEGMENT_ASSIGNMENTS).select(
        "customer_id", "segment_id", "segment_name", "distance_to_centroid").toPandas()
    features_before = read(spark, conf, "customer_features").count()
    run_build_features(spark, conf)
    again = run_train_segments(spark, conf)
    assert again.run_id == record.run_id
    assert read(spark, conf, "customer_features").count() == features_before
    after = read(spark, conf, tables.SEGMENT_ASSIGNMENTS).select(
        "customer_id", "segment_id", "segment_name", "distance_to_centroid").toPandas()
    key = ["customer_id"]
    pd.testing.assert_frame_equal(before_df.sort_values(key).reset_index(drop=True),
                                  after.sort_values(key).reset_index(drop=True))


def test_score_job_assigns_another_date_with_the_same_names(spark, trained):
    conf, _, record = trained
    later = make_conf(Path(conf.inputs["customers"].path).parent, Path(conf.output_path), ["as_of_date=2026-02-01"])
    def first_date() -> list[tuple]:  # read anew each time: a Delta DataFrame keeps the version it was read at
        return sorted(map(tuple, read(spark, conf, tables.SEGMENT_ASSIGNMENTS).filter(F.col("as_of_date") == AS_OF)
                          .collect()))
    before = first_date()
    run_build_features(spark, later)
    run_score_customers(spark, later, record.run_id)
    scored_df = read(spark, conf, tables.SEGMENT_ASSIGNMENTS).filter(F.col("as_of_date") == dt.date(2026, 2, 1))
    names = {r["segment_id"]: r["segment_name"] for r in read(spark, conf, tables.SEGMENT_PROFILES).collect()}
    rows = scored_df.collect()
    assert rows and all(r["run_id"] == record.run_id and names[r["segment_id"]] == r["segment_name"] for r in rows)
    later_customers = read(spark, conf, FEATURES_TABLE).filter(F.col("as_of_date") == dt.date(2026, 2, 1))
    assert sorted(r["customer_id"] for r in rows) == sorted(r["customer_id"] for r in later_customers.collect())
    # Scoring another date leaves the training date's assignments as they were.
    assert before and first_date() == before


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
}


def test_features_from_csv_with_other_column_names_match(spark, generated, trained, tmp_path):
    conf, _, _ = trained
    csv_dir = tmp_path / "csv"
    for table, renames in RENAMES.items():
        df = spark.read.format("delta").load(str(generated / table))
        df = df.select([F.col(c).alias(renames.get(c, c)) for c in df.columns])
        (df.write.option("header", "true").option("timestampFormat", "yyyy-MM-dd HH:mm:ss")
         .option("dateFormat", "dd/MM/yyyy").csv(str(csv_dir / table)))
    overrides = []
    for table, renames in RENAMES.items():
        overrides += [f"inputs.{table}.format=csv", f"inputs.{table}.date_format=dd/MM/yyyy"]
        overrides += [f"inputs.{table}.columns.{contract}={mine}" for contract, mine in renames.items()]
    mapped = make_conf(csv_dir, tmp_path / "out", overrides)
    record = run_build_features(spark, mapped)
    expected_df = read(spark, conf, "customer_features").filter(F.col("as_of_date") == AS_OF)
    actual_df = read(spark, mapped, "customer_features")
    assert_df_equality(actual_df, expected_df, ignore_row_order=True, ignore_nullable=True, ignore_metadata=True)
    original = read(spark, conf, "runs").filter("job = 'build_features'").first()
    assert record.counts["inputs"] == json.loads(original["counts_json"])["inputs"]
