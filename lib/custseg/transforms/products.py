"""Product holdings per segment: the Spark side of the product opportunities (ml/opportunities.py scores them)."""
from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def product_holders(features_df: DataFrame, assignments_df: DataFrame) -> list[tuple[int, str, int]]:
    """(segment_id, product, holders) for every product some customer of a segment holds at the as-of date
    (customer_features.products_held); a k x products result."""
    held_df = features_df.select("customer_id", F.explode("products_held").alias("product"))
    rows = (held_df.join(assignments_df.select("customer_id", "segment_id"), on="customer_id", how="inner")
            .groupBy("segment_id", "product").agg(F.count("*").alias("holders"))
            .orderBy("segment_id", "product").collect())
    return [(int(r["segment_id"]), r["product"], int(r["holders"])) for r in rows]

