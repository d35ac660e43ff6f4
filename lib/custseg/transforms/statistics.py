"""Describe each segment: size, feature statistics against all customers, risk, a name, a strategy.

Statistics are Spark aggregations; only k x features rows come to the driver, where the naming and
tier rules (documented in docs/model.md, thresholds in the config's segment_rules) are applied.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from custseg.transforms.sampling import sample_per_group

STAT_COLUMNS = ("n", "mean", "stddev", "min", "q1", "median", "q3", "max")
# Customers per segment whose values give the quartiles: rank error about 1 / sqrt(20,000), under 1 %.
QUARTILE_SAMPLE = 20_000
QUARTILES = (0.25, 0.5, 0.75)


def tidy_values(scored_df: DataFrame, features: list[str]) -> DataFrame:
    """segment_id, feature, value: one row per customer and feature (the long format BI tools like)."""
    return scored_df.select(
        "segment_id", *[F.col(f).cast("double").alias(f) for f in features]
    ).unpivot("segment_id", features, "feature", "value")


# A segment's mean describes it (z-score, lift) when this many of its customers, and this share, have a value.
MIN_DESCRIBED_CUSTOMERS = 30
MIN_DESCRIBED_SHARE = 0.1


def feature_stats(scored_df: DataFrame, features: list[str], sizes: dict[int, int], seed: int,
                  quartile_cap: int = QUARTILE_SAMPLE) -> DataFrame:
    """Per segment and feature: distribution in original units, z-score and lift against all customers.

    Counts, means, deviations and extremes are over every customer; the quartiles over about
    `quartile_cap` customers per segment (all of a smaller one), chosen by a seeded hash: quantile
    summaries over every value were most of the profiling time at scale (benchmarks/README.md). The z-score
    and lift are null where too few of the segment have a value (MIN_DESCRIBED_*): unknown, not typical.
    """
    long_df = tidy_values(scored_df, features)
    by_segment_df = long_df.groupBy("segment_id", "feature").agg(
        F.count("*").alias("size"), F.count("value").alias("n"), F.avg("value").alias("mean"),
        F.stddev("value").alias("stddev"),
        F.min("value").alias("min"), F.max("value").alias("max"),
    )
    quartiles_df = (tidy_values(sample_per_group(scored_df, "segment_id", sizes, quartile_cap, seed), features)
                    .groupBy("segment_id", "feature")
                    .agg(F.percentile_approx("value", [0.25, 0.5, 0.75], 10000).alias("q")))
    population_df = long_df.groupBy("feature").agg(
        F.avg("value").alias("population_mean"), F.stddev("value").alias("population_stddev"))
    z = F.try_divide(F.col("mean") - F.col("population_mean"), F.col("population_stddev"))
    described = (F.col("n") >= MIN_DESCRIBED_CUSTOMERS) & (F.col("n") >= MIN_DESCRIBED_SHARE * F.col("size"))
    return (by_segment_df.join(quartiles_df, on=["segment_id", "feature"], how="left")
            .join(population_df, on="feature", how="left").select(
                "segment_id", "feature", "n", "mean", "stddev", "min",
                F.col("q")[0].alias("q1"), F.col("q")[1].alias("median"), F.col("q")[2].alias("q3"), "max",
                "population_mean", "population_stddev",
                # A constant feature sets no segment apart (0); one too few of the segment have a value of is
                # unknown (null): a lapsed segment's two buyers do not describe it.
                F.when(described, F.coalesce(z, F.lit(0.0))).alias("z_score"),
                F.when(described, F.try_divide(F.col("mean"), F.col("population_mean"))).alias("lift"),
            ))


def segment_risk(scored_df: DataFrame, has_loan_data: bool = True) -> DataFrame:
    """Per segment: size, lapsed share and its borrowers' outcomes, as counts and rates (docs/model.md).

    Borrowers are customers with n_loans > 0 and the rates are over them only: default_rate_ever from
    has_default (ever before the as-of date), late_payment_rate_12m from late_payments_12m (the late-payment
    window). Without loan data (no loans table: `has_loan_data` False, or n_loans null for a whole segment)
    the borrower counts and rates are null, not 0, so that no reader takes missing data for good repayment; so
    are the late payments without a loan_payments table (late_payments_12m null for every customer).
    """
    is_borrower = F.col("n_loans") > 0
    segment_has_loan_data = F.lit(has_loan_data) & (F.count("n_loans") > 0)

    def borrowers_who(condition: Column) -> Column:
        return F.when(segment_has_loan_data, F.count(F.when(is_borrower & condition, 1)))

    total = scored_df.count()
    counts_df = scored_df.groupBy("segment_id").agg(
        F.count("*").alias("size"),
        F.avg((F.col("frequency") == 0).cast("double")).alias("lapsed_share"),
        F.when(segment_has_loan_data, F.avg(is_borrower.cast("double"))).alias("borrower_share"),
        borrowers_who(F.lit(True)).alias("borrowers"),
        borrowers_who(F.col("has_default") == 1).alias("defaulted_borrowers"),
        # Loans without a payments table: late payments unknown (null), not none.
        F.when(F.count("late_payments_12m") > 0, borrowers_who(F.col("late_payments_12m") > 0))
        .alias("late_borrowers_12m"),
        F.when(segment_has_loan_data, F.max("max_dpd")).alias("max_dpd"),
        F.avg("credit_score").alias("mean_credit_score"),
        F.avg("distance_to_centroid").alias("mean_distance_to_centroid"),
    )
    return counts_df.select(
        "segment_id", "size", (F.col("size") / F.lit(total)).alias("share"), "lapsed_share", "borrower_share",
        "borrowers", "defaulted_borrowers",
        F.try_divide(F.col("defaulted_borrowers").cast("double"), F.col("borrowers")).alias("default_rate_ever"),
        "late_borrowers_12m",
        F.try_divide(F.col("late_borrowers_12m").cast("double"), F.col("borrowers")).alias("late_payment_rate_12m"),
        "max_dpd", "mean_credit_score", "mean_distance_to_centroid",
    )


def population_quartiles(features_df: DataFrame, features: tuple[str, ...]) -> dict[str, tuple[float | None, ...]]:
    """25th, 50th and 75th percentile of each feature over all customers (approximate, one pass; None when
    all null): the yardstick the segment names compare each segment's median with."""
    row = features_df.agg(*[F.percentile_approx(F.col(f).cast("double"), list(QUARTILES), 10000).alias(f)
                            for f in features]).first()
    return {f: tuple(row[f]) if row[f] is not None else (None,) * len(QUARTILES) for f in features}


