"""The train_segments and score_customers flows: features -> K -> fit -> profiles -> Delta outputs."""
from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.ml.clustering import KMeansModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from custseg import tables
from custseg.config import Config
from custseg.feature_flow import recorded_run
from custseg.features import FEATURES
from custseg.io import read_delta, with_comments, write_for_date
from custseg.kselect import KChoice, KResult, sample_for_selection, sample_sse, select_k
from custseg.model import (
    PREDICTION,
    SCALED,
    PipelineParams,
    compose,
    fit_best_of,
    fit_preprocessing,
    fitted_kmeans,
    kmeans_stage,
    scaler_stats,
    with_distance_to_centroid,
)
from custseg.profiling import PROFILE_KEY_STATS, describe_segments, feature_stats, segment_risk
from custseg.runs import RunRecord, latest_run_id
from custseg.spark import Persist, cache_scope
from custseg.tables import FEATURES_TABLE

log = logging.getLogger(__name__)

# The K sweep fits each K on the selection sample with several scikit-learn starts. A Spark start whose
# centres score within this of that SSE on the same sample needs no further start (20M benchmark, K=5:
# every start scored 1.0001; at K=3 and K=8 most scored 1.12-1.39 and the next start is made).
START_TOLERANCE = 0.01


class NoFeaturesError(RuntimeError):
    """There are no customer features for the requested as-of date."""


def features_for_date(spark: SparkSession, conf: Config, as_of: dt.date) -> DataFrame:
    df = read_delta(spark, conf.table_path(FEATURES_TABLE)).filter(F.col("as_of_date") == F.lit(as_of))
    if df.limit(1).count() == 0:
        raise NoFeaturesError(f"customer_features has no rows for as_of_date {as_of}: run build_features first")
    return df


def usable_features(features_df: DataFrame, wanted: tuple[str, ...]) -> tuple[tuple[str, ...], dict[str, str]]:
    """Drop features that are all null or constant (they cannot be imputed or carry no information)."""
    # min = max says constant in one plain aggregate; a distinct count per column would copy every row per column.
    row = features_df.agg(*[agg(f).alias(f"{name}_{f}") for f in wanted
                            for name, agg in (("n", F.count), ("min", F.min), ("max", F.max))]).first()
    dropped = {f: ("all null" if row[f"n_{f}"] == 0 else "constant") for f in wanted
               if row[f"n_{f}"] == 0 or row[f"min_{f}"] == row[f"max_{f}"]}
    return tuple(f for f in wanted if f not in dropped), dropped


def fixed_layout(features_df: DataFrame, partitions: int) -> DataFrame:
    """Rows in the same partitions and order wherever the job runs.

    k-means|| and the K-selection sample draw per partition (seeded by partition index), so the
    segments would otherwise depend on how many files the table has and how many cores read it.
    """
    return features_df.repartition(partitions, "customer_id").sortWithinPartitions("customer_id")


def model_path(conf: Config, run_id: str) -> str:
    return str(Path(conf.output_path) / tables.MODELS_DIR / run_id)


def run_train_segments(spark: SparkSession, conf: Config) -> RunRecord:
    """Choose K, fit on all customers of conf.as_of_date, and write every segment output."""
    as_of = conf.as_of_date
    m = conf.model
    with recorded_run(spark, conf, "train_segments", as_of) as record, cache_scope() as persist:
        features_df = persist(fixed_layout(features_for_date(spark, conf, as_of), m.fit_partitions))
        used, dropped = usable_features(features_df, m.features)
        if not used:
            raise ValueError(f"no usable clustering feature: {dropped}")
        params = PipelineParams(features=used, log1p_features=tuple(f for f in m.log1p_features if f in used),
                                k=2, seed=conf.seed, max_iter=m.max_iter)
        preprocessing = fit_preprocessing(features_df, params)
        scaled_df = persist(preprocessing.transform(features_df).select("customer_id", SCALED))
        record.stage_done("preprocess")
        sample = sample_for_selection(scaled_df, m.sample_size, conf.seed)
        choice = select_k(sample, m.k_min, m.k_max, conf.seed, m.max_iter, m.stability_runs,
                          m.min_segment_share, m.min_stability, m.k, m.n_init)
        sample_rows = len(sample)
        record.stage_done("k_selection")

        # A projection of the cached scaled_df is not cached itself, so KMeans caches its own vectors, built
        # from scaled_df without transforming the features again; reading scaled_df on every pass instead
        # was about twice as slow. One start at 398K customers: 8.1 s from the features, 5.3-5.5 s from here.
        fit_df = scaled_df.select(SCALED)
        # KMeans needs k >= 2; on identical customers it returns a single centre anyway.
        k = max(choice.k, 2)
        sweep_fit = choice.result_for(k)
        kmeans_model, starts = fit_best_of(kmeans_stage(replace(params, k=k)), fit_df, m.n_init,
                                           None if sweep_fit is None else close_to_sweep(sample, sweep_fit.sse))
        model = compose(preprocessing, kmeans_model)
        model.write().overwrite().save(model_path(conf, record.run_id))
        record.stage_done("final_fit")

        scored_df = persist(score(model, scaled_df))
        outputs = segment_outputs(features_df, scored_df, model, params, conf, persist)
        write_segment_outputs(outputs, choice, sample_rows, conf, record.run_id, as_of)
        record.stage_done("profiles_and_writes")
        record.metrics = {
            "chosen_k": choice.k, "segments": len(outputs["described"]), "reason": choice.reason,
            "features_used": list(used), "features_dropped": dropped,
            "k_results": [r.as_row() for r in choice.results],
            "final_fit_starts": starts,
            "final_fit_sample_sse_ratio": sse_ratio(sample, kmeans_model, sweep_fit),
        }
        record.counts = {"customers": scored_df.count(), "k_selection_sample": sample_rows}
    return record


