"""What sets each segment's customers apart beyond the clustering features: what they buy (spend by transaction
category, digital share) and who they are (descriptive customer attributes), each against all customers.

One tidy result, CHARACTERISTICS_SCHEMA: a row per aspect, value and segment. Protected attributes never reach
it (the config refuses them as descriptive attributes); they appear in the fairness audit only.
"""
from __future__ import annotations

from functools import reduce

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from custseg.transforms.features import EXACT
from custseg.transforms.statistics import MIN_DESCRIBED_CUSTOMERS

SPEND_CATEGORY = "spend_category"
CHANNEL = "channel"
DIGITAL = "digital"
CHARACTERISTICS_SCHEMA = ("aspect string, value string, segment_id int, customers long, amount double, "
                          "share double, population_share double, lift double")
CHARACTERISTICS_COLUMNS = tuple(part.split()[0] for part in CHARACTERISTICS_SCHEMA.split(", "))


def spend_rows(features_df: DataFrame) -> DataFrame:
    """customer_id, aspect, value, amount: one row per customer and category it bought in (lookback window)."""
    return features_df.select("customer_id", F.lit(SPEND_CATEGORY).alias("aspect"),
                              F.explode("spend_by_category").alias("spend")).select(
        "customer_id", "aspect", F.col("spend.category").alias("value"), F.col("spend.amount").alias("amount"))


def attribute_rows(groups_df: DataFrame) -> DataFrame:
    """customer_id, aspect, value, amount (null) from attributes.attribute_groups."""
    return groups_df.select("customer_id", F.col("attribute").alias("aspect"), F.col("group").alias("value"),
                            F.lit(None).cast("double").alias("amount"))


def mix(long_df: DataFrame, assignments_df: DataFrame) -> DataFrame:
    """Per aspect, segment and value: customers, amount, share of the segment and of all customers, lift.

    long_df holds one row per customer and value (customer_id, aspect, value, amount). A share is of the amount
    (spend) when the aspect has one, else of the customers. Customers without a segment are left out.
    """
    joined_df = long_df.join(assignments_df.select("customer_id", "segment_id"), on="customer_id", how="inner")
    # Summed exactly (as the features' amounts): a double sum would depend on the order rows arrive in.
    counted_df = joined_df.groupBy("aspect", "segment_id", "value").agg(
        F.count("*").alias("customers"), F.sum(F.col("amount").cast(EXACT)).alias("amount"))
    measure = F.coalesce(F.col("amount"), F.col("customers").cast(EXACT))

    def total(*keys: str):
        return F.sum(measure).over(Window.partitionBy("aspect", *keys)).cast("double")

    # The aspect's total over all customers by a join, not a window: the aspect is often a constant, which would
    # leave the window without a partition key.
    totals_df = counted_df.groupBy("aspect").agg(F.sum(measure).cast("double").alias("_aspect_total"))
    share = measure.cast("double") / total("segment_id")
    population_share = total("value") / F.col("_aspect_total")
    return counted_df.join(F.broadcast(totals_df), on="aspect").select(
        "aspect", "value", F.col("segment_id").cast("int"), F.col("customers").cast("long"),
        F.col("amount").cast("double").alias("amount"),
        share.alias("share"), population_share.alias("population_share"),
        F.try_divide(share, population_share).alias("lift"))


def digital_rows(features_df: DataFrame, assignments_df: DataFrame) -> DataFrame:
    """The mean digital share of purchases per segment against all customers' (customers with a known channel)."""
    joined_df = features_df.select("customer_id", "digital_share").join(
        assignments_df.select("customer_id", "segment_id"), on="customer_id", how="inner")
    exact = F.col("digital_share").cast(EXACT)
    population = joined_df.agg(F.avg(exact).cast("double").alias("population_share"))
    by_segment = joined_df.groupBy("segment_id").agg(F.count("digital_share").alias("customers"),
                                                     F.avg(exact).cast("double").alias("share"))
    return by_segment.crossJoin(population).filter(F.col("customers") > 0).select(
        F.lit(CHANNEL).alias("aspect"), F.lit(DIGITAL).alias("value"), F.col("segment_id").cast("int"),
        F.col("customers").cast("long"), F.lit(None).cast("double").alias("amount"), "share", "population_share",
        F.try_divide(F.col("share"), F.col("population_share")).alias("lift"))


def segment_characteristics(features_df: DataFrame, assignments_df: DataFrame, groups_df: DataFrame | None,
                            min_customers: int = MIN_DESCRIBED_CUSTOMERS) -> DataFrame:
    """CHARACTERISTICS_SCHEMA rows: spend mix by category, digital share and descriptive attributes.

    The lift is null (unknown) where fewer than `min_customers` are behind the share: two buyers in a lapsed
    segment make a share of its spend, not what it buys."""
    parts = [digital_rows(features_df, assignments_df)]
    if "spend_by_category" in features_df.columns:  # features written before it existed have none
        parts.append(mix(spend_rows(features_df), assignments_df))
    if groups_df is not None:
        parts.append(mix(attribute_rows(groups_df), assignments_df))
    described_df = reduce(DataFrame.unionByName, parts).withColumn(
        "lift", F.when(F.col("customers") >= min_customers, F.col("lift")))
    return described_df.select(*CHARACTERISTICS_COLUMNS)
