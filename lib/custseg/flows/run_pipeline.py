"""The whole flow for one as-of date in one session: (sample data) -> features -> segments -> report."""
from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from custseg.config import Config
from custseg.flows.build_features import run_build_features
from custseg.flows.segment_report import write_report
from custseg.flows.train_segments import run_train_segments
from custseg.platform.runs import RunRecord
from custseg.report.data import held_run

log = logging.getLogger(__name__)


def run_pipeline(spark: SparkSession, conf: Config, generate_sample: bool = False) -> RunRecord:
    """Build the features, train the segments and write the report; returns the training run's record."""
    if generate_sample:
        from custseg_sample.sample_data import ensure_sample_data  # the generator is not shipped to clusters

        ensure_sample_data(spark, conf)
    build = run_build_features(spark, conf)
    record = run_train_segments(spark, conf, hold_report=True, ledger=build.ledger_at_end)
    log.info("run %s: K=%s (%s)", record.run_id, record.metrics["chosen_k"], record.metrics["reason"])
    log.info("report: %s", report_of_held_run(spark, conf, build, record))
    return record


def report_of_held_run(spark: SparkSession, conf: Config, build: RunRecord, train: RunRecord) -> str:
    """The report of a training run from what it holds (run_train_segments with hold_report): what
    segment-report would read back from its outputs and model, without reading them."""
    return write_report(spark, conf, train.run_id, data=held_run(conf, train.report, train.row, build.row),
                        scatter=train.report.scatter)