def close_to_sweep(sample: np.ndarray, sweep_sse: float) -> Callable[[KMeansModel], bool]:
    """Accept a model whose centres score within START_TOLERANCE of the sweep's SSE for the same K on the
    selection sample: as good as the best of the sweep's starts there, so another Spark start is not made."""
    return lambda model: sample_sse(sample, model.clusterCenters()) <= sweep_sse * (1 + START_TOLERANCE)


def sse_ratio(sample: np.ndarray, model: KMeansModel, sweep_fit: KResult | None) -> float | None:
    """The final centres' SSE on the selection sample / the sweep's for that K (1.0: as good; None: not swept)."""
    if sweep_fit is None or sweep_fit.sse <= 0:
        return None
    return sample_sse(sample, model.clusterCenters()) / sweep_fit.sse


def score(model: PipelineModel, scaled_df: DataFrame) -> DataFrame:
    """customer_id, segment_id, distance_to_centroid for already scaled features."""
    kmeans_model = fitted_kmeans(model)
    centers = [list(map(float, c)) for c in kmeans_model.clusterCenters()]
    predicted_df = kmeans_model.transform(scaled_df)
    return with_distance_to_centroid(predicted_df, centers).select(
        "customer_id", F.col(PREDICTION).cast("int").alias("segment_id"), "distance_to_centroid")


def segment_outputs(features_df: DataFrame, scored_df: DataFrame, model: PipelineModel, params: PipelineParams,
                    conf: Config, persist: Persist) -> dict:
    """Profiles, feature statistics and centroids for a fitted model (small results, k x features)."""
    joined_df = features_df.join(scored_df, on="customer_id", how="inner")
    risk_rows = [r.asDict() for r in segment_risk(joined_df).collect()]
    sizes = {r["segment_id"]: r["size"] for r in risk_rows}
    stats_df = persist(feature_stats(joined_df, list(FEATURES), sizes, conf.seed))
    stat_rows = stats_df.select("segment_id", "feature", "z_score", "mean").collect()  # k x features rows
    z_rows = [(r["segment_id"], r["feature"], r["z_score"]) for r in stat_rows]
    described = describe_segments(risk_rows, z_rows, list(params.features), conf.segment_rules)
    means = {(r["segment_id"], r["feature"]): r["mean"] for r in stat_rows if r["feature"] in PROFILE_KEY_STATS}
    for row in described:
        for feature in PROFILE_KEY_STATS:
            row[f"mean_{feature}"] = means.get((row["segment_id"], feature))
    return {"described": described, "stats_df": stats_df, "scored_df": scored_df,
            "centroids": centroid_rows(model, params)}


def centroid_rows(model: PipelineModel, params: PipelineParams) -> list[tuple]:
    """(segment_id, feature, scaled, original, is_log1p): centroids mapped back through scaler and log1p."""
    mean, std = scaler_stats(model)
    rows = []
    for segment, center in enumerate(fitted_kmeans(model).clusterCenters()):
        for j, feature in enumerate(params.features):
            prepared = float(center[j]) * std[j] + mean[j]
            is_log = feature in params.log1p_features
            original = math.copysign(math.expm1(abs(prepared)), prepared) if is_log else prepared
            rows.append((segment, feature, float(center[j]), original, is_log))
    return rows


