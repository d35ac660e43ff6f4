"""Choose K by measured criteria on a bounded sample of the scaled features.

The sample (at most `model.sample_size` customers, chosen by a seeded hash of their id) is collected to
the driver once and the sweep runs there with scikit-learn: each of the many small fits costs milliseconds
instead of one Spark job per K-means iteration, and the sweep's cost no longer grows with the customer
count. The final fit on all customers stays Spark ML's KMeans in the pipeline.

For each K: silhouette (squared Euclidean, as Spark's ClusteringEvaluator), SSE, Davies-Bouldin,
Calinski-Harabasz, the smallest segment's share and stability (mean adjusted Rand index between the
fit and refits on 80% resamples with other seeds, compared on the whole sample).

Rule (docs/model.md): among K whose smallest segment holds at least `min_segment_share` of the
customers and whose stability is at least `min_stability`, take the highest silhouette (ties: the
smaller K). If no K passes, take the highest silhouette among K that meet the share threshold, else among those that
meet the stability one, else overall, and say so. A K fixed in the config wins.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass

import numpy as np
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score

from custseg.ml.pipeline import SCALED
from custseg.transforms.sampling import bounded_sample

log = logging.getLogger(__name__)

RESAMPLE_FRACTION = 0.8
MIN_CUSTOMERS = 3


class TooFewCustomersError(ValueError):
    """Too few customers to compare segmentations; the message says how many there are and how many are needed."""


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

    def result_for(self, k: int) -> KResult | None:
        return next((r for r in self.results if r.k == k), None)


def sample_for_selection(scaled_df: DataFrame, sample_size: int, seed: int) -> np.ndarray:
    """At most sample_size customers, as a matrix in customer_id order, the same whatever the partitioning.

    The customers are those with the smallest seeded hash of their id (custseg.transforms.sampling), not
    Spark's per-partition sampler, and the customer order makes the sweep independent of the row order.
    """
    total = scaled_df.count()
    sample_df = scaled_df if total <= sample_size else bounded_sample(scaled_df, sample_size, seed, total)
    pdf = (sample_df.select("customer_id", vector_to_array(F.col(SCALED)).alias("x"))
           .orderBy("customer_id").toPandas())
    if pdf.empty:
        return np.empty((0, 0))
    return np.vstack(pdf["x"].to_numpy()).astype(np.float64)


def kmeans(k: int, seed: int, max_iter: int, n_init: int = 1) -> KMeans:
    return KMeans(n_clusters=k, init="k-means++", n_init=max(n_init, 1), max_iter=max_iter, tol=1e-6,
                  random_state=seed)


def sample_sse(x: np.ndarray, centres: list) -> float:
    """Sum of squared distances from each sample row to its nearest centre."""
    c = np.asarray(centres, dtype=np.float64)
    squared = (x * x).sum(axis=1)[:, None] - 2.0 * x @ c.T + (c * c).sum(axis=1)[None, :]
    return float(np.maximum(squared.min(axis=1), 0.0).sum())


def squared_euclidean_silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette with squared Euclidean distances, exactly, in O(n * k) (Spark's closed form).

    The mean squared distance from a point p to cluster C is |p|^2 - 2 p.mean(C) + mean(|c|^2 over C).
    """
    ids, labels = np.unique(labels, return_inverse=True)
    if len(ids) < 2:
        return float("nan")
    sizes = np.bincount(labels).astype(np.float64)
    norms = (x * x).sum(axis=1)
    centres = np.vstack([x[labels == c].mean(axis=0) for c in range(len(ids))])
    mean_norms = np.bincount(labels, weights=norms) / sizes
    dissimilarity = norms[:, None] - 2.0 * x @ centres.T + mean_norms[None, :]  # n x k
    own_size = sizes[labels]
    rows = np.arange(len(x))
    a = np.where(own_size > 1, dissimilarity[rows, labels] * own_size / np.maximum(own_size - 1, 1), 0.0)
    dissimilarity[rows, labels] = np.inf
    b = dissimilarity.min(axis=1)
    s = np.where(a < b, 1.0 - a / np.where(b > 0, b, 1.0), np.where(a > b, b / np.where(a > 0, a, 1.0) - 1.0, 0.0))
    s[own_size == 1] = 0.0  # a point alone in its cluster scores 0, as in scikit-learn and Spark
    return float(s.mean())


def evaluate_k(x: np.ndarray, k: int, seed: int, max_iter: int, stability_runs: int,
               min_share: float, min_stability: float, n_init: int = 1) -> KResult:
    model = kmeans(k, seed, max_iter, n_init).fit(x)
    labels = model.labels_
    sizes = np.bincount(labels, minlength=k)
    found = int((sizes > 0).sum())
    several = found >= 2
    share = float(sizes.min() / len(x)) if found == k else 0.0
    stability = _stability(x, labels, k, seed, max_iter, stability_runs)
    return KResult(
        k=k, segments=found, silhouette=squared_euclidean_silhouette(x, labels), sse=float(model.inertia_),
        davies_bouldin=float(davies_bouldin_score(x, labels)) if several else float("nan"),
        calinski_harabasz=float(calinski_harabasz_score(x, labels)) if several else float("nan"),
        min_share=share, stability=stability,
        is_eligible=found == k and share >= min_share and stability >= min_stability,
    )


