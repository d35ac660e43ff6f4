"""Pipeline wiring, clustering metrics against scikit-learn, the K rule and degenerate inputs."""
from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.ml.linalg import Vectors, VectorUDT
from pyspark.sql import types as T
from sklearn.metrics import silhouette_score

from custseg.ml.kselect import KResult, choose_k, sample_for_selection, select_k, squared_euclidean_silhouette
from custseg.ml.pipeline import SCALED, PipelineParams, build_pipeline, log1p_statement
from custseg.ml.preprocessing import ExactMedianImputer, OutlierCaps


def test_pipeline_stages_in_order_and_wired(spark):
    params = PipelineParams(features=("frequency", "credit_score", "on_time_rate"), log1p_features=("frequency",),
                            k=4, seed=7, outlier_caps=(0.01, 0.99))
    stages = build_pipeline(params).getStages()
    assert [type(s) for s in stages] == [SQLTransformer, ExactMedianImputer, SQLTransformer, OutlierCaps,
                                         VectorAssembler, StandardScaler, KMeans]
    not_applicable, imputer, skew, caps, assembler, scaler, kmeans = stages
    assert "NVL(CAST(on_time_rate AS DOUBLE), 1.0D) AS on_time_rate__defined" in not_applicable.getStatement()
    assert imputer.getInputCols() == ["frequency", "credit_score", "on_time_rate__defined"]
    assert caps.getInputCols() == ["frequency__log1p", "credit_score__imputed", "on_time_rate__imputed"]
    assert (caps.getLowerQuantile(), caps.getUpperQuantile()) == (0.01, 0.99)
    assert assembler.getInputCols() == ["frequency__capped", "credit_score__capped", "on_time_rate__capped"]
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


VECTOR_FIELD = T.StructField(SCALED, VectorUDT())


def blobs(seed: int = 3, n: int = 60):
    rng = np.random.default_rng(seed)
    centres = np.array([[0, 0, 0], [5, 5, 0], [0, 6, 6]], dtype=float)
    labels = rng.integers(0, 3, n)
    points = centres[labels] + rng.normal(0, 1.0, (n, 3))
    return points, labels


def test_silhouette_equals_scikit_learn_and_spark_clustering_evaluator(spark):
    points, labels = blobs()
    labels[:2] = 3  # a cluster of two and, below, one of a single point: the edge cases of the formula
    labels[2] = 4
    ours = squared_euclidean_silhouette(points, labels)
    assert ours == pytest.approx(silhouette_score(points, labels, metric="sqeuclidean"), rel=1e-9)
    df = spark.createDataFrame([(Vectors.dense(p.tolist()), float(lab)) for p, lab in zip(points, labels, strict=True)],
                               T.StructType([VECTOR_FIELD, T.StructField("label", T.DoubleType())]))
    spark_value = ClusteringEvaluator(featuresCol=SCALED, predictionCol="label").evaluate(df)
    assert ours == pytest.approx(spark_value, rel=1e-9)


def test_selection_sample_is_in_customer_order_whatever_the_partitioning(spark):
    points, _ = blobs(n=40)
    rows = [(f"C{i:03d}", Vectors.dense(p.tolist())) for i, p in enumerate(points)]
    df = spark.createDataFrame(rows[::-1], T.StructType([T.StructField("customer_id", T.StringType()), VECTOR_FIELD]))
    one, five = (sample_for_selection(df.repartition(n), sample_size=100, seed=1) for n in (1, 5))
    assert np.array_equal(one, points) and np.array_equal(five, points)


