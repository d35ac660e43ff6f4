"""Feature definitions on tiny hand-made inputs; every expectation is written out by hand."""
from __future__ import annotations

import datetime as dt
import time

from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from custseg.contract.features import NULL_WITHOUT_LOANS, NULL_WITHOUT_PAYMENTS
from custseg.transforms.features import (
    FEATURES,
    as_of_start,
    build_features,
    days_before,
    loan_features,
    transaction_features,
)
from golden import AS_OF as GOLDEN_AS_OF

AS_OF = dt.date(2026, 1, 1)
TS = dt.datetime

CUSTOMER_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType()),
    T.StructField("signup_date", T.DateType()),
    T.StructField("annual_income", T.DoubleType()),
    T.StructField("credit_score", T.IntegerType()),
    T.StructField("region", T.StringType()),
    T.StructField("employment_status", T.StringType()),
    T.StructField("birth_date", T.DateType()),
])
TXN_SCHEMA = T.StructType([
    T.StructField("transaction_id", T.StringType()),
    T.StructField("customer_id", T.StringType()),
    T.StructField("transaction_ts", T.TimestampType()),
    T.StructField("amount", T.DoubleType()),
    T.StructField("category", T.StringType()),
    T.StructField("channel", T.StringType()),
])


def customers(spark):
    return spark.createDataFrame([
        ("A", dt.date(2020, 1, 1), 90000.0, 720, "north", "employed", dt.date(1980, 1, 1)),
        ("B", dt.date(2024, 1, 1), 40000.0, 650, "south", "employed", None),
        ("C", dt.date(2025, 6, 1), None, None, None, None, None),   # null row
        ("D", dt.date(2025, 12, 1), 50000.0, 700, "east", "student", None),  # no transactions at all
        ("E", dt.date(2026, 1, 1), 50000.0, 700, "east", "student", None),   # signs up on the as-of date
    ], CUSTOMER_SCHEMA)


def transactions(spark):
    return spark.createDataFrame([
        ("t1", "A", TS(2025, 12, 31, 10), 100.0, "groceries", "online"),
        ("t2", "A", TS(2025, 12, 29, 10), 50.0, "groceries", "pos"),
        ("t3", "A", TS(2025, 11, 29, 10), 30.0, "travel", "online"),
        ("t4", "A", TS(2025, 12, 30, 12), -20.0, "groceries", "online"),  # refund
        ("t5", "A", TS(2026, 1, 1, 0), 999.0, "travel", "online"),        # on the as-of date: excluded
        ("t6", "A", TS(2024, 6, 1, 9), 70.0, "travel", "pos"),            # before the lookback window
        ("t7", "B", TS(2024, 12, 1, 9), 40.0, "fuel", "pos"),             # only activity is old
        ("t8", "C", TS(2025, 10, 1, 9), 10.0, None, None),                # null category and channel
        ("t9", "E", TS(2025, 12, 1, 9), 10.0, "fuel", "pos"),             # customer not signed up yet
    ], TXN_SCHEMA)


RFM_COLUMNS = ["customer_id", "tenure_days", "recency_days", "frequency", "monetary", "avg_ticket",
               "spend_30d", "spend_90d", "spend_365d", "spend_trend", "refund_rate"]
RFM_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType()),
    T.StructField("tenure_days", T.LongType()),
    T.StructField("recency_days", T.LongType()),
    T.StructField("frequency", T.LongType()),
    T.StructField("monetary", T.DoubleType()),
    T.StructField("avg_ticket", T.DoubleType()),
    T.StructField("spend_30d", T.DoubleType()),
    T.StructField("spend_90d", T.DoubleType()),
    T.StructField("spend_365d", T.DoubleType()),
    T.StructField("spend_trend", T.DoubleType()),
    T.StructField("refund_rate", T.DoubleType()),
])

BEHAVIOUR_COLUMNS = ["customer_id", "gap_mean_days", "gap_std_days", "active_months", "n_categories",
                     "top_category_share", "digital_share"]
BEHAVIOUR_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType()),
    T.StructField("gap_mean_days", T.DoubleType()),
    T.StructField("gap_std_days", T.DoubleType()),
    T.StructField("active_months", T.LongType()),
    T.StructField("n_categories", T.LongType()),
    T.StructField("top_category_share", T.DoubleType()),
    T.StructField("digital_share", T.DoubleType()),
])


