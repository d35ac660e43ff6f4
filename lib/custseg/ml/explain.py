"""Assign customers to segments with the evidence: distance to every centroid, the runner-up segment, the margin
and the reason codes, in the pass that assigns them (built-in array functions, no Python UDF).

The rule (docs/model.md, "Reading an assignment"; custseg/applicant.py applies the same one without Spark):
- own segment: K-means' nearest centroid; second: the nearest other one (lowest segment id on a tie);
- distance_ratio = distance to own / distance to second (near 1: on the border between the two);
- a feature's pull = (x - second)^2 - (x - own)^2 in the scaled space: how much it shortens the customer's
  squared distance to its own centroid compared with the second's; the reasons are the REASONS features with
  the largest positive pull (feature order on a tie), each with the customer's value as the model used it
  and the segment's centroid, both in original units.
"""
from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from custseg.contract.outputs import REASON_RANKS
from custseg.ml.pipeline import (
    MODEL_VALUES,
    PREDICTION,
    SCALED,
    centers_of,
    centers_original,
    fitted_kmeans,
    model_features,
)
from custseg.ml.preprocessing import CAPPED_FEATURES

REASONS = len(REASON_RANKS)


def _matrix(rows: list[list[float]]) -> Column:
    return F.array(*[F.array(*[F.lit(float(v)) for v in row]) for row in rows])


def _squared_distance(point: Column, center: Column) -> Column:
    return F.aggregate(F.zip_with(point, center, lambda a, b: (a - b) * (a - b)), F.lit(0.0), lambda acc, x: acc + x)


def score(model: PipelineModel, scaled_df: DataFrame, ids: list[int] | None = None) -> DataFrame:
    """contract.outputs.SCORED_COLUMNS for already scaled features (ml/pipeline.py scaled_features), with each
    cluster index given its stable segment id (`ids`, by index; ml/lineage.py), the index itself by default."""
    centers = _matrix(centers_of(model))
    stable = F.array(*[F.lit(int(i)) for i in (ids if ids is not None else range(len(centers_of(model))))])
    originals = _matrix(centers_original(model))
    names = F.array(*[F.lit(f) for f in model_features(model)])
    point = vector_to_array(F.col(SCALED))
    own = F.col(PREDICTION)

    measured_df = fitted_kmeans(model).transform(scaled_df).select(
        "customer_id", own.cast("int").alias(PREDICTION), CAPPED_FEATURES, MODEL_VALUES,
        point.alias("_x"), F.transform(centers, lambda c: F.sqrt(_squared_distance(point, c))).alias("_d"))
    others = F.filter(F.transform("_d", lambda d, i: F.struct(d.alias("d"), i.alias("i"))),
                      lambda s: s["i"] != own)
    second_df = measured_df.withColumn("_second", F.get(F.array_sort(others), 0))

    own_center, second_center = F.get(centers, own), F.get(centers, F.col("_second.i"))
    # Sorted ascending by (-pull, feature index): the largest pull first, feature order on a tie.
    pulls = F.transform("_x", lambda x, j: F.struct(
        ((x - F.get(own_center, j)) * (x - F.get(own_center, j))
         - (x - F.get(second_center, j)) * (x - F.get(second_center, j))).alias("minus_pull"), j.alias("j")))
    top = F.slice(F.array_sort(F.filter(pulls, lambda p: p["minus_pull"] < 0)), 1, REASONS)
    reasons_df = second_df.withColumn("_top", top)

    distance = F.get(F.col("_d"), own)
    second_distance = F.col("_second.d")
    reason_columns = []
    for n in range(REASONS):
        j = F.get(F.col("_top"), n)["j"]
        reason_columns += [F.get(names, j).alias(f"reason_{n + 1}"),
                           F.get(F.col(MODEL_VALUES), j).alias(f"reason_{n + 1}_value"),
                           F.get(F.get(originals, own), j).alias(f"reason_{n + 1}_segment_value")]
    return reasons_df.select(
        "customer_id", F.get(stable, own).alias("segment_id"), distance.alias("distance_to_centroid"),
        F.col(CAPPED_FEATURES).cast("int").alias(CAPPED_FEATURES),
        F.get(stable, F.col("_second.i")).alias("second_segment_id"), second_distance.alias("distance_to_second"),
        F.when(second_distance > 0, distance / second_distance).alias("distance_ratio"), *reason_columns)