def test_selection_sample_takes_the_same_customers_whatever_the_partitioning(spark):
    points, _ = blobs(n=40)
    rows = [(f"C{i:03d}", Vectors.dense(p.tolist())) for i, p in enumerate(points)]
    df = spark.createDataFrame(rows, T.StructType([T.StructField("customer_id", T.StringType()), VECTOR_FIELD]))
    one, five, other_seed = (sample_for_selection(df.repartition(n), sample_size=10, seed=seed)
                             for n, seed in ((1, 1), (5, 1), (3, 2)))
    assert one.shape == (10, points.shape[1]) and np.array_equal(one, five)
    assert all(any(np.array_equal(row, p) for p in points) for row in one)  # real customers, unchanged
    assert not np.array_equal(one, other_seed)


def result(k, silhouette, eligible=True):
    return KResult(k=k, segments=k, silhouette=silhouette, sse=1.0, davies_bouldin=1.0, calinski_harabasz=1.0,
                   min_share=0.1, stability=0.9, is_eligible=eligible)


def test_sample_sse_equals_scikit_learn_inertia():
    from sklearn.cluster import KMeans

    from custseg.ml.kselect import sample_sse

    points, _ = blobs(n=90)
    model = KMeans(n_clusters=3, n_init=1, random_state=0).fit(points)
    assert sample_sse(points, model.cluster_centers_) == pytest.approx(model.inertia_, rel=1e-9)
    assert sample_sse(points, model.cluster_centers_[:1]) > model.inertia_


def test_k_rule_prefers_eligible_best_silhouette():
    results = [result(2, 0.8, eligible=False), result(3, 0.6), result(4, 0.7), result(5, 0.7)]
    k, reason = choose_k(results, fixed_k=None)
    assert k == 4  # 2 is better but ineligible; 4 and 5 tie, the smaller wins
    assert "highest silhouette (0.700)" in reason and "3 of 4" in reason
    assert choose_k([result(2, 0.3, False), result(3, 0.5, False)], None)[0] == 3
    # None eligible: a K with a segment below the minimum share (outliers split off) is passed over if another has none.
    outliers = [replace(result(2, 0.988, False), min_share=0.003, stability=0.02), result(4, 0.60, False),
                result(5, 0.64, False)]
    k, reason = choose_k(outliers, None, min_share=0.02, min_stability=0.7)
    assert k == 5 and "highest silhouette (0.640) among K with smallest segment >= the minimum share" in reason
    assert "(smallest share 0.100, stability 0.90)" in reason
    # Every K splits off outliers (as on a bank's single-purchase customers): a stable one before an unstable one.
    small = [replace(r, min_share=0.001) for r in outliers]
    k, reason = choose_k(small, None, min_share=0.02, min_stability=0.7)
    assert k == 5 and "highest silhouette (0.640) among K with stability >= the minimum" in reason
    assert choose_k(small[:1], None, min_share=0.02, min_stability=0.7) == (
        2, "no K met the share and stability thresholds; highest silhouette overall (0.988)")
    assert choose_k(results, fixed_k=6) == (6, "K=6 fixed by the configuration (model.k)")


def test_k_sweep_finds_three_blobs():
    points, _ = blobs(n=150)
    choice = select_k(points, 2, 5, seed=1, max_iter=20, stability_runs=1, min_share=0.05, min_stability=0.5)
    assert choice.k == 3
    assert [r.k for r in choice.results] == [2, 3, 4, 5]


def test_identical_customers_give_one_segment():
    identical = np.tile([1.0, 2.0], (20, 1))
    choice = select_k(identical, 2, 6, seed=1, max_iter=10, stability_runs=1, min_share=0.05, min_stability=0.5)
    assert (choice.k, choice.results) == (1, [])
    assert "identical" in choice.reason


def test_fewer_distinct_points_than_k_caps_k():
    points = np.repeat([[0.0, 0.0], [9.0, 9.0], [0.0, 9.0]], 5, axis=0)
    choice = select_k(points, 2, 8, seed=1, max_iter=10, stability_runs=1, min_share=0.05, min_stability=0.5)
    assert [r.k for r in choice.results] == [2, 3]
    assert choice.k == 3 and "only 3 distinct customers" in choice.reason


