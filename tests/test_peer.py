"""The pandas peer (benchmarks/peer.py) computes the same validation and features as the Spark flow.

The golden run's feature build (tests/golden.py) on generated dirty data; the peer reads the same files (the
Delta tables' Parquet files, each table written once). Duplicate keys are the one documented difference: when
two rows with the same key differ, Spark keeps the first by the row's JSON text and the peer the first by
sorting the columns, so customers touched by such a conflicting duplicate are left out of the value comparison
(for a customer duplicate, only the column that comes from the customer row, annual_income).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from benchmarks import peer
from custseg.config import FeatureConf
from custseg.contract.features import FEATURES
from custseg.contract.outputs import FEATURES_TABLE
from golden import AS_OF


def parquet_files(table_dir: Path) -> list[Path]:
    return sorted(p for p in table_dir.rglob("*.parquet") if "_delta_log" not in p.relative_to(table_dir).parts)


def delta_files(table_dir: Path) -> list[Path]:
    return sorted(Path(uri.removeprefix("file://")) for uri in DeltaTable(str(table_dir)).file_uris())


@pytest.fixture(scope="module")
def spark_run(spark, golden):
    features = golden.table(spark, FEATURES_TABLE, AS_OF).toPandas()
    return golden.data_dir, golden.conf, golden.features, features.sort_values("customer_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def peer_run(spark_run):
    data_dir, conf, _, _ = spark_run
    for table in peer.TABLES:
        # Read as plain Parquet: the files in the folder must be exactly the Delta table's (none removed).
        assert parquet_files(data_dir / table) == delta_files(data_dir / table), table
    inputs = peer.read_inputs({t: str(data_dir / t) for t in peer.TABLES})
    accepted, rejected_counts = peer.validate(inputs)
    features = peer.compute_features(accepted, AS_OF, conf.features)
    return inputs, accepted, rejected_counts, features.sort_values("customer_id").reset_index(drop=True)


def conflicting_customers(df: pd.DataFrame, key: str) -> set[str]:
    """customer_id of rows sharing a key with a different row (not an exact copy)."""
    distinct = df.drop_duplicates()
    return set(distinct.loc[distinct.duplicated(key, keep=False), "customer_id"].dropna())


def test_peer_validation_counts_match_spark(spark_run, peer_run):
    _, _, record, _ = spark_run
    _, accepted, rejected_counts, _ = peer_run
    expected = {}
    for table in peer.TABLES:
        counts = record.counts["inputs"][table]
        assert len(accepted[table]) == counts["accepted"], table
        expected |= {f"{table}.{k.removeprefix('rejected_')}": n for k, n in counts.items()
                     if k.startswith("rejected_")}
    assert rejected_counts == expected
    assert {"transactions.duplicate_key", "customers.out_of_range", "loan_payments.missing_required_value"} <= set(
        rejected_counts)


def test_peer_features_match_spark(spark_run, peer_run):
    _, _, _, spark_df = spark_run
    inputs, _, _, peer_df = peer_run
    assert list(peer_df.columns) == ["customer_id", *FEATURES]
    assert peer_df["customer_id"].tolist() == spark_df["customer_id"].tolist()

    txn_touched = conflicting_customers(inputs["transactions"], "transaction_id")
    customer_touched = conflicting_customers(inputs["customers"], "customer_id")
    assert txn_touched and customer_touched  # the dirt is there
    compared = ~spark_df["customer_id"].isin(txn_touched)
    assert compared.mean() > 0.85
    for name in FEATURES:
        rows = compared & ~spark_df["customer_id"].isin(customer_touched) if name == "annual_income" else compared
        expected, actual = spark_df.loc[rows, name].astype("float64"), peer_df.loc[rows, name].astype("float64")
        nulls_differ = expected.isna() != actual.isna()
        assert not nulls_differ.any(), (name, spark_df.loc[rows & nulls_differ, "customer_id"].tolist()[:5])
        both = expected.notna()
        close = np.isclose(actual[both], expected[both], rtol=1e-9, atol=1e-6)
        assert close.all(), (name, spark_df.loc[both[both].index[~close], "customer_id"].tolist()[:5])


def test_peer_segment_smoke(spark_run, peer_run):
    _, conf, _, _ = spark_run
    features = peer_run[3]
    assignments, profiles, k_table = peer.segment(features, conf.model, conf.seed)
    assert sorted(assignments["customer_id"]) == sorted(features["customer_id"])
    assert assignments["distance_to_centroid"].ge(0).all()
    assert k_table["k"].tolist() == list(range(conf.model.k_min, conf.model.k_max + 1))
    assert k_table["is_chosen"].sum() == 1
    assert profiles["size"].sum() == len(features) and profiles["share"].sum() == pytest.approx(1.0)


def test_peer_edge_cases_by_hand():
    """Paths the generated data does not reach; expectations as in tests/test_features.py (no Spark)."""
    ts, d = pd.Timestamp, dt.date
    customers = pd.DataFrame({"customer_id": ["A", "B", "C", "D", "E", " "],
                              "signup_date": [d(2020, 1, 1), d(2024, 1, 1), d(2025, 6, 1), d(2025, 12, 1),
                                              d(2026, 1, 1), d(2020, 1, 1)],
                              "annual_income": [9e4, 4e4, None, 5e4, 5e4, 1.0],
                              "credit_score": [720, 650, None, 700, 700, 700]})
    transactions = pd.DataFrame([
        ("t1", "A", ts(2025, 12, 31, 10), 100.0, "groceries", "online"),
        ("t2", "A", ts(2025, 12, 29, 10), 50.0, "groceries", "pos"),
        ("t3", "A", ts(2025, 11, 29, 10), 30.0, "travel", "Online"),
        ("t3", "A", ts(2025, 11, 29, 10), 34.0, "travel", "Online"),  # duplicate key: the smaller row is kept
        ("t4", "A", ts(2025, 12, 30, 12), -20.0, "groceries", "online"),  # refund
        ("t5", "A", ts(2026, 1, 1, 0), 999.0, "travel", "online"),  # on the as-of date: not counted
        ("t6", "A", ts(2024, 6, 1, 9), 70.0, "travel", "pos"),  # before the lookback window
        ("t7", "B", ts(2024, 12, 1, 9), 40.0, "fuel", "pos"),  # only old activity
        ("t8", "C", ts(2025, 10, 1, 9), 10.0, None, None),  # no category: C's mix is unknown
        ("t9", "E", ts(2025, 12, 1, 9), 10.0, "fuel", "pos"),  # E signs up on the as-of date
    ], columns=["transaction_id", "customer_id", "transaction_ts", "amount", "category", "channel"])
    loans = pd.DataFrame({"loan_id": ["L1", "L2", "L4"], "customer_id": ["A", "B", "C"],
                          "origination_date": [d(2025, 1, 15), d(2023, 1, 1), d(2025, 12, 20)],
                          "principal": [1200.0, 500.0, 300.0], "status": ["current", "default", " CURRENT"]})
    payments = pd.DataFrame([
        ("L1", "A", d(2025, 2, 15), 100.0, d(2025, 2, 10), 100.0),
        ("L1", "A", d(2025, 3, 15), 100.0, d(2025, 4, 4), 100.0),
        ("L1", "A", d(2025, 11, 15), 100.0, None, None),
        ("L1", "A", d(2025, 12, 15), 100.0, d(2026, 1, 5), 100.0),
        ("L2", "B", d(2023, 6, 1), 100.0, None, None),
    ], columns=["loan_id", "customer_id", "due_date", "amount_due", "paid_date", "amount_paid"])
    accepted, rejected = peer.validate({"customers": customers, "transactions": transactions, "loans": loans,
                                        "loan_payments": payments})
    assert rejected == {"customers.missing_required_value": 1, "transactions.duplicate_key": 1}
    assert accepted["loans"]["status"].tolist() == ["current", "default", "current"]
    conf = FeatureConf(lookback_days=365, trend_window_days=90, late_payment_window_days=365, default_dpd=90)
    f = peer.compute_features(accepted, AS_OF, conf).set_index("customer_id")
    assert f.index.tolist() == ["A", "B", "C", "D"]
    expected = {
        "recency_days": [1, 396, 92, 31], "frequency": [3, 0, 1, 0], "monetary": [160.0, 0.0, 10.0, 0.0],
        "avg_ticket": [60.0, None, 10.0, None], "spend_trend": [1.0, 0.0, -1.0, 0.0],
        "refund_rate": [0.25, None, 0.0, None], "gap_mean_days": [16.0, None, None, None],
        "gap_std_days": [19.798989873223331, None, None, None], "n_categories": [2, 0, None, 0],
        "top_category_share": [150.0 / 180.0, None, None, None], "digital_share": [2.0 / 3.0, None, None, None],
        "is_repeat_buyer": [1, 0, 0, 0],
        "n_loans": [1, 1, 1, 0], "utilisation": [1000.0 / 1200.0, 1.0, 1.0, None],
        "on_time_rate": [0.25, 0.0, None, None], "max_dpd": [47, 945, 0, 0], "current_dpd": [47, 945, 0, 0],
        "late_payments_12m": [3, 0, 0, 0], "has_default": [0, 1, 0, 0],
    }
    for name, values in expected.items():
        np.testing.assert_allclose(f[name].astype("float64"), np.array(values, dtype="float64"), rtol=1e-9,
                                   err_msg=name)