def features(spark, txn_df=None, **kwargs):
    txn_df = transactions(spark) if txn_df is None else txn_df
    return build_features(customers(spark), txn_df, AS_OF, lookback_days=365, trend_days=90, **kwargs)


def test_rfm_features_by_hand(spark):
    expected = spark.createDataFrame([
        # A: purchases 100 + 50 + 30 in the window, one refund of 20; last purchase the day before.
        ("A", 2192, 1, 3, 160.0, 60.0, 150.0, 180.0, 180.0, 1.0, 0.25),
        # B: the only purchase is 396 days old: outside the window, but it sets recency.
        ("B", 731, 396, 0, 0.0, None, 0.0, 0.0, 0.0, 0.0, None),
        # C: one purchase 92 days ago, in the prior trend window: trend -1.
        ("C", 214, 92, 1, 10.0, 10.0, 0.0, 0.0, 10.0, -1.0, 0.0),
        # D: never bought: recency falls back to tenure.
        ("D", 31, 31, 0, 0.0, None, 0.0, 0.0, 0.0, 0.0, None),
    ], RFM_SCHEMA)
    assert_approx_df_equality(features(spark).select(RFM_COLUMNS), expected, precision=1e-9, ignore_nullable=True,
                              ignore_row_order=True)


def test_gap_and_mix_features_by_hand(spark):
    expected = spark.createDataFrame([
        # A: purchases on Nov 29, Dec 29, Dec 31 at 10:00 -> gaps 30 and 2 days.
        ("A", 16.0, 19.798989873223331, 2, 2, 150.0 / 180.0, 2.0 / 3.0),
        ("B", None, None, 0, 0, None, None),
        # Its one purchase has no channel and no category: both unknown, not offline nor one category.
        ("C", None, None, 1, None, None, None),
        ("D", None, None, 0, 0, None, None),
    ], BEHAVIOUR_SCHEMA)
    assert_approx_df_equality(features(spark).select(BEHAVIOUR_COLUMNS), expected, precision=1e-9, ignore_nullable=True,
                              ignore_row_order=True)


def test_spend_by_category_and_products_held_by_hand(spark):
    # A: groceries 100 + 50 (the refund is not a purchase), travel 30 (t5 and t6 are outside the window);
    # B: nothing in the window; C: its purchase has no category.
    products_df = spark.createDataFrame([("A", "Savings", dt.date(2020, 1, 1), None)],
                                        "customer_id string, product string, opened_date date, closed_date date")
    rows = {r["customer_id"]: r for r in features(spark, products_df=products_df).collect()}
    assert [(s["category"], s["amount"]) for s in rows["A"]["spend_by_category"]] == [("groceries", 150.0),
                                                                                     ("travel", 30.0)]
    assert rows["B"]["spend_by_category"] == [] and rows["C"]["spend_by_category"] == []
    assert rows["A"]["products_held"] == ["savings"] and rows["D"]["products_held"] == []
    assert {r["products_held"] for r in features(spark).collect()} == {None}  # no products table: unknown


def test_feature_table_has_documented_columns_and_no_protected_attributes(spark):
    df = features(spark)
    assert df.columns == ["customer_id", "as_of_date", *FEATURES, "region", "employment_status", "spend_by_category",
                          "products_held", "same_moment_purchases"]
    assert "birth_date" not in df.columns
    assert {r["as_of_date"] for r in df.select("as_of_date").distinct().collect()} == {AS_OF}


LOAN_SCHEMA = T.StructType([
    T.StructField("loan_id", T.StringType()),
    T.StructField("customer_id", T.StringType()),
    T.StructField("origination_date", T.DateType()),
    T.StructField("principal", T.DoubleType()),
    T.StructField("status", T.StringType()),
])
PAYMENT_SCHEMA = T.StructType([
    T.StructField("loan_id", T.StringType()),
    T.StructField("customer_id", T.StringType()),
    T.StructField("due_date", T.DateType()),
    T.StructField("amount_due", T.DoubleType()),
    T.StructField("paid_date", T.DateType()),
    T.StructField("amount_paid", T.DoubleType()),
])
LOAN_FEATURE_SCHEMA = T.StructType([
    T.StructField("customer_id", T.StringType()),
    T.StructField("n_loans", T.LongType()),
    T.StructField("total_principal", T.DoubleType()),
    T.StructField("utilisation", T.DoubleType()),
    T.StructField("on_time_rate", T.DoubleType()),
    T.StructField("max_dpd", T.LongType()),
    T.StructField("current_dpd", T.LongType()),
    T.StructField("late_payments_12m", T.LongType()),
    T.StructField("has_default", T.LongType()),
])


