"""The score_customers flow: a saved model -> an as-of date's customer_features -> segment_assignments.

Reads top to bottom: pick the training run, load its PipelineModel, transform the date's features with the
training imputation and scaling, assign segments and name them from the training run's profiles.
"""
from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from custseg.config import Config
from custseg.contract import outputs
from custseg.ml.pipeline import scaled_features, score
from custseg.platform.locations import model_location
from custseg.platform.runs import RunRecord, latest_run_id, recorded_run
from custseg.platform.storage import features_for_date, read_delta, write_output


def run_score_customers(spark: SparkSession, conf: Config, run_id: str | None = None) -> RunRecord:
    """Apply a saved model (a run id, default the latest training run) to conf.as_of_date's features."""
    as_of = conf.as_of_date
    with recorded_run(spark, conf, "score_customers", as_of) as record:
        model_run = run_id or latest_run_id(spark, conf.output_path)
        model = PipelineModel.load(model_location(conf.output_path, model_run))
        features_df = features_for_date(spark, conf.output_path, as_of)
        preprocessing = PipelineModel(stages=model.stages[:-1])
        scored_df = score(model, scaled_features(preprocessing, features_df))  # the training medians and caps
        profiles_df = (read_delta(spark, conf.table_path(outputs.SEGMENT_PROFILES))
                       .filter(F.col("run_id") == model_run).select("segment_id", "segment_name").distinct())
        assignments_df = scored_df.join(F.broadcast(profiles_df), on="segment_id", how="left")
        write_output(assignments_df.select(*outputs.ASSIGNMENT_COLUMNS), outputs.SEGMENT_ASSIGNMENTS,
                     conf.output_path, model_run, as_of)
        record.model_run_id = model_run
        record.outputs[outputs.SEGMENT_ASSIGNMENTS] = model_run
        record.metrics = {"model_run_id": model_run}
        record.counts = {"customers": scored_df.count()}
    return record
