"""The build_features flow: ingest and validate, compute features, write them and the rejected rows."""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator

from pyspark.sql import SparkSession

from custseg.catalog import register_outputs
from custseg.config import Config
from custseg.features import FEATURE_TABLE_COMMENT, build_features, feature_comments
from custseg.ingest import ingest
from custseg.io import InputError, with_comments, write_for_date
from custseg.runs import RunRecord, make_run_id
from custseg.spark import cache_scope
from custseg.tables import FEATURES_TABLE, REJECTED_TABLE

log = logging.getLogger(__name__)

REJECTED_COMMENTS = {
    "run_id": "run that read the row",
    "source_table": "input table the row came from",
    "reason": "machine-readable reason code (see docs/validation.md)",
    "detail": "the column (or key) the reason is about",
    "record_json": "the source row as JSON, PII columns removed",
    "as_of_date": "as-of date of the run",
}


@contextlib.contextmanager
def recorded_run(spark: SparkSession, conf: Config, job: str, as_of: dt.date) -> Iterator[RunRecord]:
    """Yield a RunRecord and write it to the runs table as succeeded, or as failed with the error.

    Input errors (a missing column, an unreadable table) are raised before anything is written
    and leave no trace in the outputs, as the contract says.
    """
    record = RunRecord(run_id=make_run_id(conf, as_of), job=job, as_of=as_of,
                       params=dataclasses.asdict(conf)["raw"])
    try:
        yield record
    except InputError:
        raise
    except Exception as err:
        with contextlib.suppress(Exception):
            record.write(spark, conf.output_path, "failed", f"{type(err).__name__}: {err}")
        raise
    record.write(spark, conf.output_path, "succeeded")
    register_outputs(spark, conf)


def run_build_features(spark: SparkSession, conf: Config) -> RunRecord:
    """Validate the inputs of conf.as_of_date and write customer_features and rejected_records."""
    as_of = conf.as_of_date
    with recorded_run(spark, conf, "build_features", as_of) as record, cache_scope() as persist:
        result = ingest(spark, conf, record.run_id, as_of, persist)
        record.stage_done("ingest_validate")
        # Written first: the same pass counts every table's rows per reason, reconciled before any feature.
        write_for_date(with_comments(result.rejected, REJECTED_COMMENTS), conf.table_path(REJECTED_TABLE), as_of,
                       "Every input row that failed validation, with its reason; one row per bad row and run")
        record.counts = {"inputs": result.reconciled_counts()}
        for table, counts in record.counts["inputs"].items():
            log.info("ingested %s: %s", table, counts)
        record.stage_done("write_rejected")
        f = conf.features
        # The features are joined to the accepted customers, which drops transactions of any other
        # customer_id: the same result as the transactions' reference check, on 1 row per customer.
        features_df = build_features(
            result.accepted["customers"], result.unreferenced["transactions"], as_of,
            lookback_days=f.lookback_days, trend_days=f.trend_window_days,
            loans_df=result.accepted.get("loans"), payments_df=result.accepted.get("loan_payments"),
            late_window_days=f.late_payment_window_days, default_dpd=f.default_dpd,
        )
        write_for_date(with_comments(features_df, feature_comments()), conf.table_path(FEATURES_TABLE), as_of,
                       FEATURE_TABLE_COMMENT)
        record.stage_done("features")
        log.info("features for %s written to %s", as_of, conf.table_path(FEATURES_TABLE))
    return record
