"""The score_customers flow: a saved model -> an as-of date's customer_features -> segment_assignments and
segment_drift.

Reads top to bottom: pick the training run, load its PipelineModel, transform the date's features with the
training imputation, caps and scaling, assign segments, name them from the training run's profiles, then
measure how far the scored population has drifted from the training one.
"""
from __future__ import annotations

import datetime as dt
import json
import logging

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from custseg.config import Config
from custseg.contract import outputs
from custseg.ml.explain import score
from custseg.ml.lineage import model_ids
from custseg.ml.pipeline import fitted_kmeans, scaled_features
from custseg.platform.ledger import Ledger, assignments_before, features_for_date
from custseg.platform.locations import model_location
from custseg.platform.runs import RunRecord, latest_run_id, recorded_run
from custseg.platform.session import cache_scope
from custseg.platform.storage import read_delta, write_output, write_outputs
from custseg.transforms.drift import measure_drift, retrain_reason
from custseg.transforms.migration import migration

log = logging.getLogger(__name__)


def run_score_customers(spark: SparkSession, conf: Config, run_id: str | None = None) -> RunRecord:
    """Apply a saved model (a run id, default the latest training run) to conf.as_of_date's features."""
    as_of = conf.as_of_date
    with recorded_run(spark, conf, "score_customers", as_of) as record, cache_scope(spark) as persist:
        model_run = run_id or latest_run_id(spark, conf.output_path, ledger=record.ledger)
        model = PipelineModel.load(model_location(conf.output_path, model_run))
        features_df = features_for_date(spark, conf.output_path, as_of, record.ledger)
        preprocessing = PipelineModel(stages=model.stages[:-1])
        # the training medians, caps and scaling
        ids = model_ids(spark, conf.output_path, model_run, len(fitted_kmeans(model).clusterCenters()))
        scored_df = persist(score(model, scaled_features(preprocessing, features_df), ids))
        profiles_df = (read_delta(spark, conf.table_path(outputs.SEGMENT_PROFILES))
                       .filter(F.col("run_id") == model_run).select("segment_id", "segment_name").distinct())
        assignments_df = scored_df.join(F.broadcast(profiles_df), on="segment_id", how="left")
        before = assignments_before(spark, conf.output_path, as_of, record.ledger)
        write_outputs({outputs.SEGMENT_ASSIGNMENTS: assignments_df.select(*outputs.ASSIGNMENT_COLUMNS),
                       outputs.SEGMENT_MIGRATION: migration(before, scored_df)},
                      conf.output_path, model_run, as_of, record.new_tables)
        record.stage_done("score")
        drift_df, reason = drift_against_training(spark, conf, model_run, features_df, scored_df, record.ledger)
        write_output(drift_df, outputs.SEGMENT_DRIFT, conf.output_path, model_run, as_of, record.new_tables)
        if reason:
            log.warning("retraining recommended for %s (model %s): %s", as_of, model_run, reason)
        record.stage_done("drift", reason or "no drift above the thresholds")
        record.model_run_id = model_run
        record.outputs.update(dict.fromkeys(outputs.SCORE_TABLES, model_run))
        record.metrics = {"model_run_id": model_run, "retrain_recommended": reason is not None,
                          "retrain_reason": reason}
        record.counts = {"customers": scored_df.count()}
    return record


def drift_against_training(spark: SparkSession, conf: Config, model_run: str, features_df: DataFrame,
                           scored_df: DataFrame, ledger: Ledger) -> tuple[DataFrame, str | None]:
    """The segment_drift rows of this scoring run, and the reason to retrain (None if nothing drifted)."""
    training = (read_delta(spark, conf.table_path(outputs.RUNS_TABLE))
                .filter((F.col("run_id") == model_run) & (F.col("job") == "train_segments")
                        & (F.col("status") == "succeeded")).first())
    training_as_of: dt.date = training["as_of_date"]
    features = json.loads(training["metrics_json"])["features_used"]
    training_df = (read_delta(spark, conf.table_path(outputs.SEGMENT_ASSIGNMENTS))
                   .filter((F.col("run_id") == model_run) & (F.col("as_of_date") == F.lit(training_as_of))))
    training_sizes = {r["segment_id"]: r["n"] for r in training_df.groupBy("segment_id").agg(F.count("*").alias("n"))
                      .collect()}
    scored_sizes = {r["segment_id"]: r["n"] for r in scored_df.groupBy("segment_id").agg(F.count("*").alias("n"))
                    .collect()}
    p99 = training_df.approxQuantile("distance_to_centroid", [0.99], 0.001)[0]
    d = conf.drift
    rows = measure_drift(features_for_date(spark, conf.output_path, training_as_of, ledger), features_df, features,
                         training_sizes, scored_sizes, p99, scored_df, d.segment_shares_psi, d.feature_psi,
                         d.far_from_centroids_share)
    reason = retrain_reason(rows)
    drift_df = spark.createDataFrame(
        [(r.measure, r.name, float(r.value), float(r.threshold), r.is_drifted, training_as_of, reason is not None,
          reason) for r in rows], outputs.SEGMENT_DRIFT_SCHEMA)
    return drift_df, reason
