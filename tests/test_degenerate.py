"""Degenerate inputs the K rule promises to handle: every customer alike gives one segment, with the reason."""
from __future__ import annotations

from pyspark.sql import functions as F

from custseg.contract import outputs
from custseg.contract.features import FEATURES
from custseg.flows.train_segments import run_train_segments
from custseg.platform.storage import read_delta
from helpers import make_conf, write_features


def test_identical_customers_give_one_segment_with_the_reason_recorded(spark, tmp_path):
    customers = tmp_path / "data" / "customers"
    spark.createDataFrame([(f"C{i:02d}",) for i in range(20)], "customer_id string").write.format("delta").save(
        str(customers))
    conf = make_conf(tmp_path / "data", tmp_path / "out", ["inputs.loans=null", "inputs.loan_payments=null"])
    alike = {**dict.fromkeys(FEATURES, 0.0), "tenure_days": 600.0, "frequency": 1.0, "monetary": 25.0,
             "annual_income": 50_000.0, "credit_score": 700.0}
    write_features(spark, conf, [{"customer_id": f"C{i:02d}", **alike} for i in range(20)])

    record = run_train_segments(spark, conf)

    assignments_df = read_delta(spark, conf.table_path(outputs.SEGMENT_ASSIGNMENTS))
    assert assignments_df.count() == 20
    assert assignments_df.select("segment_id").distinct().collect() == [(0,)]
    assert assignments_df.agg(F.max("distance_to_centroid")).first()[0] == 0.0
    # one segment: no runner-up, no reasons
    assert assignments_df.filter(F.col("second_segment_id").isNotNull() | F.col("reason_1").isNotNull()).count() == 0
    chosen = read_delta(spark, conf.table_path(outputs.K_SELECTION)).filter("is_chosen").collect()
    assert [(r["k"], r["reason"]) for r in chosen] == [(1, "all customers have identical features: one segment")]
    assert record.metrics["chosen_k"] == 1
