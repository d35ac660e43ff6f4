"""Stable segment ids across retrains: match a new model's clusters to the previous run's segments.

K-means numbers its clusters arbitrarily, so each retrain would renumber the segments. The clusters of a new
run are matched to the segments of the previous training run by their customers in common (Jaccard overlap of
the two memberships, restricted to customers both runs assigned), one to one by minimum-cost assignment
(scipy's linear_sum_assignment on -overlap). A cluster keeps the previous id when its overlap reaches the
threshold (config model.lineage_min_overlap); otherwise it gets a new id above every id ever given, so a
retired id is never reused. The matching is pure Python on k x k counts; the functions below it gather them with Spark.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from scipy.optimize import linear_sum_assignment

from custseg.contract import outputs
from custseg.platform.ledger import Ledger, RunEntry
from custseg.platform.locations import join_uri
from custseg.platform.storage import delta_exists, read_delta

LINEAGE_SCHEMA = ("cluster int, segment_id int, previous_run_id string, previous_as_of_date date, "
                  "previous_segment_id int, overlap double, status string")


class Link(NamedTuple):
    cluster: int                      # the new model's cluster index
    segment_id: int | None            # the stable id it gets (None on a retired previous segment's row)
    previous_segment_id: int | None   # the previous run's segment it continues (None: new)
    overlap: float | None             # Jaccard overlap with that segment on the customers in common
    status: str                       # kept, new or retired


def jaccard(counts: np.ndarray) -> np.ndarray:
    """Jaccard overlap of every (new cluster, previous segment) pair from their customers-in-common counts."""
    rows = counts.sum(axis=1, keepdims=True)
    cols = counts.sum(axis=0, keepdims=True)
    union = rows + cols - counts
    return np.divide(counts, union, out=np.zeros_like(counts, dtype=float), where=union > 0)


def match_segments(k: int, common: Mapping[tuple[int, int], int], previous_ids: list[int], highest_id: int | None,
                   min_overlap: float) -> list[Link]:
    """Links for clusters 0..k-1 of the new model, then one row per previous segment no cluster continues.

    `common`: (new cluster, previous segment id) -> customers assigned to both; `previous_ids`: the previous
    run's segment ids; `highest_id`: the largest id ever given (None when there is no earlier run).
    """
    if highest_id is None:
        return [Link(c, c, None, None, "new") for c in range(k)]
    counts = np.array([[common.get((c, p), 0) for p in previous_ids] for c in range(k)], dtype=float)
    overlap = jaccard(counts) if previous_ids else np.zeros((k, 0))
    kept: dict[int, tuple[int, float]] = {}
    if previous_ids:
        for c, j in zip(*linear_sum_assignment(-overlap), strict=True):
            if overlap[c, j] >= min_overlap:
                kept[int(c)] = (previous_ids[j], float(overlap[c, j]))
    links = []
    next_id = highest_id + 1
    for c in range(k):
        if c in kept:
            links.append(Link(c, kept[c][0], kept[c][0], kept[c][1], "kept"))
        else:  # the overlap of a new segment: its best with any previous one, below the threshold
            links.append(Link(c, next_id, None, float(overlap[c].max()) if previous_ids else None, "new"))
            next_id += 1
    continued = {link.previous_segment_id for link in links if link.status == "kept"}
    links += [Link(-1, None, p, None, "retired") for p in previous_ids if p not in continued]
    return links


def stable_ids(links: list[Link]) -> list[int]:
    """The stable id of each cluster index, in index order."""
    return [link.segment_id for link in sorted(links, key=lambda link: link.cluster) if link.cluster >= 0]


def lineage_links(spark: SparkSession, output_path: str, as_of: dt.date, ledger: Ledger, clusters_df: DataFrame,
                  k: int, min_overlap: float) -> tuple[list[Link], RunEntry | None]:
    """Match the clusters (customer_id, segment_id = cluster index) of a new run of `as_of` to its previous run:
    the latest training of the latest earlier date (a same-date retrain continues the earlier month too, so
    reruns agree)."""
    previous = ledger.previous_training(as_of)
    if previous is None:
        return match_segments(k, {}, [], None, min_overlap), None
    previous_df = (read_delta(spark, join_uri(output_path, outputs.SEGMENT_ASSIGNMENTS))
                   .filter((F.col("run_id") == previous.run_id) & (F.col("as_of_date") == F.lit(previous.as_of)))
                   .select("customer_id", F.col("segment_id").alias("previous_segment_id")))
    common = {(r["segment_id"], r["previous_segment_id"]): r["n"]  # k x k rows
              for r in clusters_df.select("customer_id", "segment_id").join(previous_df, on="customer_id")
              .groupBy("segment_id", "previous_segment_id").agg(F.count("*").alias("n")).collect()}
    profiles_df = (read_delta(spark, join_uri(output_path, outputs.SEGMENT_PROFILES))
                   .filter(F.col("as_of_date") < F.lit(as_of)))
    previous_ids = sorted(r["segment_id"] for r in profiles_df.filter(F.col("run_id") == previous.run_id)
                          .filter(F.col("as_of_date") == F.lit(previous.as_of)).select("segment_id").collect())
    highest = profiles_df.agg(F.max("segment_id")).first()[0]
    return match_segments(k, common, previous_ids, highest, min_overlap), previous


def lineage_rows(links: list[Link], previous: RunEntry | None) -> list[tuple]:
    """LINEAGE_SCHEMA rows."""
    return [(None if link.cluster < 0 else link.cluster, link.segment_id, previous and previous.run_id,
             previous and previous.as_of, link.previous_segment_id, link.overlap, link.status) for link in links]


def model_ids(spark: SparkSession, output_path: str, model_run_id: str, k: int) -> list[int]:
    """The stable id of each cluster index of a training run's model (its segment_lineage rows; identity for a
    run trained before lineage existed)."""
    path = join_uri(output_path, outputs.SEGMENT_LINEAGE)
    if not delta_exists(spark, path):
        return list(range(k))
    rows = (read_delta(spark, path).filter((F.col("run_id") == model_run_id) & F.col("cluster").isNotNull())
            .select("cluster", "segment_id").collect())
    ids = {r["cluster"]: r["segment_id"] for r in rows}
    return [ids.get(c, c) for c in range(k)]