# Customers with several purchases all at one moment: a few in card data; many mean invoice lines, not purchases.
SAME_MOMENT_SHARE = 0.1
# Purchases at the moment of the customer's previous one: the lines of customers with several invoices.
SAME_MOMENT_PURCHASE_SHARE = 0.2
ONE_MOMENT_CAUSES = ("either the transactions are lines of one basket or invoice (frequency, average ticket, gaps and "
                     "repeat buying count rows, so name the basket or invoice column in inputs.transactions.basket) "
                     "or their timestamps carry no time of day (purchases on one day then look simultaneous)")
# Buyers with purchases in the recent trend window only: new customers in a sound history; nearly all of them
# mean a history shorter than the two windows spend_trend compares.
RECENT_ONLY_SHARE = 0.9


def check_population(features_df: DataFrame, as_of: dt.date, lookback_days: int,
                     trend_window_days: int = 90) -> list[str]:
    """Stop on a date without any customer; warn (returned, for the log, the run's metrics and the report) when
    no customer purchased in the lookback window (a stale as-of date, misread transaction dates), most net
    spends are negative (spending booked as negative amounts, as in a ledger), many customers made all their
    purchases at one moment or many purchases were at the moment of the one before (lines of one invoice given
    as transactions), or nearly every buyer bought in the recent trend window only (transactions covering less
    than the two windows spend_trend compares)."""
    all_at_once = F.when(F.col("is_repeat_buyer") == 1, (F.col("gap_mean_days") == 0).cast("double"))
    recent_only = F.when(F.col("frequency") > 0, (F.col("spend_trend") == 1).cast("double"))
    # Features written before the column existed have no count of purchases at one moment.
    same_moment = (F.col("same_moment_purchases") if "same_moment_purchases" in features_df.columns
                   else F.lit(None).cast("long"))
    # Of the purchases after each buyer's first (a lapsed customer has none).
    later_purchases = F.when(F.col("frequency") > 0, F.col("frequency") - 1)
    row = features_df.agg(F.count("*").alias("customers"), F.max("frequency").alias("most_purchases"),
                          F.try_divide(F.sum(same_moment), F.sum(later_purchases)).alias("same_moment_share"),
                          # Over the customers with a net spend: a majority of lapsed ones must not hide a ledger.
                          F.avg(F.when(F.col("monetary") != 0, (F.col("monetary") < 0).cast("double")))
                          .alias("negative_share"),
                          F.avg(all_at_once).alias("all_at_once_share"),
                          F.avg(recent_only).alias("recent_only_share")).first()
    if row["customers"] == 0:
        raise ValueError(f"customer_features has no customer for {as_of}: nothing to segment (run build_features "
                         "for this date; every customer must have signed up before it)")
    warnings = []
    if not row["most_purchases"]:
        warnings.append(f"no customer made a purchase in the {lookback_days} days before {as_of}: every customer is "
                        "lapsed, and the segments rest on what is not about purchases (tenure, and income, credit "
                        "score and loans where given); check as_of_date against the transactions' dates")
    # The purchases' share says more than the customers' (one multi-line invoice in ten keeps a customer out of it).
    if (row["same_moment_share"] or 0) > SAME_MOMENT_PURCHASE_SHARE:
        warnings.append(f"{row['same_moment_share']:.0%} of the purchases after a customer's first were made at the "
                        f"same moment as the one before: {ONE_MOMENT_CAUSES}")
    elif (row["all_at_once_share"] or 0) > SAME_MOMENT_SHARE:
        warnings.append(f"{row['all_at_once_share']:.0%} of the customers with several purchases made them all at the "
                        f"same moment: {ONE_MOMENT_CAUSES}")
    if (row["recent_only_share"] or 0) > RECENT_ONLY_SHARE:
        warnings.append(f"{row['recent_only_share']:.0%} of the customers with purchases bought only in the "
                        f"{trend_window_days} days before {as_of}, none in the {trend_window_days} days before those: "
                        f"spend_trend tells them apart little; check that the transactions cover the "
                        f"{2 * trend_window_days} days it compares (features.trend_window_days)")
    if (row["negative_share"] or 0) > 0.5:
        warnings.append(f"{row['negative_share']:.0%} of the customers with a net spend have a negative one: "
                        "purchases are amounts above 0 and refunds below; a ledger that books spending as negative "
                        "amounts needs them turned round before this job")
    return warnings


