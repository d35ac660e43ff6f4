"""The build_features flow: inputs -> validation (rejected_records) -> features (customer_features).

Reads top to bottom: check and validate every input, write the rejected rows (the same pass counts every
table's rows per reason, reconciled before any feature), then compute and write the date's features.
"""
from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from custseg.config import Config
from custseg.contract.outputs import FEATURES_TABLE, REJECTED_COMMENTS, REJECTED_TABLE, REJECTED_TABLE_COMMENT
from custseg.platform.runs import RunRecord, recorded_run
from custseg.platform.session import cache_scope
from custseg.platform.storage import with_comments, write_for_date, write_output
from custseg.transforms.features import build_features
from custseg.transforms.ingest import ingest

log = logging.getLogger(__name__)


def run_build_features(spark: SparkSession, conf: Config) -> RunRecord:
    """Validate the inputs of conf.as_of_date and write customer_features and rejected_records."""
    as_of = conf.as_of_date
    with (recorded_run(spark, conf, "build_features", as_of, start=False) as record,
          cache_scope(spark) as persist):
        result = ingest(spark, conf, record.run_id, as_of, persist)  # checks every input's schema first
        record.start(spark, conf.output_path)
        record.stage_done("ingest_validate")
        # Written first: the same pass counts every table's rows per reason, reconciled before any feature.
        write_for_date(with_comments(result.rejected, REJECTED_COMMENTS), conf.table_path(REJECTED_TABLE), as_of,
                       REJECTED_TABLE_COMMENT, also={"run_id": record.run_id},
                       replace=REJECTED_TABLE not in record.new_tables, observed=True)
        record.outputs[REJECTED_TABLE] = record.run_id
        record.counts = {"inputs": result.reconciled_counts()}
        for table, counts in record.counts["inputs"].items():
            log.info("validated %s", validation_line(table, counts))
        record.stage_done("write_rejected")
        f = conf.features
        # The features are joined to the accepted customers, which drops transactions of any other
        # customer_id: the same result as the transactions' reference check, on 1 row per customer.
        features_df = build_features(
            result.accepted["customers"], result.unreferenced["transactions"], as_of,
            lookback_days=f.lookback_days, trend_days=f.trend_window_days,
            loans_df=result.accepted.get("loans"), payments_df=result.accepted.get("loan_payments"),
            late_window_days=f.late_payment_window_days, default_dpd=f.default_dpd,
            products_df=result.accepted.get("products"),
        )
        write_output(features_df.drop("as_of_date"), FEATURES_TABLE, conf.output_path, record.run_id, as_of,
                     record.new_tables)
        record.outputs[FEATURES_TABLE] = record.run_id
        record.stage_done("features", f"written to {conf.table_path(FEATURES_TABLE)}")
    return record


def validation_line(table: str, counts: dict[str, int]) -> str:
    """e.g. 'transactions: 100,598 read, 99,074 accepted, 1,524 rejected (1.5 %; duplicate_key 1,020, ...)'."""
    reasons = ", ".join(f"{k.removeprefix('rejected_')} {v:,}" for k, v in counts.items() if k.startswith("rejected_"))
    share = counts["rejected"] / counts["read"] if counts["read"] else 0.0
    return (f"{table}: {counts['read']:,} read, {counts['accepted']:,} accepted, {counts['rejected']:,} rejected "
            f"({share:.1%}{'; ' + reasons if reasons else ''})")
