"""Choose K by measured criteria on a bounded sample of the scaled features.

For each K: silhouette (Spark's ClusteringEvaluator, squared Euclidean), SSE, Davies-Bouldin,
Calinski-Harabasz, the smallest segment's share and stability (mean adjusted Rand index between the
fit and refits on 80% resamples with other seeds, compared on the whole sample).

Rule (docs/model.md): among K whose smallest segment holds at least `min_segment_share` of the
customers and whose stability is at least `min_stability`, take the highest silhouette (ties: the
smaller K). If no K passes, take the highest silhouette overall and say so. A K fixed in the config wins.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from custseg import metrics
from custseg.model import PREDICTION, SCALED, fit_best_of

log = logging.getLogger(__name__)

RESAMPLE_FRACTION = 0.8


@dataclass(frozen=True)
class KResult:
    k: int
    segments: int          # non-empty segments actually found
    silhouette: float
    sse: float
    davies_bouldin: float
    calinski_harabasz: float
    min_share: float
    stability: float
    is_eligible: bool

    def as_row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class KChoice:
    k: int
    reason: str
    results: list[KResult]


def kmeans(k: int, seed: int, max_iter: int) -> KMeans:
    return KMeans(k=k, seed=seed, featuresCol=SCALED, predictionCol=PREDICTION, initMode="k-means||",
                  maxIter=max_iter, tol=1e-6)


def sample_for_selection(scaled_df: DataFrame, sample_size: int, seed: int) -> DataFrame:
    """A seeded sample of at most about sample_size rows (all rows when the data is small)."""
    total = scaled_df.count()
    if total <= sample_size:
        return scaled_df
    return scaled_df.sample(withReplacement=False, fraction=sample_size / total, seed=seed)


def distinct_points(scaled_df: DataFrame, at_most: int) -> int:
    """Distinct feature vectors, counted up to `at_most` (enough to know whether K is possible)."""
    return scaled_df.select(vector_to_array(F.col(SCALED)).alias("x")).distinct().limit(at_most).count()


def evaluate_k(sample_df: DataFrame, k: int, seed: int, max_iter: int, stability_runs: int,
               min_share: float, min_stability: float, n_init: int = 1) -> KResult:
    model = fit_best_of(kmeans(k, seed, max_iter), sample_df, n_init)
    labelled_df = model.transform(sample_df).select(SCALED, PREDICTION).cache()
    stats = metrics.cluster_stats(labelled_df, SCALED, PREDICTION)
    n = float(stats.sizes.sum())
    silhouette = float("nan")
    if len(stats.labels) >= 2:
        silhouette = ClusteringEvaluator(featuresCol=SCALED, predictionCol=PREDICTION).evaluate(labelled_df)
    stability = _stability(sample_df, labelled_df, k, seed, max_iter, stability_runs)
    labelled_df.unpersist()
    found = len(stats.labels)
    share = float(stats.sizes.min() / n) if found == k else 0.0
    return KResult(
        k=k, segments=found, silhouette=silhouette, sse=stats.within_ss,
        davies_bouldin=metrics.davies_bouldin(stats), calinski_harabasz=metrics.calinski_harabasz(stats),
        min_share=share, stability=stability,
        is_eligible=found == k and share >= min_share and stability >= min_stability,
    )


def _stability(sample_df: DataFrame, labelled_df: DataFrame, k: int, seed: int, max_iter: int, runs: int) -> float:
    """Mean ARI between the labels and those of refits on resamples with other seeds."""
    scores = []
    for run in range(1, runs + 1):
        resample_df = sample_df.sample(withReplacement=False, fraction=RESAMPLE_FRACTION, seed=seed + run)
        refit = kmeans(k, seed + 1000 * run, max_iter).fit(resample_df)
        both_df = refit.transform(labelled_df.withColumnRenamed(PREDICTION, "base")).select("base", PREDICTION)
        scores.append(metrics.adjusted_rand_index(both_df, "base", PREDICTION))
    return float(sum(scores) / len(scores)) if scores else 1.0


def choose_k(results: list[KResult], fixed_k: int | None) -> tuple[int, str]:
    """Apply the documented rule to the sweep's results."""
    if fixed_k is not None:
        return fixed_k, f"K={fixed_k} fixed by the configuration (model.k)"

    def best(candidates: list[KResult]) -> KResult:
        return max(candidates, key=lambda r: (_finite(r.silhouette), -r.k))

    eligible = [r for r in results if r.is_eligible]
    if eligible:
        pick = best(eligible)
        return pick.k, (f"highest silhouette ({pick.silhouette:.3f}) among K with smallest segment >= the minimum "
                        f"share and stability >= the minimum ({len(eligible)} of {len(results)} K eligible)")
    pick = best(results)
    return pick.k, (f"no K met the share and stability thresholds; highest silhouette overall "
                    f"({pick.silhouette:.3f})")


def _finite(value: float) -> float:
    return value if not math.isnan(value) else -math.inf


def select_k(sample_df: DataFrame, k_min: int, k_max: int, seed: int, max_iter: int, stability_runs: int,
             min_share: float, min_stability: float, fixed_k: int | None = None, n_init: int = 1) -> KChoice:
    """Sweep K over the sample and choose one; degenerate data gives a documented smaller answer."""
    distinct = distinct_points(sample_df, k_max + 1)
    if distinct < 2:
        return KChoice(k=1, reason="all customers have identical features: one segment", results=[])
    top = min(k_max, distinct)
    ks = list(range(min(k_min, top), top + 1))
    results = []
    for k in ks:
        result = evaluate_k(sample_df, k, seed, max_iter, stability_runs, min_share, min_stability, n_init)
        log.info("K=%d: %s", k, result)
        results.append(result)
    k, reason = choose_k(results, fixed_k)
    if fixed_k is None and top < k_max:
        reason += f"; only {distinct} distinct customers, so K was capped at {top}"
    if fixed_k is not None and fixed_k > distinct:
        k, reason = distinct, f"K={fixed_k} fixed by the configuration but only {distinct} distinct customers"
    return KChoice(k=k, reason=reason, results=results)