def usable_features(features_df: DataFrame, wanted: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """Drop features that are all null or constant (they cannot be imputed or carry no information).

    A NaN or infinite value stops the run with the feature and some of its customers named: validation
    rejects such inputs, so one here is a bug upstream, and K-means would fail on it without a name.
    """
    def non_finite(feature: str) -> Column:
        return F.count(F.when(F.isnan(feature) | (F.abs(feature) == float("inf")), 1))

    # min = max says constant in one plain aggregate; a distinct count per column would copy every row per column.
    row = features_df.agg(*[agg(f).alias(f"{name}_{f}") for f in wanted
                            for name, agg in (("n", F.count), ("min", F.min), ("max", F.max), ("bad", non_finite))]
                          ).first()
    for feature in wanted:
        if row[f"bad_{feature}"]:
            bad_df = features_df.filter(F.isnan(feature) | (F.abs(feature) == float("inf")))
            examples = [r["customer_id"] for r in bad_df.orderBy("customer_id").limit(5).collect()]
            raise ValueError(f"customer_features.{feature} is NaN or infinite for {row[f'bad_{feature}']} customers "
                             f"(e.g. {', '.join(examples)}); no feature may be non-finite")
    dropped = {f: ("all null" if row[f"n_{f}"] == 0 else "constant") for f in wanted
               if row[f"n_{f}"] == 0 or row[f"min_{f}"] == row[f"max_{f}"]}
    return tuple(f for f in wanted if f not in dropped), dropped
