"""Outlier caps, exact medians and not-applicable values in the model pipeline; expectations written by hand."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from chispa import assert_approx_df_equality, assert_df_equality
from pyspark.ml import PipelineModel
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import functions as F

from custseg.ml import preprocessing
from custseg.ml.explain import score
from custseg.ml.pipeline import (
    PipelineParams,
    compose,
    fit_best_of,
    fit_preprocessing,
    kmeans_stage,
    learned_caps,
    learned_medians,
    not_applicable_statement,
    outlier_cap_report,
    scaled_features,
)
from custseg.ml.preprocessing import (
    CAPPED_FEATURES,
    ExactMedianImputer,
    OutlierCaps,
    caps_of,
    caps_statement,
    exact_quantiles,
)

# ---------------------------------------------------------------- exact quantiles and medians


def spread_values(spark, n: int = 3000):
    """Skewed values with ties and nulls over several partitions."""
    rng = np.random.default_rng(11)
    skewed = rng.lognormal(3, 1, n)
    counts = rng.integers(0, 4, n)  # heavy ties
    rows = [(float(s), None if i % 9 == 0 else float(c)) for i, (s, c) in enumerate(zip(skewed, counts, strict=True))]
    return spark.createDataFrame(rows, "skewed double, counts double").repartition(3)


def test_exact_quantiles_equal_sparks_exact_percentile(spark):
    df = spread_values(spark)
    probabilities = [0.001, 0.25, 0.5, 0.999]
    expected = df.agg(*[F.percentile(c, probabilities).alias(c) for c in ("skewed", "counts")]).first()
    for accuracy in (10_000, 50, 1):  # 1: the first bracket is the whole range
        quantiles = exact_quantiles(df, ["skewed", "counts"], probabilities, accuracy=accuracy, one_pass_max_rows=0)
        assert quantiles == {"skewed": list(expected["skewed"]), "counts": list(expected["counts"])}, accuracy
    # and in one pass, as small columns are
    one_pass = exact_quantiles(df, ["skewed", "counts"], probabilities)
    assert one_pass == {"skewed": list(expected["skewed"]), "counts": list(expected["counts"])}


def test_a_bracket_that_misses_its_rank_is_widened_until_it_holds_it(spark, monkeypatch):
    df = spread_values(spark, 500)
    calls = []
    real = preprocessing._brackets

    def too_narrow_first(values_df, stats, pending, probabilities, half_width, accuracy):
        calls.append(half_width)
        brackets = real(values_df, stats, pending, probabilities, half_width, accuracy)
        return [(c, i, low, low) for c, i, low, _ in brackets] if len(calls) == 1 else brackets

    monkeypatch.setattr(preprocessing, "_brackets", too_narrow_first)
    quantiles = exact_quantiles(df, ["skewed"], [0.5, 0.9], one_pass_max_rows=0)
    expected = df.agg(F.percentile("skewed", [0.5, 0.9]).alias("q")).first()["q"]
    assert quantiles == {"skewed": list(expected)}
    assert len(calls) == 2 and calls[1] == calls[0] * preprocessing.BRACKET_WIDENING


def test_exact_median_fills_unknown_values_with_the_mean_of_the_two_middle_values(spark):
    # Spark's Imputer gives 2.0 here (approximate; relativeError=0 takes the lower middle value).
    df = spark.createDataFrame([(1.0, 10), (2.0, None), (3.0, None), (4.0, 31), (None, 20), (None, None)],
                               "income double, score int")
    model = ExactMedianImputer(inputCols=["income", "score"], outputCols=["income_f", "score_f"]).fit(df)
    assert isinstance(model, SQLTransformer)
    expected = spark.createDataFrame([(1.0, 10.0), (2.0, 20.0), (3.0, 20.0), (4.0, 31.0), (2.5, 20.0), (2.5, 20.0)],
                                     "income_f double, score_f double")
    assert_df_equality(model.transform(df).select("income_f", "score_f"), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_a_median_of_nothing_is_refused_with_the_column_named(spark):
    df = spark.createDataFrame([(1.0, None), (2.0, None)], "a double, b double")
    with pytest.raises(ValueError, match=r"\['b'\] are null for every training row"):
        ExactMedianImputer(inputCols=["a", "b"], outputCols=["a_f", "b_f"]).fit(df)


# ---------------------------------------------------------------- outlier caps


def test_caps_learned_on_a_tiny_frame_and_applied_beyond_them(spark):
    # x: 1..10, one outlier (100) and a null: 11 values, quantile 0.1 at position 1 (value 2), 0.9 at 9 (value 10).
    # flag: eleven 0s and one 1: both caps would be 0 and erase the flag, so it stays uncapped.
    train = [(float(v), 0.0) for v in range(1, 11)] + [(100.0, 1.0), (None, 0.0)]
    train_df = spark.createDataFrame(train, "x double, flag double")
    stage = OutlierCaps(inputCols=["x", "flag"], outputCols=["x_c", "flag_c"], lowerQuantile=0.1, upperQuantile=0.9)
    model = stage.fit(train_df)
    assert caps_of(model.getStatement()) == {"x": (2.0, 10.0)}
    assert "LEAST(GREATEST(x, 2.0D), 10.0D)" in model.getStatement()

    scoring_df = spark.createDataFrame([("a", -5.0, 0.0), ("b", 5.0, 1.0), ("c", 50.0, 7.0), ("d", None, None)],
                                       "id string, x double, flag double")
    expected = spark.createDataFrame([("a", 2.0, 0.0, 1), ("b", 5.0, 1.0, 0), ("c", 10.0, 7.0, 1),
                                      ("d", None, None, 0)],
                                     f"id string, x_c double, flag_c double, {CAPPED_FEATURES} int")
    actual = model.transform(scoring_df).select("id", "x_c", "flag_c", CAPPED_FEATURES)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_caps_read_back_exactly_from_their_statement():
    caps = {"a": (1e-05, 1 / 3), "b": (-3.5, 1e16), "c": None}
    statement = caps_statement(["a", "b", "c"], ["a_c", "b_c", "c_c"], caps)
    assert caps_of(statement) == {"a": (1e-05, 1 / 3), "b": (-3.5, 1e16)}
    assert statement.endswith(f"CAST(IF(a < 1e-05D OR a > 0.3333333333333333D, 1, 0) + IF(b < -3.5D OR b > 1e+16D, "
                              f"1, 0) AS INT) AS {CAPPED_FEATURES} FROM __THIS__")


FEATURE_SCHEMA = "customer_id string, monetary double, frequency long, on_time_rate double"


def small_features(spark):
    # monetary 10..190 by 10; C20 is an extreme spender; C00 has no monetary value (unknown).
    # on_time_rate 0.5, 0.55, ..., 0.95, then 1.0 for the other 11.
    rows = [(f"C{i:02d}", 10.0 * i if i else None, i % 5, min(1.0, 0.5 + i / 20)) for i in range(20)]
    return spark.createDataFrame([*rows, ("C20", 1_000_000.0, 3, 1.0)], FEATURE_SCHEMA)


def test_a_saved_and_loaded_model_applies_the_training_caps(spark, tmp_path):
    params = PipelineParams(features=("monetary", "frequency", "on_time_rate"), log1p_features=("monetary",), k=2,
                            seed=3, outlier_caps=(0.05, 0.95))
    train_df = small_features(spark)
    preprocessing = fit_preprocessing(train_df, params)
    kmeans, _ = fit_best_of(kmeans_stage(params), scaled_features(preprocessing, train_df), n_init=1)
    model = compose(preprocessing, kmeans)
    model.write().overwrite().save(str(tmp_path / "model"))
    loaded = PipelineModel.load(str(tmp_path / "model"))
    assert [type(s).__name__ for s in loaded.stages] == [
        "SQLTransformer", "SQLTransformer", "SQLTransformer", "SQLTransformer", "VectorAssembler",
        "StandardScalerModel", "KMeansModel"]  # native Spark stages: no custseg class needed to load them
    caps = learned_caps(loaded, params)
    assert caps == learned_caps(model, params)
    # 21 monetary values: 10..190, C00's (the median of the others, 105) and 1e6: the 0.95 quantile is at
    # position 19 (190), the 0.05 one at position 1 (20); on_time_rate's are 0.55 and 1.0.
    assert caps["monetary"] == pytest.approx((np.log1p(20.0), np.log1p(190.0)), rel=1e-12)
    assert caps["on_time_rate"] == pytest.approx((0.55, 1.0), rel=1e-12)
    assert learned_medians(loaded, params)["monetary"] == 105.0

    scoring_df = spark.createDataFrame([("N1", 5e9, 2, 0.7), ("N2", 100.0, 2, None), ("N3", 1.0, 99, -4.0)],
                                       FEATURE_SCHEMA)
    before = score(model, scaled_features(PipelineModel(stages=model.stages[:-1]), scoring_df))
    after = score(loaded, scaled_features(PipelineModel(stages=loaded.stages[:-1]), scoring_df))
    assert_approx_df_equality(after, before, precision=1e-12, ignore_row_order=True)
    capped = {r["customer_id"]: r[CAPPED_FEATURES] for r in after.collect()}
    # N1: monetary above its cap; N2: nothing beyond a cap (a null on-time rate is 1.0, within); N3: all three.
    assert capped == {"N1": 1, "N2": 0, "N3": 3}
    # Beyond the cap, any spend is the same customer: 5e9 scores as 190 does.
    loaded_preprocessing = PipelineModel(stages=loaded.stages[:-1])
    at_cap_df = spark.createDataFrame([("N1", 190.0, 2, 0.7)], FEATURE_SCHEMA)
    n1_df = scoring_df.filter(F.col("customer_id") == "N1")
    assert (scaled_features(loaded_preprocessing, at_cap_df).first()["features_scaled"]
            == scaled_features(loaded_preprocessing, n1_df).first()["features_scaled"])


def test_cap_report_counts_the_training_values_each_cap_clamped(spark):
    params = PipelineParams(features=("monetary", "frequency"), log1p_features=("monetary",), k=2, seed=3,
                            outlier_caps=(0.05, 0.95))
    train_df = small_features(spark)
    report = outlier_cap_report(fit_preprocessing(train_df, params), train_df, params)
    # monetary: 21 values, caps at positions 1 and 19 (log1p of 20 and 190): 10 below, 1e6 above.
    # frequency: 0..4 with 0.05 / 0.95 quantiles 0 and 4: nothing capped.
    assert report["features"]["monetary"]["capped_below"] == 1 and report["features"]["monetary"]["capped_above"] == 1
    assert report["features"]["monetary"]["lower"] == pytest.approx(np.log1p(20.0), rel=1e-12)
    assert report["features"]["frequency"] == {"lower": 0.0, "upper": 4.0, "is_log1p": False, "capped_below": 0,
                                               "capped_above": 0}
    assert (report["customers_capped"], report["uncapped"]) == (2, [])
    assert outlier_cap_report(fit_preprocessing(train_df, replace(params, outlier_caps=None)), train_df,
                              replace(params, outlier_caps=None)) == {"enabled": False}


def three_blobs_and_planted_extremes(spark):
    """300 customers in 3 blobs that differ in frequency and credit score, with similar spend; 3 planted
    customers of blob 0 spend 1000 times as much."""
    rng = np.random.default_rng(5)
    rows = []
    for blob, (frequency, credit) in enumerate(((4, 560.0), (20, 690.0), (60, 800.0))):
        for i in range(100):
            rows.append((f"B{blob}-{i:03d}", float(100 * rng.lognormal(0, 0.2)),
                         int(frequency * rng.lognormal(0, 0.1)), float(credit + rng.normal(0, 15))))
    planted = [(f"X-{i}", 100_000.0 * (1 + i / 10), 4, 560.0) for i in range(3)]
    return spark.createDataFrame([*rows, *planted], "customer_id string, monetary double, frequency long, "
                                                    "credit_score double")


def segments_of(spark, outlier_caps):
    params = PipelineParams(features=("monetary", "frequency", "credit_score"),
                            log1p_features=("monetary", "frequency"), k=4, seed=1, outlier_caps=outlier_caps)
    df = three_blobs_and_planted_extremes(spark)
    preprocessing = fit_preprocessing(df, params)
    scaled_df = scaled_features(preprocessing, df)
    kmeans, _ = fit_best_of(kmeans_stage(params), scaled_df, n_init=2)
    rows = score(compose(preprocessing, kmeans), scaled_df).collect()
    members: dict[int, set[str]] = {}
    for r in rows:
        members.setdefault(r["segment_id"], set()).add(r["customer_id"])
    return members


def test_planted_extreme_spenders_form_a_segment_of_their_own_only_without_caps(spark):
    planted = {"X-0", "X-1", "X-2"}
    without = segments_of(spark, None)
    assert planted in without.values()  # K=4 spends a segment on 3 customers

    with_caps = segments_of(spark, (0.01, 0.99))
    assert min(len(m) for m in with_caps.values()) >= 20
    home = next(m for m in with_caps.values() if "X-0" in m)
    assert planted <= home and sum(c.startswith("B0-") for c in home) >= 20  # among the customers like them


# ---------------------------------------------------------------- not applicable versus unknown


NA_SCHEMA = ("customer_id string, frequency long, avg_ticket double, gap_mean_days double, digital_share double, "
             "n_loans long, on_time_rate double, annual_income double")


def not_applicable_features(spark):
    return spark.createDataFrame([
        ("repeat", 5, 40.0, 20.0, 0.5, 1, 0.75, 50_000.0),
        ("repeat2", 3, 60.0, 30.0, 0.25, 2, 0.5, 70_000.0),
        ("one_time", 1, 10.0, None, 1.0, 0, None, None),          # no gap: one purchase; no loan
        ("never", 0, None, None, None, 0, None, 60_000.0),          # no purchase at all
        ("no_channel", 4, 30.0, 12.0, None, 1, None, 40_000.0),    # a channel unknown; a loan with nothing due
    ], NA_SCHEMA)


def test_not_applicable_values_get_their_defined_value(spark):
    features = ("avg_ticket", "gap_mean_days", "digital_share", "on_time_rate", "annual_income")
    out = SQLTransformer(statement=not_applicable_statement(features, lookback_days=180)).transform(
        not_applicable_features(spark))
    expected = spark.createDataFrame([
        ("repeat", 40.0, 20.0, 0.5, 0.75, 50_000.0),
        ("repeat2", 60.0, 30.0, 0.25, 0.5, 70_000.0),
        ("one_time", 10.0, 180.0, 1.0, 1.0, None),  # gap: the window, no repeat purchase; on time: nothing late
        ("never", 0.0, 180.0, 0.0, 1.0, 60_000.0),  # no purchase: 0 per purchase, 0 digital
        ("no_channel", 30.0, 12.0, None, 1.0, 40_000.0),  # unknown channel stays unknown; income is no rule's
    ], "customer_id string, avg_ticket__defined double, gap_mean_days__defined double, "
       "digital_share__defined double, on_time_rate__defined double, annual_income double")
    actual = out.select("customer_id", "avg_ticket__defined", "gap_mean_days__defined", "digital_share__defined",
                        "on_time_rate__defined", "annual_income")
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_only_unknown_values_are_imputed_with_the_median(spark):
    features = ("gap_mean_days", "digital_share", "on_time_rate", "annual_income")
    params = PipelineParams(features=features, log1p_features=(), k=2, seed=1, lookback_days=365, outlier_caps=None)
    df = not_applicable_features(spark)
    out = fit_preprocessing(df, params).transform(df)
    # Medians after the defined values: gap of 12, 20, 30, 365, 365 -> 30 (none imputed); digital share of
    # 0, 0.25, 0.5, 1 -> 0.375 for the unknown channel; income 40k..70k -> 55k for the one-time buyer.
    expected = spark.createDataFrame([
        ("repeat", 20.0, 0.5, 0.75, 50_000.0),
        ("repeat2", 30.0, 0.25, 0.5, 70_000.0),
        ("one_time", 365.0, 1.0, 1.0, 55_000.0),
        ("never", 365.0, 0.0, 1.0, 60_000.0),
        ("no_channel", 12.0, 0.375, 1.0, 40_000.0),
    ], "customer_id string, gap_mean_days__imputed double, digital_share__imputed double, "
       "on_time_rate__imputed double, annual_income__imputed double")
    actual = out.select("customer_id", *[f"{f}__imputed" for f in features])
    assert_approx_df_equality(actual, expected, precision=1e-12, ignore_row_order=True, ignore_nullable=True)


def test_every_not_applicable_rule_is_documented_and_restated_by_the_peer():
    from benchmarks import peer
    from custseg.contract.features import FEATURES, NOT_APPLICABLE, UNKNOWN, null_rule

    assert set(NOT_APPLICABLE) | set(UNKNOWN) <= set(FEATURES)
    assert set(peer.NOT_APPLICABLE_FILLS) == set(NOT_APPLICABLE)
    assert null_rule("gap_mean_days").startswith("not applicable (fewer than 2 purchases in the window)")
    assert null_rule("annual_income") == "unknown (not in the customers table) -> the exact training median"


def test_outlier_caps_config_is_typed_and_strict():
    from custseg.config import ConfigError, load_config
    from helpers import ROOT

    conf = ROOT / "conf" / "test.yaml"
    assert load_config(conf).model.outlier_caps.upper_quantile == 0.999
    assert not load_config(conf, ["model.outlier_caps={enabled: false}"]).model.outlier_caps.enabled
    with pytest.raises(ConfigError, match="model.outlier_caps.lower_quantile must be below upper_quantile"):
        load_config(conf, ["model.outlier_caps.lower_quantile=0.9", "model.outlier_caps.upper_quantile=0.1"])
    with pytest.raises(ConfigError, match="unknown key model.outlier_caps.upper"):
        load_config(conf, ["model.outlier_caps.upper=0.9"])


def test_training_records_the_caps_and_scoring_another_date_counts_capped_features(spark, golden):
    import json
    import math

    from custseg.contract.outputs import FEATURES_TABLE, RUNS_TABLE, SEGMENT_ASSIGNMENTS
    from golden import AS_OF, LATER

    record, caps = golden.train, golden.conf.model.outlier_caps
    report = record.metrics["outlier_caps"]
    assert (report["enabled"], report["lower_quantile"], report["upper_quantile"]) == (
        True, caps.lower_quantile, caps.upper_quantile)
    assert set(report["features"]) | set(report["uncapped"]) == set(record.metrics["features_used"])
    monetary = report["features"]["monetary"]
    assert monetary["is_log1p"] and monetary["lower"] < monetary["upper"] and monetary["capped_above"] >= 1
    runs_row = golden.table(spark, RUNS_TABLE).filter(f"run_id = '{record.run_id}' AND job = 'train_segments'").first()
    assert json.loads(runs_row["metrics_json"])["outlier_caps"] == json.loads(json.dumps(report))

    def capped(as_of):
        return {r["customer_id"]: r["capped_features"] for r in golden.table(spark, SEGMENT_ASSIGNMENTS, as_of)
                .filter(f"run_id = '{record.run_id}'").collect()}

    assert sum(n > 0 for n in capped(AS_OF).values()) == report["customers_capped"] > 0
    # Scoring another date clamps to the training caps: a spend above the training cap counts as capped.
    scored = capped(LATER)
    above = [r["customer_id"] for r in golden.table(spark, FEATURES_TABLE, LATER).collect()
             if r["monetary"] is not None and math.log1p(max(r["monetary"], 0)) > monetary["upper"]]
    assert None not in scored.values() and all(scored[c] >= 1 for c in above)


def test_the_pandas_peer_prepares_the_same_matrix(spark):
    import pandas as pd
    from pyspark.ml.functions import vector_to_array

    from benchmarks import peer
    from custseg.config import load_config
    from helpers import ROOT

    conf = load_config(ROOT / "conf" / "test.yaml", [
        "model.features=[monetary,frequency,gap_mean_days,on_time_rate,annual_income]",
        "model.log1p_features=[monetary,gap_mean_days]",
        "model.outlier_caps.lower_quantile=0.05", "model.outlier_caps.upper_quantile=0.95"])
    rng = np.random.default_rng(2)
    n = 200
    frequency = rng.integers(0, 6, n)
    pdf = pd.DataFrame({
        "customer_id": [f"C{i:03d}" for i in range(n)], "monetary": rng.lognormal(4, 1, n), "frequency": frequency,
        "gap_mean_days": np.where(frequency >= 2, rng.uniform(5, 90, n), np.nan),
        "on_time_rate": np.where(rng.random(n) < 0.4, rng.random(n), np.nan),
        "annual_income": np.where(rng.random(n) < 0.1, np.nan, rng.normal(5e4, 1e4, n))})
    params = PipelineParams(features=conf.model.features, log1p_features=conf.model.log1p_features, k=2, seed=1,
                            outlier_caps=(0.05, 0.95))
    df = spark.createDataFrame(pdf)
    rows = (fit_preprocessing(df, params).transform(df).orderBy("customer_id")
            .select(vector_to_array("features_scaled").alias("x")).collect())
    # Spark's scaler divides by the sample standard deviation, scikit-learn's by the population one.
    spark_x = np.array([r["x"] for r in rows]) * np.sqrt(n / (n - 1))
    np.testing.assert_allclose(peer.prepare(pdf, conf.model, 365), spark_x, rtol=0, atol=1e-9)
