"""Per-customer features as of a date, point-in-time correct: only events strictly before it.

Transactions are scanned and shuffled once: a window per customer in time order gives inter-purchase
gaps and month starts, then a two-level grouped aggregation (customer x category, then customer) on the
same partitioning gives everything else with conditional sums.
Loans and payments are aggregated separately. custseg.contract.features documents every output column.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from custseg.contract.features import DESCRIPTIVE_COLUMNS, FEATURES, NULL_WITHOUT_LOANS, NULL_WITHOUT_PAYMENTS, UNKNOWN
from custseg.contract.inputs import DEFAULTED_STATUSES, LOAN_PAYMENTS

SECONDS_PER_DAY = 86400.0
DIGITAL_CHANNELS = ("online", "mobile")
# Sums are exact, so they do not depend on the order rows arrive in (partition count, plan, cluster or local):
# double sums differ in the last bit. Loan amounts (within +-1e12) sum as decimals; transaction amounts, many
# more rows, as whole 1/10,000ths of the currency unit in longs, and gaps as whole seconds.
EXACT = "decimal(38,9)"
AMOUNT_UNITS = 10_000
SPEND_BY_CATEGORY_TYPE = "array<struct<category:string,amount:double>>"
# Orders transactions with equal timestamps (any fixed order gives the same features); 8 bytes to shuffle.
TIE_BREAK = "_tie_break"

ZERO_WHEN_NO_ACTIVITY = (
    "frequency", "monetary", "spend_30d", "spend_90d", "spend_365d", "spend_trend", "active_months",
    "n_categories", "is_repeat_buyer", "n_loans", "total_principal", "max_dpd", "current_dpd", "late_payments_12m",
    "has_default",
)


def as_of_start(as_of: dt.date) -> Column:
    """The as-of date's first instant in the session time zone (UTC): events at or after it are in the future.

    A date literal cast in SQL, not a Python datetime: PySpark converts naive datetimes with the
    driver process's local time zone, which would move every cut-off on a driver not set to UTC.
    """
    return F.lit(as_of).cast("timestamp")


def days_before(as_of: dt.date, days: int) -> Column:
    return as_of_start(as_of - dt.timedelta(days=days))


def filter_before(df: DataFrame, ts_column: str, as_of: dt.date) -> DataFrame:
    """Keep events strictly before the as-of date."""
    return df.filter(F.col(ts_column) < as_of_start(as_of))


def with_purchase_sequence(txn_df: DataFrame, as_of: dt.date, lookback_days: int) -> DataFrame:
    """Add, on purchases in the lookback window, `gap_seconds` (whole seconds since the customer's previous one)
    and `starts_month` (the first of its calendar month), from one window in time order.

    The window is partitioned by customer alone, so the grouped aggregations after it need no other
    shuffle, and counting month starts replaces a set of months per customer. `txn_df` needs
    customer_id, transaction_ts, amount and TIE_BREAK (a fixed order among equal timestamps).
    """
    is_counted = (F.col("amount") > 0) & (F.col("transaction_ts") >= days_before(as_of, lookback_days))
    before_row = (
        Window.partitionBy("customer_id")
        .orderBy("transaction_ts", TIE_BREAK)
        .rowsBetween(Window.unboundedPreceding, -1)
    )
    previous_ts = F.last(F.when(is_counted, F.col("transaction_ts")), ignorenulls=True).over(before_row)
    sequenced_df = txn_df.withColumn("_previous_ts", previous_ts)  # one window, used by both columns
    gap = F.unix_seconds("transaction_ts") - F.unix_seconds("_previous_ts")
    new_month = F.col("_previous_ts").isNull() | (
        F.date_trunc("month", "_previous_ts") != F.date_trunc("month", "transaction_ts"))
    return (
        sequenced_df
        .withColumn("gap_seconds", F.when(is_counted, gap))
        .withColumn("starts_month", is_counted & new_month)
        .drop("_previous_ts")
    )


def _in_days(days: int, as_of: dt.date) -> Column:
    return F.col("transaction_ts") >= days_before(as_of, days)


def transaction_features(txn_df: DataFrame, as_of: dt.date, lookback_days: int, trend_days: int) -> DataFrame:
    """One row per customer with at least one transaction before the as-of date."""
    # Only what the window and the sums need crosses the shuffle: a hash instead of the transaction id,
    # a flag instead of the channel: fewer bytes to write, sort and read.
    narrow_df = filter_before(txn_df, "transaction_ts", as_of).select(
        "customer_id", "transaction_ts", "amount", "category",
        F.lower("channel").isin(*DIGITAL_CHANNELS).alias("is_digital"),
        F.xxhash64("transaction_id").alias(TIE_BREAK),
        F.rint(F.col("amount") * AMOUNT_UNITS).cast("long").alias("amount_units"))
    events_df = narrow_df.transform(with_purchase_sequence, as_of, lookback_days)
    is_purchase = F.col("amount") > 0
    in_lookback = _in_days(lookback_days, as_of)
    counted = is_purchase & in_lookback
    is_refund = (F.col("amount") < 0) & in_lookback
    prior_trend = (F.col("transaction_ts") >= days_before(as_of, 2 * trend_days)) & ~_in_days(trend_days, as_of)

    def purchase_sum(condition: Column) -> Column:
        return F.sum(F.when(is_purchase & condition, F.col("amount_units")).otherwise(0))

    # Level 1: customer x category, so that the category mix comes out of the same scan.
    by_category_df = events_df.groupBy("customer_id", "category").agg(
        F.max(F.when(is_purchase, F.col("transaction_ts"))).alias("last_purchase_ts"),
        F.count(F.when(counted, 1)).alias("frequency"),
        F.sum(F.when(counted, F.col("amount_units")).otherwise(0)).alias("purchase_amount"),
        F.sum(F.when(is_refund, -F.col("amount_units")).otherwise(0)).alias("refund_amount"),
        F.count(F.when(is_refund, 1)).alias("refunds"),
        purchase_sum(_in_days(30, as_of)).alias("spend_30d"),
        purchase_sum(_in_days(90, as_of)).alias("spend_90d"),
        purchase_sum(_in_days(365, as_of)).alias("spend_365d"),
        purchase_sum(_in_days(trend_days, as_of)).alias("spend_recent"),
        purchase_sum(prior_trend).alias("spend_prior"),
        F.count("gap_seconds").alias("gaps"),
        F.count(F.when(F.col("gap_seconds") == 0, 1)).alias("same_moment"),
        F.sum("gap_seconds").alias("gap_sum"),
        F.sum(F.col("gap_seconds") * F.col("gap_seconds")).alias("gap_sq_sum"),
        F.count(F.when(counted & F.col("is_digital"), 1)).alias("digital"),
        F.count(F.when(counted & F.col("is_digital").isNotNull(), 1)).alias("channel_known"),
        F.count(F.when(F.col("starts_month"), 1)).alias("active_months"),
    )
    totals_df = by_category_df.groupBy("customer_id").agg(
        F.max("last_purchase_ts").alias("last_purchase_ts"),
        *[F.sum(c).alias(c) for c in (
            "frequency", "purchase_amount", "refund_amount", "refunds", "spend_30d", "spend_90d", "spend_365d",
            "spend_recent", "spend_prior", "gaps", "same_moment", "gap_sum", "gap_sq_sum", "digital",
            "channel_known", "active_months")],
        # Purchases without a category (no category column, or its value missing) are not a category of their
        # own: a customer with no other purchase has an unknown mix, not one category.
        F.max(F.when(F.col("category").isNotNull(), F.col("purchase_amount"))).alias("top_category_amount"),
        F.count(F.when((F.col("purchase_amount") > 0) & F.col("category").isNotNull(), 1)).alias("n_categories"),
        F.count(F.when((F.col("purchase_amount") > 0) & F.col("category").isNull(), 1)).alias("uncategorised"),
        # An array of (category, amount), not a map: sortable and comparable like every other column. Level 1
        # grouped by the exact category, so each appears once; sorted for a fixed order.
        F.array_sort(F.collect_list(F.when(
            (F.col("purchase_amount") > 0) & F.col("category").isNotNull(),
            F.struct("category", _amount(F.col("purchase_amount")).alias("amount"))))).alias("spend_by_category"),
    )
    mix_unknown = (F.col("n_categories") == 0) & (F.col("uncategorised") > 0)
    return totals_df.select(
        "customer_id",
        "last_purchase_ts",
        F.col("frequency").cast("long").alias("frequency"),
        _amount(F.col("purchase_amount") - F.col("refund_amount")).alias("monetary"),
        F.try_divide(_amount(F.col("purchase_amount")), F.col("frequency")).alias("avg_ticket"),
        _amount(F.col("spend_30d")).alias("spend_30d"),
        _amount(F.col("spend_90d")).alias("spend_90d"),
        _amount(F.col("spend_365d")).alias("spend_365d"),
        _trend(F.col("spend_recent"), F.col("spend_prior")).alias("spend_trend"),
        F.try_divide(F.col("refunds"), F.col("frequency") + F.col("refunds")).alias("refund_rate"),
        (F.try_divide(F.col("gap_sum"), F.col("gaps")) / SECONDS_PER_DAY).alias("gap_mean_days"),
        (_sample_std(F.col("gaps"), F.col("gap_sum").cast("double"), F.col("gap_sq_sum").cast("double"))
         / SECONDS_PER_DAY).alias("gap_std_days"),
        (F.col("frequency") >= 2).cast("long").alias("is_repeat_buyer"),
        F.col("active_months").cast("long").alias("active_months"),
        F.when(~mix_unknown, F.col("n_categories").cast("long")).alias("n_categories"),
        F.when(~mix_unknown, F.try_divide(F.col("top_category_amount"), F.col("purchase_amount")))
        .alias("top_category_share"),
        # A purchase whose channel is unknown is not an offline one: without a channel column, null, not 0.
        F.try_divide(F.col("digital"), F.col("channel_known")).alias("digital_share"),
        "spend_by_category",
        F.col("same_moment").cast("long").alias("same_moment_purchases"),
    )


def _amount(units: Column) -> Column:
    """An exact sum of amount units back in the currency unit."""
    return units / AMOUNT_UNITS


def _trend(recent: Column, prior: Column) -> Column:
    total = recent + prior
    return F.when(total > 0, (recent - prior) / total).otherwise(F.lit(0.0))


def _sample_std(n: Column, total: Column, sq_total: Column) -> Column:
    """Sample standard deviation from count, sum and sum of squares (they roll up across groups)."""
    variance = (sq_total - total * total / n) / (n - 1)
    return F.when(n >= 2, F.sqrt(F.greatest(variance, F.lit(0.0))))


def payment_days_past_due(payments_df: DataFrame, as_of: dt.date) -> DataFrame:
    """Payments due before the as-of date with `dpd` as it stood then and `is_on_time`."""
    as_of_lit = F.lit(as_of)
    is_paid_then = F.col("paid_date").isNotNull() & (F.col("paid_date") < as_of_lit)
    dpd = F.when(is_paid_then, F.greatest(F.datediff("paid_date", "due_date"), F.lit(0))).otherwise(
        F.datediff(as_of_lit, "due_date"))
    return (
        payments_df.filter(F.col("due_date") < as_of_lit)
        .withColumn("is_paid_then", is_paid_then)
        .withColumn("dpd", dpd)
        .withColumn("is_on_time", is_paid_then & (F.col("paid_date") <= F.col("due_date")))
    )


def loan_features(loans_df: DataFrame, payments_df: DataFrame, as_of: dt.date, late_window_days: int,
                  default_dpd: int) -> DataFrame:
    """One row per customer with a loan originated before the as-of date."""
    loans_then_df = loans_df.filter(F.col("origination_date") < F.lit(as_of))
    due_df = payment_days_past_due(payments_df, as_of)
    in_late_window = F.col("due_date") >= F.lit(as_of - dt.timedelta(days=late_window_days))
    paid_per_loan_df = due_df.groupBy("loan_id").agg(
        F.sum(F.when(F.col("is_paid_then"), F.coalesce(F.col("amount_paid"), F.col("amount_due")))
              .otherwise(0.0).cast(EXACT)).alias("paid"),
        F.count("*").alias("payments_due"),
        F.count(F.when(F.col("is_on_time"), 1)).alias("on_time"),
        F.max("dpd").alias("max_dpd"),
        F.max(F.when(~F.col("is_paid_then"), F.col("dpd"))).alias("current_dpd"),
        F.count(F.when(in_late_window & (F.col("dpd") > 0), 1)).alias("late_12m"),
    )
    per_loan_df = loans_then_df.join(paid_per_loan_df, on="loan_id", how="left")
    principal = F.col("principal").cast(EXACT)
    outstanding = F.greatest(principal - F.coalesce(F.col("paid"), F.lit(0).cast(EXACT)), F.lit(0).cast(EXACT))
    totals_df = per_loan_df.groupBy("customer_id").agg(
        F.count("*").alias("n_loans"),
        F.sum(principal).cast("double").alias("total_principal"),
        F.sum(outstanding).cast("double").alias("outstanding"),
        F.sum(F.coalesce(F.col("payments_due"), F.lit(0))).alias("payments_due"),
        F.sum(F.coalesce(F.col("on_time"), F.lit(0))).alias("on_time"),
        F.max("max_dpd").alias("max_dpd"),
        F.max("current_dpd").alias("current_dpd"),
        F.sum(F.coalesce(F.col("late_12m"), F.lit(0))).alias("late_payments_12m"),
        F.max(F.col("status").isin(*DEFAULTED_STATUSES)).alias("has_defaulted_status"),
    )
    return totals_df.select(
        "customer_id",
        F.col("n_loans").cast("long").alias("n_loans"),
        F.col("total_principal").cast("double").alias("total_principal"),
        F.try_divide(F.col("outstanding"), F.col("total_principal")).alias("utilisation"),
        F.try_divide(F.col("on_time").cast("double"), F.col("payments_due")).alias("on_time_rate"),
        F.coalesce(F.col("max_dpd"), F.lit(0)).cast("long").alias("max_dpd"),
        F.coalesce(F.col("current_dpd"), F.lit(0)).cast("long").alias("current_dpd"),
        F.col("late_payments_12m").cast("long").alias("late_payments_12m"),
        ((F.coalesce(F.col("max_dpd"), F.lit(0)) >= default_dpd) | F.col("has_defaulted_status"))
        .cast("long").alias("has_default"),
    )


def customers_as_of(customers_df: DataFrame, as_of: dt.date) -> DataFrame:
    """Customers who had signed up before the as-of date, with their tenure."""
    return customers_df.filter(F.col("signup_date") < F.lit(as_of)).select(
        "customer_id",
        F.datediff(F.lit(as_of), F.col("signup_date")).cast("long").alias("tenure_days"),
        F.col("annual_income").cast("double").alias("annual_income"),
        F.col("credit_score").cast("double").alias("credit_score"),
        "region",
        "employment_status",
    )


def products_held(products_df: DataFrame, as_of: dt.date) -> DataFrame:
    """customer_id, products_held: the products open at the as-of date (opened before it, not closed before it)."""
    is_open = (F.col("opened_date") < F.lit(as_of)) & (
        F.col("closed_date").isNull() | (F.col("closed_date") >= F.lit(as_of)))
    return (products_df.filter(is_open).groupBy("customer_id")
            .agg(F.array_sort(F.collect_set(F.lower(F.trim("product")))).alias("products_held")))


def empty_payments(spark) -> DataFrame:
    schema = ", ".join(f"{c.name} {c.type}" for c in LOAN_PAYMENTS.columns)
    return spark.createDataFrame([], schema)


def build_features(customers_df: DataFrame, txn_df: DataFrame, as_of: dt.date, lookback_days: int = 365,
                   trend_days: int = 90, loans_df: DataFrame | None = None, payments_df: DataFrame | None = None,
                   late_window_days: int = 365, default_dpd: int = 90,
                   products_df: DataFrame | None = None) -> DataFrame:
    """The customer_features rows for one as-of date: every customer signed up before it, one row each.

    Transactions and loans of a customer_id not in `customers_df` change no row: their aggregates are
    left out by the join to the customers.
    """
    base_df = customers_as_of(customers_df, as_of)
    txn_features_df = transaction_features(txn_df, as_of, lookback_days, trend_days)
    joined_df = base_df.join(txn_features_df, on="customer_id", how="left")
    if loans_df is not None:
        # Loans without a payments table: loan counts and defaulted statuses, no repayment history.
        known_payments_df = payments_df if payments_df is not None else empty_payments(loans_df.sparkSession)
        loan_df = loan_features(loans_df, known_payments_df, as_of, late_window_days, default_dpd)
        joined_df = joined_df.join(loan_df, on="customer_id", how="left")
    no_evidence = NULL_WITHOUT_LOANS if loans_df is None else NULL_WITHOUT_PAYMENTS if payments_df is None else ()
    for name in no_evidence:  # unknown for everyone, never a 0 that reads as good repayment
        kind = "double" if name in ("total_principal", "utilisation", "on_time_rate") else "long"
        joined_df = joined_df.withColumn(name, F.lit(None).cast(kind))
    if products_df is not None:  # a customer without a row holds none; without the table nobody is known
        joined_df = joined_df.join(products_held(products_df, as_of), on="customer_id", how="left").withColumn(
            "products_held", F.coalesce(F.col("products_held"), F.array().cast("array<string>")))
    else:
        joined_df = joined_df.withColumn("products_held", F.lit(None).cast("array<string>"))
    joined_df = joined_df.withColumn("spend_by_category", F.coalesce(
        F.col("spend_by_category"), F.array().cast(SPEND_BY_CATEGORY_TYPE))).withColumn(
        "same_moment_purchases", F.coalesce(F.col("same_moment_purchases"), F.lit(0).cast("long")))
    recency = F.coalesce(F.datediff(F.lit(as_of), F.to_date("last_purchase_ts")).cast("long"), F.col("tenure_days"))
    return joined_df.select(
        "customer_id",
        F.lit(as_of).alias("as_of_date"),
        *[_feature_column(name, recency, name not in no_evidence) for name in FEATURES],
        *DESCRIPTIVE_COLUMNS,
    )


def _feature_column(name: str, recency: Column, has_evidence: bool) -> Column:
    if name == "recency_days":
        return recency.alias(name)
    if name in ZERO_WHEN_NO_ACTIVITY and has_evidence:
        zero = F.lit(0.0) if name in ("monetary", "spend_30d", "spend_90d", "spend_365d", "spend_trend",
                                      "total_principal") else F.lit(0)
        if name in UNKNOWN:  # null in a customer's transaction row is unknown; 0 only without any transaction
            return F.when(F.col("frequency").isNull(), zero).otherwise(F.col(name)).alias(name)
        return F.coalesce(F.col(name), zero).alias(name)
    return F.col(name)
