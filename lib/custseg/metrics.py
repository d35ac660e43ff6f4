"""Clustering quality measures computed with Spark aggregations; only k-sized results reach the driver.

Definitions follow scikit-learn's (davies_bouldin_score, calinski_harabasz_score, adjusted_rand_score),
so the numbers can be checked against it.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import comb

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F


@dataclass(frozen=True)
class ClusterStats:
    labels: list[int]
    sizes: np.ndarray        # points per cluster
    centroids: np.ndarray    # k x d
    mean_distance: np.ndarray  # mean Euclidean distance to the own centroid, per cluster
    within_ss: float         # sum of squared distances to the own centroid (SSE)


def cluster_stats(df: DataFrame, features_col: str, label_col: str) -> ClusterStats:
    """Sizes, centroids, intra-cluster distances: two aggregation passes over df."""
    arrays_df = df.select(F.col(label_col).alias("label"), vector_to_array(F.col(features_col)).alias("x"))
    dim = len(arrays_df.select("x").first()["x"])
    sums = (arrays_df.groupBy("label")
            .agg(F.count("*").alias("n"), *[F.sum(F.col("x")[j]).alias(f"s{j}") for j in range(dim)])
            .orderBy("label").collect())
    labels = [r["label"] for r in sums]
    sizes = np.array([r["n"] for r in sums], dtype=float)
    centroids = np.array([[r[f"s{j}"] for j in range(dim)] for r in sums], dtype=float) / sizes[:, None]

    centroid_map = F.create_map(*[item for label, c in zip(labels, centroids, strict=False)
                                  for item in (F.lit(label), F.array(*[F.lit(float(v)) for v in c]))])
    squared = F.aggregate(F.zip_with(F.col("x"), F.element_at(centroid_map, F.col("label")),
                                     lambda a, b: (a - b) * (a - b)), F.lit(0.0), lambda acc, v: acc + v)
    distances = (arrays_df.withColumn("sq", squared)
                 .groupBy("label").agg(F.sum(F.sqrt("sq")).alias("dist"), F.sum("sq").alias("sq"))
                 .orderBy("label").collect())
    mean_distance = np.array([r["dist"] for r in distances]) / sizes
    within_ss = float(sum(r["sq"] for r in distances))
    return ClusterStats(labels, sizes, centroids, mean_distance, within_ss)


def davies_bouldin(stats: ClusterStats) -> float:
    """Mean over clusters of the worst (S_i + S_j) / d(c_i, c_j); lower is better."""
    k = len(stats.labels)
    if k < 2:
        return float("nan")
    centre_dist = np.linalg.norm(stats.centroids[:, None, :] - stats.centroids[None, :, :], axis=2)
    if np.allclose(stats.mean_distance, 0) or np.allclose(centre_dist, 0):
        return 0.0
    centre_dist[centre_dist == 0] = np.inf
    ratios = (stats.mean_distance[:, None] + stats.mean_distance[None, :]) / centre_dist
    return float(np.mean(np.max(ratios, axis=1)))


def calinski_harabasz(stats: ClusterStats) -> float:
    """Between-cluster over within-cluster dispersion, scaled by degrees of freedom; higher is better."""
    k = len(stats.labels)
    n = float(stats.sizes.sum())
    if k < 2 or n <= k:
        return float("nan")
    overall = (stats.centroids * stats.sizes[:, None]).sum(axis=0) / n
    between = float((stats.sizes * ((stats.centroids - overall) ** 2).sum(axis=1)).sum())
    if stats.within_ss == 0:
        return 1.0
    return between * (n - k) / (stats.within_ss * (k - 1))


def adjusted_rand_index(df: DataFrame, label_a: str, label_b: str) -> float:
    """Agreement of two labelings of the same rows, corrected for chance (1 = identical partitions)."""
    table = df.groupBy(label_a, label_b).count().collect()
    n = sum(r["count"] for r in table)
    rows: dict = {}
    cols: dict = {}
    for r in table:
        rows[r[label_a]] = rows.get(r[label_a], 0) + r["count"]
        cols[r[label_b]] = cols.get(r[label_b], 0) + r["count"]
    index = sum(comb(r["count"], 2) for r in table)
    sum_rows = sum(comb(v, 2) for v in rows.values())
    sum_cols = sum(comb(v, 2) for v in cols.values())
    total = comb(n, 2)
    if total == 0:
        return 1.0
    expected = sum_rows * sum_cols / total
    maximum = (sum_rows + sum_cols) / 2
    if maximum == expected:
        return 1.0
    return float((index - expected) / (maximum - expected))
