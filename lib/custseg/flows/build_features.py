"""The build_features flow: inputs -> validation (rejected_records) -> features (customer_features).

Reads top to bottom: check and validate every input, write the rejected rows (the same pass counts every
table's rows per reason, reconciled before any feature), then compute and write the date's features.
"""
from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from custseg.config import Config
from custseg.contract.inputs import CONTRACTS
from custseg.contract.outputs import FEATURES_TABLE, REJECTED_COMMENTS, REJECTED_TABLE, REJECTED_TABLE_COMMENT
from custseg.platform.runs import RunRecord, recorded_run
from custseg.platform.session import cache_scope
from custseg.platform.storage import read_delta, with_comments, write_for_date, write_output
from custseg.transforms.attributes import has_two_digit_years
from custseg.transforms.features import build_features, customers_as_of
from custseg.transforms.ingest import RejectedShareError, check_inputs, ingest, over_rejected_limit

log = logging.getLogger(__name__)


def run_build_features(spark: SparkSession, conf: Config) -> RunRecord:
    """Validate the inputs of conf.as_of_date and write customer_features and rejected_records."""
    as_of = conf.as_of_date
    with (recorded_run(spark, conf, "build_features", as_of, start=False) as record,
          cache_scope(spark) as persist):
        raw = check_inputs(spark, conf)  # an input error stops the run here, before anything is written
        record.start_beside(spark, conf.output_path)  # while the inputs are validated, which writes nothing
        result = ingest(spark, conf, raw, record.run_id, as_of, persist)
        record.recorded()
        record.stage_done("ingest_validate")
        # Written first: the same pass counts every table's rows per reason, reconciled before any feature.
        write_for_date(with_comments(result.rejected, REJECTED_COMMENTS), conf.table_path(REJECTED_TABLE), as_of,
                       REJECTED_TABLE_COMMENT, also={"run_id": record.run_id},
                       replace=REJECTED_TABLE not in record.new_tables, observed=True)
        record.outputs[REJECTED_TABLE] = record.run_id
        record.counts = {"inputs": result.reconciled_counts()}
        for table, counts in record.counts["inputs"].items():
            log.info("validated %s", validation_line(table, counts))
        if too_many := over_rejected_limit(record.counts["inputs"], conf):
            raise RejectedShareError(rejected_share_message(spark, conf, record.run_id, too_many[0],
                                                            record.counts["inputs"][too_many[0]]))
        if customers_as_of(result.accepted["customers"], as_of).isEmpty():  # the customers the features describe
            raise ValueError(no_customers_message(result.accepted["customers"], conf))
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


# What most often makes a reason reject most of a table, as said to the user.
REJECTION_HINTS = {
    "unparseable_value": "values not readable as the contract's type: check the number format (a decimal comma, a "
                         "currency sign) and date_format / timestamp_format",
    "malformed_record": "rows whose field count differs from the header's, or taken into a quote left open: check "
                        "the separator (options.sep) and the quoting (a stray \" at a field's start)",
    "duplicate_key": "rows sharing their key: lines of one invoice or basket need an id each (or "
                     "inputs.transactions.transaction_id_from_row: true), and inputs.transactions.basket to count "
                     "invoices",
    "unknown_customer": "customer ids not among the accepted customers: compare the two tables' id formats "
                        "(17850 against 17850.0, leading zeros, spaces)",
    "unknown_loan": "loan ids not among the accepted loans: compare the two tables' id formats",
    "invalid_value": "values outside the contract's list: map the table's spellings to it with "
                     "inputs.<table>.values (e.g. status: {Fully Paid: paid_off}; docs/validation.md)",
    "missing_required_value": "required values empty: check the column mapping",
}


def rejection_hint(table: str, reason: str, detail: str | None) -> str:
    """What to check for the reason that rejected most of a table; for an unreadable value, by the column's type."""
    kind = next((c.type for c in CONTRACTS[table].columns if c.name == detail), None) if table in CONTRACTS else None
    if reason == "unparseable_value" and kind in ("date", "timestamp"):
        return (f"{detail} values not readable as a {kind}: check inputs.{table}.{kind}_format (e.g. dd/MM/yyyy); "
                f"a day number or an epoch needs turning into a {kind} before this job")
    if reason == "unparseable_value" and kind in ("double", "int"):
        return (f"{detail} values not readable as a number: check the number format (a decimal comma needs "
                f"inputs.{table}.decimal_separator: ','; a currency sign must go)")
    if reason == "duplicate_key" and table == "customers":
        return ("customer ids on several rows: customers holds one row per customer; from an export with a row per "
                "transaction, set inputs.customers.rows_per_customer: many (README: one flat file serves as both "
                "tables)")
    return REJECTION_HINTS.get(reason, "check its column mapping")


def rejected_share_message(spark: SparkSession, conf: Config, run_id: str, table: str, counts: dict[str, int]) -> str:
    """Why a table's rows were rejected, with the columns most named, from the rejected rows just written."""
    top = (read_delta(spark, conf.table_path(REJECTED_TABLE))
           .filter((F.col("run_id") == run_id) & (F.col("source_table") == table))
           .groupBy("reason", "detail").count().orderBy(F.desc("count"), "reason", "detail").limit(3).collect())
    causes = ", ".join(f"{r['reason']} in {r['detail']} {r['count']:,}" if r["detail"] else
                       f"{r['reason']} {r['count']:,}" for r in top)
    hint = rejection_hint(table, top[0]["reason"], top[0]["detail"]) if top else "check its column mapping"
    return (f"input table '{table}': {counts['rejected']:,} of {counts['read']:,} rows rejected "
            f"({counts['rejected'] / counts['read']:.1%}), more than inputs.{table}.max_rejected_share "
            f"({conf.inputs[table].max_rejected_share:.0%}); most: {causes}. {hint[0].upper()}{hint[1:]}; every "
            f"rejected row and its reason is in {REJECTED_TABLE} (run {run_id})")


def no_customers_message(customers_df: DataFrame, conf: Config) -> str:
    """Why no customer is there to describe at the as-of date, with the signup dates that were read."""
    row = customers_df.agg(F.count("*").alias("n"), F.min("signup_date").alias("first"),
                           F.max("signup_date").alias("last")).first()
    date_format = conf.inputs["customers"].date_format
    two_digit = has_two_digit_years(date_format)
    return (f"no accepted customer signed up before the as-of date {conf.as_of_date}: {row['n']:,} accepted"
            + (f", signup dates {row['first']} to {row['last']}" if row["n"] else "")
            + f"; customer_features would be empty. Check as_of_date and inputs.customers.date_format "
            f"'{date_format}'" + (" (two-digit years, yy, are read as 1969-2068)" if two_digit else ""))


def validation_line(table: str, counts: dict[str, int]) -> str:
    """e.g. 'transactions: 100,598 read, 99,074 accepted, 1,524 rejected (1.5 %; duplicate_key 1,020, ...)'."""
    reasons = ", ".join(f"{k.removeprefix('rejected_')} {v:,}" for k, v in counts.items() if k.startswith("rejected_"))
    share = counts["rejected"] / counts["read"] if counts["read"] else 0.0
    merged = f" ({counts['merged']:,} more merged into their customer's row)" if counts.get("merged") else ""
    return (f"{table}: {counts['read']:,} read, {counts['accepted']:,} accepted{merged}, {counts['rejected']:,} "
            f"rejected ({share:.1%}{'; ' + reasons if reasons else ''})")
