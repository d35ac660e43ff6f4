"""Degenerate inputs the K rule promises to handle: every customer alike gives one segment, with the reason."""
from __future__ import annotations

import datetime as dt

from pyspark.sql import functions as F

from custseg.contract import outputs
from custseg.flows.build_features import run_build_features
from custseg.flows.train_segments import run_train_segments
from custseg.platform.storage import read_delta
from helpers import make_conf


def test_identical_customers_give_one_segment_with_the_reason_recorded(spark, tmp_path):
    data_dir = tmp_path / "data"
    signup = dt.date(2024, 5, 1)
    spark.createDataFrame([(f"C{i:02d}", signup, 50_000.0, 700) for i in range(20)],
                          "customer_id string, signup_date date, annual_income double, credit_score int"
                          ).write.format("delta").save(str(data_dir / "customers"))
    spark.createDataFrame([(f"T{i:02d}", f"C{i:02d}", dt.datetime(2025, 6, 1, 12), 25.0) for i in range(20)],
                          "transaction_id string, customer_id string, transaction_ts timestamp, amount double"
                          ).write.format("delta").save(str(data_dir / "transactions"))
    conf = make_conf(data_dir, tmp_path / "out", ["inputs.loans=null", "inputs.loan_payments=null"])

    run_build_features(spark, conf)
    record = run_train_segments(spark, conf)

    assignments_df = read_delta(spark, conf.table_path(outputs.SEGMENT_ASSIGNMENTS))
    assert assignments_df.count() == 20
    assert assignments_df.select("segment_id").distinct().collect() == [(0,)]
    assert assignments_df.agg(F.max("distance_to_centroid")).first()[0] == 0.0
    chosen = read_delta(spark, conf.table_path(outputs.K_SELECTION)).filter("is_chosen").collect()
    assert [(r["k"], r["reason"]) for r in chosen] == [(1, "all customers have identical features: one segment")]
    assert record.metrics["chosen_k"] == 1