def test_best_of_several_starts_never_has_a_higher_sse(spark):
    from custseg.ml.pipeline import fit_best_of, kmeans_stage

    points, _ = blobs(n=120)
    df = spark.createDataFrame([(Vectors.dense(p.tolist()),) for p in points], T.StructType([VECTOR_FIELD]))
    stage = kmeans_stage(PipelineParams(features=("a", "b", "c"), log1p_features=(), k=4, seed=5, max_iter=10))
    single = stage.fit(df).summary.trainingCost
    best, starts = fit_best_of(stage, df, n_init=3)
    assert best.summary.trainingCost <= single and starts == 3
    assert fit_best_of(stage, df, n_init=3)[0].clusterCenters()[0].tolist() == best.clusterCenters()[0].tolist()


def test_the_row_solver_finds_what_the_block_solver_finds(spark):
    """The solver is named only to skip the extra read that "auto" makes to choose one."""
    from custseg.ml.pipeline import kmeans_stage

    points, _ = blobs(n=150)
    df = spark.createDataFrame([(Vectors.dense(p.tolist()),) for p in points], T.StructType([VECTOR_FIELD]))
    stage = kmeans_stage(PipelineParams(features=("a", "b", "c"), log1p_features=(), k=3, seed=5, max_iter=20))
    assert stage.getSolver() == "row"
    row_model, block_model = stage.fit(df), stage.copy().setSolver("block").fit(df)
    assert np.allclose(row_model.clusterCenters(), block_model.clusterCenters(), rtol=1e-9, atol=1e-12)
    assert row_model.summary.trainingCost == pytest.approx(block_model.summary.trainingCost, rel=1e-9)


def test_no_further_start_once_a_model_is_good_enough(spark):
    from custseg.ml.pipeline import fit_best_of, kmeans_stage

    points, _ = blobs(n=120)
    df = spark.createDataFrame([(Vectors.dense(p.tolist()),) for p in points], T.StructType([VECTOR_FIELD]))
    stage = kmeans_stage(PipelineParams(features=("a", "b", "c"), log1p_features=(), k=4, seed=5, max_iter=10))
    seen = []

    def after_two_starts(model):
        seen.append(model)
        return len(seen) == 2

    best, starts = fit_best_of(stage, df, n_init=4, is_good_enough=after_two_starts)
    assert starts == 2 and len(seen) == 2
    first, _ = fit_best_of(stage, df, n_init=4, is_good_enough=lambda model: True)
    assert [c.tolist() for c in first.clusterCenters()] == [c.tolist() for c in stage.fit(df).clusterCenters()]


def test_starts_that_reach_the_same_optimum_keep_the_first_numbering(spark):
    from custseg.ml.pipeline import COST_TIE, fit_best_of, kmeans_stage

    points, _ = blobs(n=150)
    df = spark.createDataFrame([(Vectors.dense(p.tolist()),) for p in points], T.StructType([VECTOR_FIELD]))
    stage = kmeans_stage(PipelineParams(features=("a", "b", "c"), log1p_features=(), k=3, seed=5, max_iter=20))
    starts = [stage.copy().setSeed(5 + i).fit(df) for i in range(4)]
    costs = [m.summary.trainingCost for m in starts]
    assert max(costs) - min(costs) <= COST_TIE * min(costs)  # three clear blobs: every start finds them
    best, _ = fit_best_of(stage, df, n_init=4)
    assert [c.tolist() for c in best.clusterCenters()] == [c.tolist() for c in starts[0].clusterCenters()]


