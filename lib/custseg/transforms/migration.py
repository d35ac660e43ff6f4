"""Migration between two as-of dates: how many customers of each segment on the earlier date are in each segment
on the later one, including customers who appear (no earlier segment) or leave (no later one).

Segment ids are stable across retrains (ml/lineage.py), so a move from one id to another is a real move.
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

MIGRATION_SCHEMA = ("from_as_of_date date, from_segment_id int, to_segment_id int, customers long, "
                    "from_share double")


def migration(earlier: tuple[dt.date, DataFrame] | None, current_df: DataFrame) -> DataFrame:
    """MIGRATION_SCHEMA rows from the earlier date's (customer_id, segment_id) and the current ones; from_share =
    customers / the from-segment's customers on the earlier date (for appearing customers: / all who appeared).
    Without an earlier date (None) there is nothing to compare: no rows."""
    if earlier is None:
        return current_df.sparkSession.createDataFrame([], MIGRATION_SCHEMA)
    previous_as_of, previous_df = earlier
    moves_df = (previous_df.select("customer_id", F.col("segment_id").alias("from_segment_id"))
                .join(current_df.select("customer_id", F.col("segment_id").alias("to_segment_id")),
                      on="customer_id", how="full_outer")
                .groupBy("from_segment_id", "to_segment_id").agg(F.count("*").alias("customers")))
    from_size = F.sum("customers").over(Window.partitionBy("from_segment_id"))
    return moves_df.select(F.lit(previous_as_of).alias("from_as_of_date"), "from_segment_id", "to_segment_id",
                           "customers", (F.col("customers") / from_size).alias("from_share"))