def loans(spark):
    return spark.createDataFrame([
        ("L1", "A", dt.date(2025, 1, 15), 1200.0, "current"),
        ("L2", "B", dt.date(2023, 1, 1), 500.0, "default"),
        ("L3", "A", dt.date(2026, 2, 1), 900.0, "current"),   # originated after the as-of date
        ("L4", "C", dt.date(2025, 12, 20), 300.0, "current"),  # no payment due yet
    ], LOAN_SCHEMA)


def payments(spark):
    d = dt.date
    return spark.createDataFrame([
        ("L1", "A", d(2025, 2, 15), 100.0, d(2025, 2, 10), 100.0),  # on time
        ("L1", "A", d(2025, 3, 15), 100.0, d(2025, 4, 4), 100.0),   # 20 days late
        ("L1", "A", d(2025, 11, 15), 100.0, None, None),            # unpaid: 47 days past due
        ("L1", "A", d(2025, 12, 15), 100.0, d(2026, 1, 5), 100.0),  # paid after the as-of date: 17 dpd then
        ("L1", "A", d(2026, 1, 15), 100.0, None, None),             # not due yet
        ("L2", "B", d(2023, 6, 1), 100.0, None, None),              # unpaid for 945 days
    ], PAYMENT_SCHEMA)


def test_loan_features_by_hand(spark):
    expected = spark.createDataFrame([
        ("A", 1, 1200.0, 1000.0 / 1200.0, 0.25, 47, 47, 3, 0),
        ("B", 1, 500.0, 1.0, 0.0, 945, 945, 0, 1),
        ("C", 1, 300.0, 1.0, None, 0, 0, 0, 0),
    ], LOAN_FEATURE_SCHEMA)
    actual = loan_features(loans(spark), payments(spark), AS_OF, late_window_days=365, default_dpd=90)
    assert_approx_df_equality(actual, expected, precision=1e-9, ignore_row_order=True, ignore_nullable=True)


def test_customers_without_loans_get_zeros_and_null_rates(spark):
    df = features(spark, loans_df=loans(spark), payments_df=payments(spark))
    actual = df.select("customer_id", "n_loans", "on_time_rate", "max_dpd", "has_default")
    expected = spark.createDataFrame([
        ("A", 1, 0.25, 47, 0), ("B", 1, 0.0, 945, 1), ("C", 1, None, 0, 0), ("D", 0, None, 0, 0),
    ], "customer_id string, n_loans long, on_time_rate double, max_dpd long, has_default long")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_cut_offs_do_not_depend_on_the_driver_time_zone(spark, monkeypatch):
    # PySpark turns a naive Python datetime into an instant with the driver's local zone; the
    # cut-offs must stay at midnight UTC (the session zone) wherever the driver runs.
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        row = spark.range(1).select(
            F.date_format(as_of_start(dt.date(2026, 1, 1)), "yyyy-MM-dd HH:mm:ss").alias("as_of"),
            F.date_format(days_before(dt.date(2026, 1, 1), 90), "yyyy-MM-dd HH:mm:ss").alias("window")).first()
    finally:
        monkeypatch.undo()
        time.tzset()
    assert (row["as_of"], row["window"]) == ("2026-01-01 00:00:00", "2025-10-03 00:00:00")


def test_loans_without_a_payments_table_count_as_loans_with_no_repayment_evidence(spark):
    df = features(spark, loans_df=loans(spark), payments_df=None)
    actual = df.select("customer_id", "n_loans", "total_principal", "has_default", *NULL_WITHOUT_PAYMENTS)
    # B's loan has a defaulted status; nobody's repayment is known: null, never 0 late payments or 0 days past due.
    expected = spark.createDataFrame([
        ("A", 1, 1200.0, 0), ("B", 1, 500.0, 1), ("C", 1, 300.0, 0), ("D", 0, 0.0, 0),
    ], "customer_id string, n_loans long, total_principal double, has_default long").select(
        "*", *[F.lit(None).cast(df.schema[c].dataType).alias(c) for c in NULL_WITHOUT_PAYMENTS])
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_without_a_loans_table_every_loan_feature_is_null_not_zero(spark):
    df = features(spark)
    assert df.count() == 4
    for row in df.select(*NULL_WITHOUT_LOANS).collect():
        assert row.asDict() == dict.fromkeys(NULL_WITHOUT_LOANS), row