def test_namesakes_are_told_apart_by_what_differs_between_them():
    from custseg.ml.describe import unique_names

    names = {0: "High value, regular", 1: "High value, regular", 2: "Low value, lapsed"}
    z = {0: {"monetary": 1.9, "n_loans": 0.5}, 1: {"monetary": 1.9, "n_loans": -0.6}, 2: {"monetary": -1.0}}
    assert unique_names(names, z) == {0: "High value, regular (higher n_loans)",
                                      1: "High value, regular (lower n_loans)",
                                      2: "Low value, lapsed"}
    # Nothing measured tells them apart: the segment id does.
    assert unique_names({0: "Low value, lapsed", 1: "Low value, lapsed"}, {0: {}, 1: {}}) == {
        0: "Low value, lapsed #0", 1: "Low value, lapsed #1"}


def test_constant_and_all_null_features_are_dropped(spark):
    from custseg.transforms.statistics import usable_features

    df = spark.createDataFrame([(1.0, 5.0, None, 0.0), (2.0, 5.0, None, None), (3.0, 5.0, None, 0.0)],
                               "varies double, constant double, empty double, constant_with_nulls double")
    used, dropped = usable_features(df, ("varies", "constant", "empty", "constant_with_nulls"))
    assert used == ("varies",)
    assert dropped == {"constant": "constant", "empty": "all null", "constant_with_nulls": "constant"}


def test_a_date_without_customers_stops_and_signs_of_misread_inputs_are_warned_of(spark):
    import datetime as dt

    from custseg.transforms.statistics import check_population

    as_of = dt.date(1999, 1, 1)
    schema = ("customer_id string, frequency long, monetary double, is_repeat_buyer long, gap_mean_days double, "
              "spend_trend double")
    lapsed_df = spark.createDataFrame([("C1", 0, 0.0, 0, None, 0.0), ("C2", 0, 0.0, 0, None, 0.0)], schema)
    assert check_population(lapsed_df, as_of, 365) == [
        "no customer made a purchase in the 365 days before 1999-01-01: every customer is lapsed, and the segments "
        "rest on what is not about purchases (tenure, and income, credit score and loans where given); check "
        "as_of_date against the transactions' dates"]
    sound_df = lapsed_df.union(spark.createDataFrame([("C3", 2, 70.0, 1, 12.5, 1.0), ("C4", 3, 20.0, 1, 0.0, -0.2)],
                                                     schema))
    assert check_population(sound_df.union(spark.createDataFrame(
        [(f"R{i}", 2, 10.0, 1, 3.0, 1.0) for i in range(8)], schema)), as_of, 365) == []  # 1 of 10 all at once
    assert check_population(sound_df, as_of, 365) == [
        "50% of the customers with several purchases made them all at the same moment: either the transactions are "
        "lines of one basket or invoice (frequency, average ticket, gaps and repeat buying count rows, so name the "
        "basket or invoice column in inputs.transactions.basket) or their timestamps carry no time of day "
        "(purchases on one day then look simultaneous)"]
    # A ledger's signs among a majority of lapsed customers (no net spend) are still seen.
    ledger_df = spark.createDataFrame([("C1", 3, -120.0, 1, 4.0, 0.1), ("C2", 1, -5.0, 0, None, 0.1),
                                       ("C3", 2, 70.0, 1, 9.0, 0.1),
                                       *[(f"L{i}", 0, 0.0, 0, None, 0.0) for i in range(7)]], schema)
    assert check_population(ledger_df, as_of, 365) == [
        "67% of the customers with a net spend have a negative one: purchases are amounts above 0 and refunds "
        "below; a ledger that books spending as negative amounts needs them turned round before this job"]
    # Buyers in the recent trend window only: 9 of 10 is a sound history's new customers at most, 10 of 10 is not.
    recent_df = lapsed_df.union(spark.createDataFrame([(f"N{i}", 1, 10.0, 0, None, 1.0) for i in range(9)], schema))
    assert check_population(recent_df.union(spark.createDataFrame([("O1", 1, 10.0, 0, None, -1.0)], schema)),
                            as_of, 365, 90) == []
    assert check_population(recent_df, as_of, 365, 90) == [
        "100% of the customers with purchases bought only in the 90 days before 1999-01-01, none in the 90 days "
        "before those: spend_trend tells them apart little; check that the transactions cover the 180 days it "
        "compares (features.trend_window_days)"]
    # Lines of several invoices: no customer bought all at once, but 1 in 3 later purchases (of 2 on 6) share the
    # moment of the one before; 1 in 6 is within what card data shows.
    lines_schema = schema + ", same_moment_purchases long"
    assert check_population(spark.createDataFrame([("I1", 4, 30.0, 1, 5.0, 0.1, 2), ("I2", 4, 20.0, 1, 2.0, 0.1, 0),
                                                   ("I3", 0, 0.0, 0, None, 0.0, 0)], lines_schema), as_of, 365) == [
        "33% of the purchases after a customer's first were made at the same moment as the one before: either the "
        "transactions are lines of one basket or invoice (frequency, average ticket, gaps and repeat buying count "
        "rows, so name the basket or invoice column in inputs.transactions.basket) or their timestamps carry no "
        "time of day (purchases on one day then look simultaneous)"]
    assert check_population(spark.createDataFrame([("I1", 4, 30.0, 1, 5.0, 0.1, 1), ("I2", 4, 20.0, 1, 2.0, 0.1, 0)],
                                                  lines_schema), as_of, 365) == []
    # Both shares high: the purchases' one is given, once.
    warnings = check_population(spark.createDataFrame(
        [("I1", 3, 30.0, 1, 0.0, 0.1, 2), ("I2", 3, 20.0, 1, 4.0, 0.1, 0)], lines_schema), as_of, 365)
    assert len(warnings) == 1 and warnings[0].startswith(
        "50% of the purchases after a customer's first were made at the same moment as the one before: ")
    with pytest.raises(ValueError, match="customer_features has no customer for 1999-01-01: nothing to segment"):
        check_population(lapsed_df.limit(0), as_of, 365)