PROFILE_SCHEMA = T.StructType([
    T.StructField("segment_id", T.IntegerType()),
    T.StructField("segment_name", T.StringType()),
    T.StructField("size", T.LongType()),
    T.StructField("share", T.DoubleType()),
    *[T.StructField(f"mean_{f}", T.DoubleType()) for f in PROFILE_KEY_STATS],
    T.StructField("borrower_share", T.DoubleType()),
    T.StructField("late_payment_rate", T.DoubleType()),
    T.StructField("default_rate", T.DoubleType()),
    T.StructField("max_dpd", T.LongType()),
    T.StructField("mean_credit_score", T.DoubleType()),
    T.StructField("mean_distance_to_centroid", T.DoubleType()),
    T.StructField("risk_tier", T.StringType()),
    T.StructField("credit_action", T.StringType()),
    T.StructField("marketing_strategy", T.StringType()),
    T.StructField("distinguishing_features", T.StringType()),
])
CENTROID_SCHEMA = "segment_id int, feature string, centroid_scaled double, centroid_original double, is_log1p boolean"


def _stamped(df: DataFrame, run_id: str, as_of: dt.date) -> DataFrame:
    return df.select(F.lit(run_id).alias("run_id"), "*", F.lit(as_of).alias("as_of_date"))


def _write(df: DataFrame, table: str, conf: Config, as_of: dt.date) -> None:
    write_for_date(with_comments(df, tables.comments_for(table)), conf.table_path(table), as_of,
                   tables.TABLE_COMMENTS[table])


def names_df(spark: SparkSession, described: list[dict]) -> DataFrame:
    return spark.createDataFrame([(r["segment_id"], r["segment_name"]) for r in described],
                                 "segment_id int, segment_name string")


def write_segment_outputs(outputs: dict, choice: KChoice, sample_rows: int, conf: Config, run_id: str,
                          as_of: dt.date) -> None:
    spark = outputs["stats_df"].sparkSession
    described = outputs["described"]
    profiles_df = spark.createDataFrame(
        [tuple(row.get(f.name) for f in PROFILE_SCHEMA.fields) for row in described], PROFILE_SCHEMA)
    assignments_df = outputs["scored_df"].join(F.broadcast(names_df(spark, described)), on="segment_id", how="left")
    _write(_stamped(assignments_df.select("customer_id", "segment_id", "segment_name", "distance_to_centroid"),
                    run_id, as_of), tables.SEGMENT_ASSIGNMENTS, conf, as_of)
    _write(_stamped(profiles_df, run_id, as_of), tables.SEGMENT_PROFILES, conf, as_of)
    _write(_stamped(outputs["stats_df"], run_id, as_of), tables.SEGMENT_FEATURE_STATS, conf, as_of)
    centroids_df = spark.createDataFrame(outputs["centroids"], CENTROID_SCHEMA)
    _write(_stamped(centroids_df, run_id, as_of), tables.SEGMENT_CENTROIDS, conf, as_of)
    _write(_stamped(k_selection_df(spark, choice, sample_rows), run_id, as_of), tables.K_SELECTION, conf, as_of)


def k_selection_df(spark: SparkSession, choice: KChoice, sample_rows: int) -> DataFrame:
    schema = ("k int, segments int, silhouette double, sse double, davies_bouldin double, calinski_harabasz double, "
              "min_share double, stability double, is_eligible boolean, is_chosen boolean, reason string, "
              "sample_rows long")
    rows = [(r.k, r.segments, r.silhouette, r.sse, r.davies_bouldin, r.calinski_harabasz, r.min_share,
             r.stability, r.is_eligible, r.k == choice.k, choice.reason if r.k == choice.k else None, sample_rows)
            for r in choice.results]
    if not rows:  # degenerate data: no sweep was possible
        rows = [(choice.k, choice.k, None, 0.0, None, None, 1.0, 1.0, True, True, choice.reason, sample_rows)]
    return spark.createDataFrame(rows, schema)


def run_score_customers(spark: SparkSession, conf: Config, run_id: str | None = None) -> RunRecord:
    """Apply a saved model (a run id, default the latest training run) to conf.as_of_date's features."""
    as_of = conf.as_of_date
    with recorded_run(spark, conf, "score_customers", as_of) as record:
        model_run = run_id or latest_run_id(spark, conf.output_path)
        model = PipelineModel.load(model_path(conf, model_run))
        features_df = features_for_date(spark, conf, as_of)
        preprocessing = PipelineModel(stages=model.stages[:-1])
        scored_df = score(model, preprocessing.transform(features_df).select("customer_id", SCALED))
        profiles_df = (read_delta(spark, conf.table_path(tables.SEGMENT_PROFILES))
                       .filter(F.col("run_id") == model_run).select("segment_id", "segment_name").distinct())
        assignments_df = scored_df.join(F.broadcast(profiles_df), on="segment_id", how="left")
        _write(_stamped(assignments_df.select("customer_id", "segment_id", "segment_name", "distance_to_centroid"),
                        model_run, as_of), tables.SEGMENT_ASSIGNMENTS, conf, as_of)
        record.metrics = {"model_run_id": model_run}
        record.counts = {"customers": scored_df.count()}
    return record