def test_transactions_and_loans_of_unknown_customers_change_no_feature(spark):
    # The features flow passes transactions before their reference check: the join to the customers
    # must leave out those of any other customer_id.
    stranger_txns = spark.createDataFrame([
        ("t90", "Z", TS(2025, 12, 30, 10), 500.0, "travel", "online"),
        ("t91", "Z", TS(2025, 12, 31, 10), -5.0, "travel", "online"),
        ("t92", None, TS(2025, 12, 31, 11), 7.0, "fuel", "pos"),
    ], TXN_SCHEMA)
    stranger_loans = spark.createDataFrame([("L9", "Z", dt.date(2025, 1, 1), 100.0, "current")], LOAN_SCHEMA)
    stranger_payments = spark.createDataFrame(
        [("L9", "Z", dt.date(2025, 2, 1), 10.0, None, None)], PAYMENT_SCHEMA)
    expected = features(spark, loans_df=loans(spark), payments_df=payments(spark))
    actual = build_features(customers(spark), transactions(spark).unionByName(stranger_txns), AS_OF,
                            lookback_days=365, trend_days=90, loans_df=loans(spark).unionByName(stranger_loans),
                            payments_df=payments(spark).unionByName(stranger_payments))
    assert actual.count() == 4
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_a_charged_off_or_default_loan_counts_as_a_default_without_payment_rows(spark):
    # C's loan has no payment due yet (max_dpd 0); its status alone makes it a default. A default or
    # charged_off loan originated after the as-of date does not count.
    status_loans = spark.createDataFrame([
        ("L1", "A", dt.date(2025, 1, 15), 1200.0, "current"),
        ("L4", "C", dt.date(2025, 12, 20), 300.0, "charged_off"),
        ("L5", "D", dt.date(2025, 6, 1), 200.0, "default"),
        ("L6", "E", dt.date(2026, 2, 1), 200.0, "charged_off"),
    ], LOAN_SCHEMA)
    actual = loan_features(status_loans, payments(spark), AS_OF, late_window_days=365, default_dpd=90)
    expected = spark.createDataFrame([("A", 47, 0), ("C", 0, 1), ("D", 0, 1)],
                                     "customer_id string, max_dpd long, has_default long")
    assert_df_equality(actual.select("customer_id", "max_dpd", "has_default"), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_loan_amounts_are_summed_exactly_whatever_the_order(spark):
    # 0.1 + 0.2 + 0.3 in doubles depends on the order of the additions (0.6000000000000001 or 0.6); summed
    # exactly, 1.0 - 0.6 leaves 0.4 of the principal outstanding on every cluster layout.
    payments_df = spark.createDataFrame([
        ("L1", "A", dt.date(2025, m, 1), 0.1 * m, dt.date(2025, m, 1), 0.1 * m) for m in (1, 2, 3)
    ], PAYMENT_SCHEMA)
    loans_df = spark.createDataFrame([("L1", "A", dt.date(2024, 12, 1), 1.0, "current")], LOAN_SCHEMA)
    for partitions in (1, 3):
        shuffled_df = payments_df.repartition(partitions)
        row = loan_features(loans_df, shuffled_df, AS_OF, late_window_days=365, default_dpd=90).first()
        assert (row["total_principal"], row["utilisation"]) == (1.0, 0.4)


def test_a_repeat_buyer_has_two_purchases_in_the_window_and_a_gap(spark):
    # A: 3 purchases in the window; B: its only purchase is before the window; C: one purchase; D: none.
    expected = spark.createDataFrame([("A", 1, 16.0), ("B", 0, None), ("C", 0, None), ("D", 0, None)],
                                     "customer_id string, is_repeat_buyer long, gap_mean_days double")
    actual = features(spark).select("customer_id", "is_repeat_buyer", "gap_mean_days")
    assert_approx_df_equality(actual, expected, precision=1e-9, ignore_row_order=True, ignore_nullable=True)


def test_purchases_at_the_moment_of_the_previous_one_are_counted_across_categories(spark):
    # A: two invoices of lines in two categories (3 lines, then 2), a refund at the second moment (not a
    # purchase), a line before the window; C: one purchase; B, D: none in the window.
    invoice_df = spark.createDataFrame([
        ("l1", "A", TS(2025, 11, 1, 10), 5.0, "food", "pos"), ("l2", "A", TS(2025, 11, 1, 10), 7.0, "toys", "pos"),
        ("l3", "A", TS(2025, 11, 1, 10), 2.0, "food", "pos"), ("l4", "A", TS(2025, 12, 1, 9), 3.0, "toys", "pos"),
        ("l5", "A", TS(2025, 12, 1, 9), 4.0, "food", "pos"), ("l6", "A", TS(2025, 12, 1, 9), -4.0, "food", "pos"),
        ("l7", "A", TS(2024, 11, 1, 10), 5.0, "food", "pos"), ("l8", "C", TS(2025, 10, 1, 9), 10.0, "food", "pos"),
    ], TXN_SCHEMA)
    counted = {r["customer_id"]: r["same_moment_purchases"] for r in features(spark, invoice_df).collect()}
    assert counted == {"A": 3, "B": 0, "C": 0, "D": 0}


def test_transactions_without_a_channel_column_give_a_null_digital_share_left_out_of_clustering(spark):
    from custseg.contract.inputs import TRANSACTIONS
    from custseg.transforms.statistics import usable_features
    from custseg.transforms.validation import REASON, accepted

    # Ingestion gives an absent optional column as null (validation.accepted); a digital share of 0 would
    # call every customer an offline one.
    no_channel_df = transactions(spark).drop("channel").withColumn(REASON, F.lit(None).cast("string"))
    df = features(spark, accepted(no_channel_df, TRANSACTIONS))
    expected = spark.createDataFrame([("A", 3, None), ("B", 0, None), ("C", 1, None), ("D", 0, None)],
                                     "customer_id string, frequency long, digital_share double")
    assert_df_equality(df.select("customer_id", "frequency", "digital_share"), expected, ignore_row_order=True,
                       ignore_nullable=True)
    used, dropped = usable_features(df, ("frequency", "digital_share"))
    assert used == ("frequency",) and dropped == {"digital_share": "all null"}


def test_purchases_without_a_category_are_no_category_of_their_own(spark):
    from custseg.contract.inputs import TRANSACTIONS
    from custseg.transforms.validation import REASON, accepted

    columns = ["customer_id", "n_categories", "top_category_share"]
    schema = "customer_id string, n_categories long, top_category_share double"
    # A's travel purchase (30 of its 180) has lost its category: one known category, groceries, 150 of 180.
    # C's only purchase has none: its mix is unknown, not one category. B bought nothing in the window, D never.
    partly_df = transactions(spark).withColumn("category", F.when(F.col("transaction_id") != "t3", F.col("category")))
    expected = spark.createDataFrame([("A", 1, 150.0 / 180.0), ("B", 0, None), ("C", None, None), ("D", 0, None)],
                                     schema)
    assert_approx_df_equality(features(spark, partly_df).select(columns), expected, precision=1e-9,
                              ignore_row_order=True, ignore_nullable=True)
    # Without a category column (ingestion gives it as null) every buyer's mix is unknown.
    no_category_df = transactions(spark).drop("category").withColumn(REASON, F.lit(None).cast("string"))
    expected = spark.createDataFrame([("A", None, None), ("B", 0, None), ("C", None, None), ("D", 0, None)], schema)
    actual = features(spark, accepted(no_category_df, TRANSACTIONS)).select(columns)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_transaction_features_are_the_same_whatever_the_partitions_or_the_plan(spark, golden_inputs):
    # The golden run's generated transactions: with double sums, some customers' monetary and trend differed in
    # the last bit between these settings (a cluster plans like the later ones); exact sums make them equal.
    txn_df = spark.read.format("delta").load(str(golden_inputs / "transactions")).filter(
        "customer_id IS NOT NULL AND transaction_ts IS NOT NULL AND amount IS NOT NULL")
    keys = ("spark.sql.adaptive.enabled", "spark.sql.shuffle.partitions")
    session_settings = {key: spark.conf.get(key) for key in keys}
    results = []
    try:
        for settings in (("true", "2"), ("false", "2"), ("false", "7")):
            for key, value in zip(keys, settings, strict=True):
                spark.conf.set(key, value)
            rows = transaction_features(txn_df, GOLDEN_AS_OF, 365, 90).collect()
            results.append(sorted(rows, key=lambda row: row["customer_id"]))
    finally:
        for key, value in session_settings.items():
            spark.conf.set(key, value)
    assert len(results[0]) >= 250 and any(row["monetary"] for row in results[0])
    assert results[0] == results[1] == results[2]
