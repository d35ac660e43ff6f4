"""Assign customers to segments with the evidence: distance to every centroid, the runner-up segment, the margin
and the reason codes, in the pass that assigns them (built-in column functions, no Python UDF).

The rule (docs/model.md, "Reading an assignment"; custseg/applicant.py applies the same one without Spark):
- own segment: K-means' nearest centroid; second: the nearest other one (lowest segment id on a tie);
- distance_ratio = distance to own / distance to second (near 1: on the border between the two);
- a feature's pull = (x - second)^2 - (x - own)^2 in the scaled space: how much it shortens the customer's
  squared distance to its own centroid compared with the second's; the reasons are the REASONS features with
  the largest positive pull (feature order on a tie), each with the customer's value as the model used it
  and the segment's centroid, both in original units.
"""
from __future__ import annotations

import operator
from functools import reduce

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
    return F.array(*[_vector(row) for row in rows])


def _vector(values: list[float]) -> Column:
    return F.array(*[F.lit(float(v)) for v in values])


def _square(a: Column, b: Column | float) -> Column:
    return (a - b) * (a - b)


def score(model: PipelineModel, scaled_df: DataFrame, ids: list[int] | None = None) -> DataFrame:
    """contract.outputs.SCORED_COLUMNS for already scaled features (ml/pipeline.py scaled_features), with each
    cluster index given its stable segment id (`ids`, by index; ml/lineage.py), the index itself by default.

    Every distance and pull is written out per centre and feature rather than with higher-order functions over
    arrays, which Spark evaluates row by row without generated code (benchmarks/README.md).
    """
    centers = centers_of(model)
    stable = F.array(*[F.lit(int(i)) for i in (ids if ids is not None else range(len(centers)))])
    originals = _matrix(centers_original(model))
    names = F.array(*[F.lit(f) for f in model_features(model)])
    own = F.col(PREDICTION)
    x = [F.get(F.col("_x"), j) for j in range(len(centers[0]))]

    measured_df = fitted_kmeans(model).transform(scaled_df).select(
        "customer_id", own.cast("int").alias(PREDICTION), CAPPED_FEATURES, MODEL_VALUES,
        vector_to_array(F.col(SCALED)).alias("_x"))
    distances = [F.sqrt(reduce(operator.add, [_square(xj, c) for xj, c in zip(x, center, strict=True)], F.lit(0.0)))
                 for center in centers]
    measured_df = measured_df.withColumn("_d", F.array(*distances))
    # The nearest other centre: the least (distance, index), so the lowest index on a tie.
    others = [F.when(own != i, F.struct(F.get(F.col("_d"), i).alias("d"), F.lit(i).alias("i")))
              for i in range(len(centers))]
    second_df = measured_df.withColumn("_second", F.least(*others) if len(others) > 1 else others[0])

    # Feature j's centre values by cluster index, so that the own and second centres' value is an array lookup.
    by_feature = [_vector([center[j] for center in centers]) for j in range(len(x))]
    pulls_df = second_df.select("*", *[
        (_square(xj, F.get(values, F.col("_second.i"))) - _square(xj, F.get(values, own))).alias(f"_pull{j}")
        for j, (xj, values) in enumerate(zip(x, by_feature, strict=True))])
    # The positive pulls, largest first and the lowest feature index on a tie: (pull, -j) in descending order.
    positive = [F.when(F.col(f"_pull{j}") > 0, F.struct(F.col(f"_pull{j}").alias("pull"),
                                                         F.lit(-j).alias("minus_j"))) for j in range(len(x))]
    reasons_df = pulls_df.withColumn("_top", F.slice(F.sort_array(F.array(*positive), asc=False), 1, REASONS))

    distance = F.get(F.col("_d"), own)
    second_distance = F.col("_second.d")
    reason_columns = []
    for n in range(REASONS):
        j = -F.get(F.col("_top"), n)["minus_j"]
        reason_columns += [F.get(names, j).alias(f"reason_{n + 1}"),
                           F.get(F.col(MODEL_VALUES), j).alias(f"reason_{n + 1}_value"),
                           F.get(F.get(originals, own), j).alias(f"reason_{n + 1}_segment_value")]
    return reasons_df.select(
        "customer_id", F.get(stable, own).alias("segment_id"), distance.alias("distance_to_centroid"),
        F.col(CAPPED_FEATURES).cast("int").alias(CAPPED_FEATURES),
        F.get(stable, F.col("_second.i")).alias("second_segment_id"), second_distance.alias("distance_to_second"),
        F.when(second_distance > 0, distance / second_distance).alias("distance_ratio"), *reason_columns)
