"""Validate input tables against the contract; every bad row is kept with a reason.

Each table goes through the same steps:
1. `conform`: check required columns exist (else InputError naming table and column), drop PII,
   rename the user's columns to contract names and parse them to contract types;
2. `with_rejection_reason`: the first rule a row breaks becomes its reason code;
3. `split_valid`: accepted rows (contract columns) and rejected rows (reason + the row as JSON).

Reason codes (column `reason` of rejected_records; `detail` names the column):
- unparseable_value: a value that cannot be read as the contract type (e.g. amount "n/a")
- missing_required_value: a required column is null
- out_of_range: credit_score outside 300-850, negative principal / amount_due / income
- invalid_value: a loan status outside the contract's list
- zero_amount: a transaction of amount 0 (neither a purchase nor a refund)
- duplicate_key: a second row with the same key; the first by a deterministic order is kept
- unknown_customer / unknown_loan: a reference to a customer or loan that is not accepted
"""
from __future__ import annotations

import datetime as dt

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from custseg.config import InputConf
from custseg.contract import CREDIT_SCORE_RANGE, LOAN_STATUSES, Column, TableContract
from custseg.io import InputError

REASON = "_reason"
DETAIL = "_detail"
RECORD = "_record"

NUMERIC_TYPES = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType, T.DecimalType)
ACCEPTED_SOURCE_TYPES = {
    "string": (T.StringType, *NUMERIC_TYPES, T.DateType, T.TimestampType, T.TimestampNTZType, T.BooleanType),
    "double": (T.StringType, *NUMERIC_TYPES),
    "int": (T.StringType, *NUMERIC_TYPES),
    "date": (T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType),
    "timestamp": (T.StringType, T.DateType, T.TimestampType, T.TimestampNTZType),
}

REJECTED_SCHEMA = ("source_table", "reason", "detail", "record_json")


def source_name(conf: InputConf, contract_name: str) -> str:
    return conf.columns.get(contract_name, contract_name)


def check_schema(df: DataFrame, contract: TableContract, conf: InputConf) -> None:
    """Fail with the table and column named if a required column is missing or of an unusable type."""
    present = {f.name: f.dataType for f in df.schema.fields}
    for column in contract.columns:
        src = source_name(conf, column.name)
        if src not in present:
            if column.required:
                raise InputError(f"input table '{contract.name}': required column '{column.name}' "
                                 f"(source column '{src}') is missing; found {sorted(present)}")
            continue
        if not isinstance(present[src], ACCEPTED_SOURCE_TYPES[column.type]):
            raise InputError(f"input table '{contract.name}': column '{src}' has type "
                             f"{present[src].simpleString()}, which cannot be read as {column.type}")


def _parse(src: SparkColumn, source_type: T.DataType, column: Column, conf: InputConf) -> SparkColumn:
    """Parse a source column to its contract type; null where the value cannot be read."""
    text = F.trim(src.cast("string"))
    if column.type == "string":
        return F.when(text != "", text)
    if column.type in ("double", "int"):
        number = src if isinstance(source_type, NUMERIC_TYPES) else text.try_cast("double")
        return number.cast(column.type) if column.type == "double" else F.round(number).cast("int")
    if column.type == "date":
        if isinstance(source_type, T.StringType):
            return F.coalesce(F.try_to_date(text, conf.date_format), text.try_cast("date"))
        return src.cast("date")
    if isinstance(source_type, T.StringType):
        return F.coalesce(F.try_to_timestamp(text, F.lit(conf.timestamp_format)), text.try_cast("timestamp"))
    return src.cast("timestamp")


def conform(df: DataFrame, contract: TableContract, conf: InputConf, pii_columns: tuple[str, ...]) -> DataFrame:
    """Drop PII, rename to contract names, parse types; keep the row as JSON and parse failures.

    Output: the contract columns present in the source, `_record` (JSON of the non-PII source row)
    and `_unparseable` (the first contract column whose value could not be read, else null).
    """
    check_schema(df, contract, conf)
    pii = {name.lower() for name in pii_columns}
    kept_df = df.select([c for c in df.columns if c.lower() not in pii])
    types = {f.name: f.dataType for f in kept_df.schema.fields}
    present = [c for c in contract.columns if source_name(conf, c.name) in types]
    parsed = []
    failures = []
    for column in present:
        src_name = source_name(conf, column.name)
        value = _parse(F.col(f"`{src_name}`"), types[src_name], column, conf)
        parsed.append(value.alias(column.name))
        is_unreadable = F.col(f"`{src_name}`").isNotNull() & (F.trim(F.col(f"`{src_name}`").cast("string")) != "")
        failures.append(F.when(is_unreadable & value.isNull(), F.lit(column.name)))
    record = F.to_json(F.struct([F.col(f"`{c}`") for c in kept_df.columns]))
    unparseable = F.coalesce(*failures, F.lit(None).cast("string")) if failures else F.lit(None).cast("string")
    return kept_df.select(*parsed, record.alias(RECORD), unparseable.alias("_unparseable"))