def _stability(x: np.ndarray, labels: np.ndarray, k: int, seed: int, max_iter: int, runs: int) -> float:
    """Mean ARI between the labels and those of refits on resamples with other seeds."""
    scores = []
    for run in range(1, runs + 1):
        rng = np.random.default_rng(seed + run)
        rows = np.sort(rng.choice(len(x), size=max(int(len(x) * RESAMPLE_FRACTION), k), replace=False))
        refit = kmeans(k, seed + 1000 * run, max_iter).fit(x[rows])
        scores.append(adjusted_rand_score(labels, refit.predict(x)))
    return float(sum(scores) / len(scores)) if scores else 1.0


def sweep_table(results: list[KResult]) -> str:
    """The sweep as a small text table for the log."""
    lines = ["   K  silhouette          SSE  Davies-Bouldin  min share  stability  eligible"]
    lines += [f"{r.k:>4}  {r.silhouette:>10.3f}  {r.sse:>11.1f}  {r.davies_bouldin:>14.3f}  {r.min_share:>9.3f}  "
              f"{r.stability:>9.3f}  {'yes' if r.is_eligible else 'no':>8}" for r in results]
    return "\n".join(lines)


def choose_k(results: list[KResult], fixed_k: int | None, min_share: float = 0.0,
             min_stability: float = 0.0) -> tuple[int, str]:
    """Apply the documented rule to the sweep's results (with the thresholds it was evaluated with)."""
    if fixed_k is not None:
        return fixed_k, f"K={fixed_k} fixed by the configuration (model.k)"

    def best(candidates: list[KResult]) -> KResult:
        return max(candidates, key=lambda r: (_finite(r.silhouette), -r.k))

    eligible = [r for r in results if r.is_eligible]
    if eligible:
        pick = best(eligible)
        return pick.k, (f"highest silhouette ({pick.silhouette:.3f}) among K with smallest segment >= the minimum "
                        f"share and stability >= the minimum ({len(eligible)} of {len(results)} K eligible)")
    # A few outliers split off score a high silhouette, and an unstable K's segments are chance: a K that meets
    # one of the thresholds comes before one that meets neither.
    partly = (("smallest segment >= the minimum share", [r for r in results if r.segments == r.k
                                                         and r.min_share >= min_share]),
              ("stability >= the minimum", [r for r in results if r.stability >= min_stability]))
    for met, candidates in partly:
        if candidates:
            pick = best(candidates)
            return pick.k, (f"no K met the share and stability thresholds; highest silhouette "
                            f"({pick.silhouette:.3f}) among K with {met} (smallest share {pick.min_share:.3f}, "
                            f"stability {pick.stability:.2f})")
    pick = best(results)
    return pick.k, (f"no K met the share and stability thresholds; highest silhouette overall "
                    f"({pick.silhouette:.3f})")


def _finite(value: float) -> float:
    return value if not math.isnan(value) else -math.inf


def select_k(x: np.ndarray, k_min: int, k_max: int, seed: int, max_iter: int, stability_runs: int,
             min_share: float, min_stability: float, fixed_k: int | None = None, n_init: int = 1) -> KChoice:
    """Sweep K over the sample matrix and choose one; degenerate data gives a documented smaller answer."""
    distinct = len(np.unique(x, axis=0)) if len(x) else 0
    if distinct < 2:
        return KChoice(k=1, reason="all customers have identical features: one segment", results=[])
    if len(x) < MIN_CUSTOMERS:
        raise TooFewCustomersError(f"only {len(x)} customers to segment: choosing K needs at least {MIN_CUSTOMERS} "
                                   "(the measures compare at least 2 segments of 2 customers or more)")
    top = min(k_max, distinct, len(x) - 1)  # Davies-Bouldin and Calinski-Harabasz need K <= customers - 1
    ks = list(range(min(k_min, top), top + 1))
    results = [evaluate_k(x, k, seed, max_iter, stability_runs, min_share, min_stability, n_init) for k in ks]
    log.info("K sweep on %d customers:\n%s", len(x), sweep_table(results))
    k, reason = choose_k(results, fixed_k, min_share, min_stability)
    if fixed_k is None and top < k_max:
        reason += f"; only {distinct} distinct customers, so K was capped at {top}"
    if fixed_k is not None and fixed_k > distinct:
        k, reason = distinct, f"K={fixed_k} fixed by the configuration but only {distinct} distinct customers"
    return KChoice(k=k, reason=reason, results=results)
