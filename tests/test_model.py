"""Pipeline wiring, clustering metrics against scikit-learn, the K rule and degenerate inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
from pyspark.ml.clustering import KMeans
from pyspark.ml.feature import Imputer, SQLTransformer, StandardScaler, VectorAssembler
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import types as T
from sklearn.metrics import adjusted_rand_score, calinski_harabasz_score, davies_bouldin_score

from custseg import metrics
from custseg.kselect import KResult, choose_k, select_k
from custseg.model import SCALED, PipelineParams, build_pipeline, log1p_statement


def test_pipeline_stages_in_order_and_wired(spark):
    params = PipelineParams(features=("frequency", "credit_score"), log1p_features=("frequency",), k=4, seed=7)
    stages = build_pipeline(params).getStages()
    assert [type(s) for s in stages] == [Imputer, SQLTransformer, VectorAssembler, StandardScaler, KMeans]
    imputer, skew, assembler, scaler, kmeans = stages
    assert imputer.getStrategy() == "median"
    assert assembler.getInputCols() == ["frequency__log1p", "credit_score__imputed"]
    assert scaler.getInputCol() == assembler.getOutputCol()
    assert scaler.getWithMean() and scaler.getWithStd()
    assert kmeans.getFeaturesCol() == scaler.getOutputCol()
    assert (kmeans.getK(), kmeans.getSeed(), kmeans.getInitMode()) == (4, 7, "k-means||")
    assert "SIGNUM(frequency__imputed) * LN(1 + ABS(frequency__imputed)) AS frequency__log1p" in skew.getStatement()


def test_signed_log1p_handles_refunds(spark):
    df = spark.createDataFrame([(-9.0,), (0.0,), (9.0,), (None,)], "monetary__imputed double")
    out = SQLTransformer(statement=log1p_statement(("monetary",), ("monetary",))).transform(df)
    values = [r["monetary__log1p"] for r in out.orderBy("monetary__imputed").collect()]
    assert values[0] is None
    assert values[1:] == pytest.approx([-math.log(10), 0.0, math.log(10)])


VECTOR_ONLY = T.StructType([T.StructField(SCALED, VectorUDT())])
VECTOR_AND_LABEL = T.StructType([T.StructField(SCALED, VectorUDT()), T.StructField("label", T.IntegerType())])


def blobs(seed: int = 3, n: int = 60):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [5, 5, 0], [0, 6, 6]], dtype=float)
    labels = rng.integers(0, 3, n)
    points = centres[labels] + rng.normal(0, 1.0, (n, 3))
    return points, labels


def test_davies_bouldin_and_calinski_harabasz_match_scikit_learn(spark):
    points, labels = blobs()
    df = spark.createDataFrame([(Vectors.dense(p.tolist()), int(lab)) for p, lab in zip(points, labels, strict=False)],
                               VECTOR_AND_LABEL)
    stats = metrics.cluster_stats(df, SCALED, "label")
    assert metrics.davies_bouldin(stats) == pytest.approx(davies_bouldin_score(points, labels), rel=1e-6)
    assert metrics.calinski_harabasz(stats) == pytest.approx(calinski_harabasz_score(points, labels), rel=1e-6)
    sse = sum(((points[labels == c] - points[labels == c].mean(axis=0)) ** 2).sum() for c in range(3))
    assert stats.within_ss == pytest.approx(sse, rel=1e-9)


def test_adjusted_rand_index_matches_scikit_learn(spark):
    a = [0, 0, 1, 1, 2, 2, 2, 0, 1, 2]
    b = [1, 1, 0, 0, 2, 2, 0, 1, 0, 2]
    df = spark.createDataFrame(list(zip(a, b, strict=False)), "a int, b int")
    assert metrics.adjusted_rand_index(df, "a", "b") == pytest.approx(adjusted_rand_score(a, b), rel=1e-9)
    relabelled = spark.createDataFrame([(x, (x + 1) % 3) for x in a], "a int, b int")
    assert metrics.adjusted_rand_index(relabelled, "a", "b") == pytest.approx(1.0)


def result(k, silhouette, eligible=True):
    return KResult(k=k, segments=k, silhouette=silhouette, sse=1.0, davies_bouldin=1.0, calinski_harabasz=1.0,
                   min_share=0.1, stability=0.9, is_eligible=eligible)


def test_k_rule_prefers_eligible_best_silhouette():
    results = [result(2, 0.8, eligible=False), result(3, 0.6), result(4, 0.7), result(5, 0.7)]
    k, reason = choose_k(results, fixed_k=None)
    assert k == 4  # 2 is better but ineligible; 4 and 5 tie, the smaller wins
    assert "highest silhouette (0.700)" in reason and "3 of 4" in reason
    assert choose_k([result(2, 0.3, False), result(3, 0.5, False)], None)[0] == 3
    assert choose_k(results, fixed_k=6) == (6, "K=6 fixed by the configuration (model.k)")


def test_k_sweep_finds_three_blobs(spark):
    points, _ = blobs(n=150)
    df = spark.createDataFrame([(Vectors.dense(p.tolist()),) for p in points], VECTOR_ONLY)
    choice = select_k(df, 2, 5, seed=1, max_iter=20, stability_runs=1, min_share=0.05, min_stability=0.5)
    assert choice.k == 3
    assert [r.k for r in choice.results] == [2, 3, 4, 5]


def test_identical_customers_give_one_segment(spark):
    df = spark.createDataFrame([(Vectors.dense([1.0, 2.0]),)] * 20, VECTOR_ONLY)
    choice = select_k(df, 2, 6, seed=1, max_iter=10, stability_runs=1, min_share=0.05, min_stability=0.5)
    assert (choice.k, choice.results) == (1, [])
    assert "identical" in choice.reason


def test_fewer_distinct_points_than_k_caps_k(spark):
    rows = [(Vectors.dense([0.0, 0.0]),)] * 5 + [(Vectors.dense([9.0, 9.0]),)] * 5 + [(Vectors.dense([0.0, 9.0]),)] * 5
    df = spark.createDataFrame(rows, VECTOR_ONLY)
    choice = select_k(df, 2, 8, seed=1, max_iter=10, stability_runs=1, min_share=0.05, min_stability=0.5)
    assert [r.k for r in choice.results] == [2, 3]
    assert choice.k == 3 and "only 3 distinct customers" in choice.reason


def test_best_of_several_starts_never_has_a_higher_sse(spark):
    from custseg.kselect import kmeans
    from custseg.model import fit_best_of

    points, _ = blobs(n=120)
    df = spark.createDataFrame([(Vectors.dense(p.tolist()),) for p in points], VECTOR_ONLY)
    single = kmeans(4, 5, 10).fit(df).summary.trainingCost
    best = fit_best_of(kmeans(4, 5, 10), df, n_init=3)
    assert best.summary.trainingCost <= single
    assert fit_best_of(kmeans(4, 5, 10), df, n_init=3).clusterCenters()[0].tolist() == best.clusterCenters()[0].tolist()


def test_namesakes_are_told_apart_by_what_differs_between_them():
    from custseg.profiling import unique_names

    names = {0: "High value, occasional, low risk", 1: "High value, occasional, low risk", 2: "Low value, dormant"}
    z = {0: {"monetary": 1.9, "n_loans": 0.5}, 1: {"monetary": 1.9, "n_loans": -0.6}, 2: {"monetary": -1.0}}
    assert unique_names(names, z) == {0: "High value, occasional, low risk (higher n_loans)",
                                      1: "High value, occasional, low risk (lower n_loans)",
                                      2: "Low value, dormant"}