def _first_reason(rules: list[tuple[SparkColumn, str, SparkColumn]]) -> tuple[SparkColumn, SparkColumn]:
    """Turn ordered (broken?, reason, detail) rules into the first reason and its detail."""
    reason = F.lit(None).cast("string")
    detail = F.lit(None).cast("string")
    for is_broken, code, what in reversed(rules):
        reason = F.when(is_broken, F.lit(code)).otherwise(reason)
        detail = F.when(is_broken, what).otherwise(detail)
    return reason, detail


def row_rules(contract: TableContract, columns: list[str]) -> list[tuple[SparkColumn, str, SparkColumn]]:
    """Row-level rules in priority order, for the columns present."""
    rules: list[tuple[SparkColumn, str, SparkColumn]] = [
        (F.col("_unparseable").isNotNull(), "unparseable_value", F.col("_unparseable")),
    ]
    for name in contract.required:
        rules.append((F.col(name).isNull(), "missing_required_value", F.lit(name)))
    lo, hi = CREDIT_SCORE_RANGE
    if "credit_score" in columns:
        rules.append((~F.col("credit_score").between(lo, hi), "out_of_range", F.lit("credit_score")))
    for name in ("annual_income", "principal", "amount_due", "amount_paid", "outstanding_balance"):
        if name in columns:
            rules.append((F.col(name) < 0, "out_of_range", F.lit(name)))
    if contract.name == "loans":
        rules.append((~F.lower(F.col("status")).isin(*LOAN_STATUSES), "invalid_value", F.lit("status")))
    if contract.name == "transactions":
        rules.append((F.col("amount") == 0, "zero_amount", F.lit("amount")))
    return rules


def with_rejection_reason(conformed_df: DataFrame, contract: TableContract) -> DataFrame:
    """Add `_reason` / `_detail`: row rules first, then duplicate keys among the rows that pass them."""
    reason, detail = _first_reason(row_rules(contract, conformed_df.columns))
    checked_df = conformed_df.withColumn(REASON, reason).withColumn(DETAIL, detail)
    if contract.name == "loans":
        checked_df = checked_df.withColumn("status", F.lower(F.col("status")))
    # Among rows that pass, the first by (record JSON) wins: deterministic whatever the partitioning.
    by_key = Window.partitionBy(*contract.key, F.col(REASON).isNull()).orderBy(RECORD)
    # One column, then used twice: the window in two expressions would shuffle and sort the table twice.
    ranked_df = checked_df.withColumn("_is_duplicate", F.col(REASON).isNull() & (F.row_number().over(by_key) > 1))
    is_duplicate = F.col("_is_duplicate")
    key_detail = F.lit(",".join(contract.key))
    return (
        ranked_df
        .withColumn(DETAIL, F.when(is_duplicate, key_detail).otherwise(F.col(DETAIL)))
        .withColumn(REASON, F.when(is_duplicate, F.lit("duplicate_key")).otherwise(F.col(REASON)))
        .drop("_is_duplicate")
    )


def with_reference_check(checked_df: DataFrame, keys_df: DataFrame, key: str, reason: str) -> DataFrame:
    """Reject rows whose `key` is not among the accepted keys of the referenced table."""
    known_df = keys_df.select(F.col(key).alias("_known_key")).distinct()
    joined_df = checked_df.join(known_df, on=checked_df[key] == known_df["_known_key"], how="left")
    is_unknown = F.col(REASON).isNull() & F.col("_known_key").isNull()
    return (
        joined_df
        .withColumn(DETAIL, F.when(is_unknown, F.lit(key)).otherwise(F.col(DETAIL)))
        .withColumn(REASON, F.when(is_unknown, F.lit(reason)).otherwise(F.col(REASON)))
        .drop("_known_key")
    )


def for_caching(checked_df: DataFrame) -> DataFrame:
    """What the later steps need, smaller: the source row's JSON only on rejected rows (it is written for
    those alone), so caching a large table does not hold a JSON copy of every accepted row."""
    kept = [c for c in checked_df.columns if c not in (RECORD, "_unparseable")]
    return checked_df.select(*kept, F.when(F.col(REASON).isNotNull(), F.col(RECORD)).alias(RECORD))


def accepted(checked_df: DataFrame, contract: TableContract) -> DataFrame:
    """Rows that passed every rule, with the contract columns present (optional ones null if absent)."""
    columns = [
        F.col(c.name) if c.name in checked_df.columns else F.lit(None).cast(c.type).alias(c.name)
        for c in contract.columns
    ]
    return checked_df.filter(F.col(REASON).isNull()).select(columns)


def rejected(checked_df: DataFrame, table: str, run_id: str, as_of: dt.date) -> DataFrame:
    """Rows that broke a rule: source table, reason code, detail and the source row as JSON."""
    return checked_df.filter(F.col(REASON).isNotNull()).select(
        F.lit(run_id).alias("run_id"),
        F.lit(table).alias("source_table"),
        F.col(REASON).alias("reason"),
        F.col(DETAIL).alias("detail"),
        F.col(RECORD).alias("record_json"),
        F.lit(as_of).alias("as_of_date"),
    )


def reason_counts(checked_df: DataFrame) -> dict[str | None, int]:
    """Rows per reason (None = accepted), in one pass: the basis of the reconciliation."""
    return {row[REASON]: row["n"] for row in checked_df.groupBy(REASON).agg(F.count("*").alias("n")).collect()}
