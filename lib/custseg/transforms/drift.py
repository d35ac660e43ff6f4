"""Drift of a scored population against the training run of its model: population stability index (PSI) of
segment shares and of each clustering feature, and the share of customers far from every centroid.

PSI = sum over bins of (actual - expected) * ln(actual / expected), with shares floored at PSI_FLOOR so an
empty bin counts as rare rather than infinitely surprising. Feature bins are the training deciles (plus
one bin for missing values); each population is read once for all features.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

PSI_FLOOR = 1e-4
DECILES = [i / 10 for i in range(1, 10)]
QUANTILE_ERROR = 0.001
MISSING_BIN = -1


def psi(expected: dict, actual: dict) -> float:
    """PSI between two count distributions over the same (or overlapping) bins."""
    bins = set(expected) | set(actual)
    n_expected, n_actual = sum(expected.values()), sum(actual.values())
    if not n_expected or not n_actual:
        return 0.0
    total = 0.0
    for b in bins:
        e = max(expected.get(b, 0) / n_expected, PSI_FLOOR)
        a = max(actual.get(b, 0) / n_actual, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def decile_edges(training_df: DataFrame, features: list[str]) -> dict[str, list[float]]:
    """Each feature's distinct training deciles: the inner bin edges."""
    quantiles = training_df.approxQuantile(features, DECILES, QUANTILE_ERROR)
    return {f: sorted(set(q)) for f, q in zip(features, quantiles, strict=True)}


def _bin(value: Column, edges: list[float]) -> Column:
    """0 .. len(edges): the number of edges below or at the value; MISSING_BIN when null."""
    index = sum((F.when(value > F.lit(edge), 1).otherwise(0) for edge in edges), F.lit(0))
    return F.when(value.isNull(), F.lit(MISSING_BIN)).otherwise(index)


def binned_counts(df: DataFrame, edges: dict[str, list[float]]) -> dict[str, dict[int, int]]:
    """feature -> {bin: customers}, from one aggregation over the population."""
    bins = {f: [MISSING_BIN, *range(len(e) + 1)] for f, e in edges.items()}
    row = df.select(*[_bin(F.col(f).cast("double"), e).alias(f) for f, e in edges.items()]).agg(
        *[F.count(F.when(F.col(f) == b, 1)).alias(f"{f}__{b}") for f, bs in bins.items() for b in bs]).first()
    return {f: {b: row[f"{f}__{b}"] for b in bs} for f, bs in bins.items()}


@dataclass(frozen=True)
class DriftRow:
    measure: str        # segment_shares, feature, far_from_centroids
    name: str           # the feature, or the measure again
    value: float        # PSI, or the share of customers beyond the training 99th percentile distance
    threshold: float
    is_drifted: bool


def measure_drift(training_features_df: DataFrame, scored_features_df: DataFrame, features: list[str],
                  training_segments: dict[int, int], scored_segments: dict[int, int],
                  training_p99_distance: float, scored_distances_df: DataFrame, psi_threshold: float,
                  feature_psi_threshold: float, far_share_threshold: float) -> list[DriftRow]:
    """Every drift measure of a scored population against its model's training population."""
    rows = []
    shares_psi = psi(training_segments, scored_segments)
    rows.append(DriftRow("segment_shares", "segment_shares", shares_psi, psi_threshold, shares_psi > psi_threshold))
    edges = decile_edges(training_features_df, features)
    expected, actual = binned_counts(training_features_df, edges), binned_counts(scored_features_df, edges)
    for feature in features:
        value = psi(expected[feature], actual[feature])
        rows.append(DriftRow("feature", feature, value, feature_psi_threshold, value > feature_psi_threshold))
    far = scored_distances_df.agg(F.avg((F.col("distance_to_centroid") > training_p99_distance).cast("double"))
                                  ).first()[0] or 0.0
    rows.append(DriftRow("far_from_centroids", "far_from_centroids", far, far_share_threshold,
                         far > far_share_threshold))
    return rows


def retrain_reason(rows: list[DriftRow]) -> str | None:
    """Why a retrain is recommended (the drifted measures), or None."""
    drifted = [r for r in rows if r.is_drifted]
    if not drifted:
        return None
    return "; ".join(f"{r.name} {r.value:.3f} > {r.threshold:g}" for r in drifted)