def test_a_non_finite_feature_stops_training_with_the_feature_and_customers_named(spark):
    from custseg.transforms.statistics import usable_features

    df = spark.createDataFrame([("A", 1.0), ("B", float("nan")), ("C", float("inf")), ("D", None)],
                               "customer_id string, monetary double")
    expected = r"customer_features.monetary is NaN or infinite for 2 customers \(e.g. B, C\)"
    with pytest.raises(ValueError, match=expected):
        usable_features(df, ("monetary",))


def test_two_customers_are_too_few_to_choose_k_and_say_so():
    from custseg.ml.kselect import TooFewCustomersError

    with pytest.raises(TooFewCustomersError, match="only 2 customers to segment: choosing K needs at least 3"):
        select_k(np.array([[0.0, 1.0], [5.0, 6.0]]), 2, 6, seed=1, max_iter=10, stability_runs=1, min_share=0.05,
                 min_stability=0.5)


def test_k_is_capped_below_the_number_of_customers():
    points = np.array([[0.0, 0.0], [9.0, 9.0], [0.0, 9.0], [9.0, 0.0]])
    choice = select_k(points, 2, 8, seed=1, max_iter=10, stability_runs=1, min_share=0.05, min_stability=0.1)
    assert [r.k for r in choice.results] == [2, 3]
    assert all(np.isfinite(r.davies_bouldin) for r in choice.results)


def test_a_final_fit_worse_than_the_sweeps_is_a_warning_naming_the_gap():
    from custseg.flows.train_segments import final_fit_warning

    assert final_fit_warning(None, 2, 3) is None  # K not swept (set by hand)
    assert final_fit_warning(1.0, 1, 3) is None
    assert final_fit_warning(1.005, 2, 3) is None  # within the tolerance the final fit stops at
    assert final_fit_warning(1.0797, 2, 2) == (
        "the final fit's 2 segments are not those the K sweep scored: after 2 Spark start(s) their SSE on the "
        "selection sample is 8% above the sweep's, so k_selection's silhouette, stability and smallest share for "
        "this K describe other segments; raise model.n_init")
