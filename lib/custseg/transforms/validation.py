"""Validate input tables against the contract; every bad row is kept with a reason.

Each table goes through the same steps (custseg.transforms.ingest runs them):
1. `conform`: check required columns exist (else InputError naming table and column), drop PII,
   rename the user's columns to contract names and parse them to contract types;
2. `with_row_rules`: the first row rule a row breaks becomes its reason code;
3. `duplicate_keys` + `with_duplicate_check`: a second row with a key is rejected. Only a hash of the
   key is shuffled to find the shared keys; only the rows holding one are ranked;
4. `with_reference_check`: references to keys the parent table did not accept;
5. `accepted` (contract columns) and `rejected` (reason + the source row as JSON, built for those rows only).

The reason codes (column `reason` of rejected_records; `detail` names the column) and the rules behind
them are declared in custseg.contract.inputs.
"""
from __future__ import annotations

import datetime as dt
import re
from functools import reduce

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from custseg.config import InputConf
from custseg.contract.inputs import CUSTOMERS, MAX_ABS_NUMBER, REASON_CODES, Column, TableContract
from custseg.platform.csv_rows import TAKEN_IN
from custseg.platform.storage import CORRUPT_RECORD, InputError
from custseg.transforms.attributes import has_two_digit_years

UNDECODABLE = "\ufffd"
REASON = "_reason"
DETAIL = "_detail"
SOURCE = "_source"  # the non-PII source row as a struct; JSON only where it is needed
KEY_HASH = "_key_hash"
BASKET = "_basket"  # the basket or invoice a transaction line belongs to (inputs.transactions.basket)
MERGED = "_merged"  # rows of a customer merged into its one row (inputs.customers.rows_per_customer: many)
READER_COLUMNS = (CORRUPT_RECORD, TAKEN_IN)  # added by the CSV reader, not the user's

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


def normalised(name: str) -> str:
    """Column names compare trimmed and case-folded: a CSV header `a, b` or `Customer_ID` still matches."""
    return name.strip().casefold()


def source_columns(df: DataFrame, contract: TableContract, conf: InputConf) -> dict[str, str]:
    """Contract column -> the source column that holds it, for the contract columns present."""
    actual = {normalised(c): c for c in df.columns if c not in READER_COLUMNS}
    found = {c.name: actual.get(normalised(source_name(conf, c.name))) for c in contract.columns}
    return {name: src for name, src in found.items() if src is not None}


def check_schema(df: DataFrame, contract: TableContract, conf: InputConf) -> None:
    """Fail with the table and column named if a required column is missing or of an unusable type."""
    present = {f.name: f.dataType for f in df.schema.fields}
    sources = source_columns(df, contract, conf)
    for column in contract.columns:
        if column.name not in sources:
            if column.required:
                raise InputError(f"input table '{contract.name}': required column '{column.name}' "
                                 f"(source column '{source_name(conf, column.name)}') is missing; "
                                 f"found {sorted(c for c in present if c not in READER_COLUMNS)}")
            continue
        src = sources[column.name]
        if not isinstance(present[src], ACCEPTED_SOURCE_TYPES[column.type]):
            raise InputError(f"input table '{contract.name}': column '{src}' has type "
                             f"{present[src].simpleString()}, which cannot be read as {column.type}")
    if conf.basket and named_column(df, conf.basket) is None:
        raise InputError(f"input table '{contract.name}': column '{conf.basket}' (inputs.{contract.name}.basket) is "
                         f"missing; found {sorted(c for c in present if c not in READER_COLUMNS)}")
    for name, factor in conf.multiply_by.items():
        if factor_column(df, conf, name) is None:
            raise InputError(f"input table '{contract.name}': column '{factor}' (inputs.{contract.name}.multiply_by."
                             f"{name}) is missing; found {sorted(c for c in present if c not in READER_COLUMNS)}")


def factor_column(df: DataFrame, conf: InputConf, contract_name: str) -> str | None:
    """The source column a contract column is multiplied by (inputs.<table>.multiply_by), if it is there."""
    return named_column(df, conf.multiply_by[contract_name]) if contract_name in conf.multiply_by else None


def named_column(df: DataFrame, name: str) -> str | None:
    """The source column a configured name stands for, matched trimmed and case-folded."""
    return next((c for c in df.columns if c not in READER_COLUMNS and normalised(c) == normalised(name)), None)


TRANSACTION_ID = "transaction_id"


def with_transaction_id_from_row(df: DataFrame, table: str) -> DataFrame:
    """A transaction_id made of a 64-bit hash of all the row's values (inputs.transactions.transaction_id_from_row),
    for a table without one: the same row always has the same id, and identical rows, copies, share it, so all but
    one are rejected as duplicate_key."""
    held = [c for c in df.columns if normalised(c) == TRANSACTION_ID]
    if held:
        raise InputError(f"input table '{table}': has a column '{held[0]}' already; map it (columns.transaction_id) "
                         "instead of making ids from the rows (transaction_id_from_row)")
    values = [F.col(f"`{c}`") for c in df.columns if c not in READER_COLUMNS]
    return df.withColumn(TRANSACTION_ID, F.concat(F.lit("row-"), F.lower(F.hex(F.xxhash64(*values)))))


def _parse(src: SparkColumn, source_type: T.DataType, column: Column, conf: InputConf) -> SparkColumn:
    """Parse a source column to its contract type; null where the value cannot be read."""
    text = F.trim(src.cast("string"))
    if column.type == "string":
        # U+FFFD: bytes that did not decode; two different ids would otherwise read as one.
        return F.when((text != "") & ~text.contains(UNDECODABLE), text)
    if column.type in ("double", "int"):
        number = src if isinstance(source_type, NUMERIC_TYPES) else number_text(text, conf).try_cast("double")
        number = F.when(is_finite(number.cast("double")), number)  # NaN and infinities are not amounts
        return number.cast(column.type) if column.type == "double" else F.round(number).cast("int")
    if column.type == "date":
        if isinstance(source_type, T.StringType):
            return F.coalesce(_pivoted(F.try_to_date(text, conf.date_format), conf.date_format), text.try_cast("date"))
        return src.cast("date")
    if isinstance(source_type, T.StringType):
        formats = timestamp_formats(conf.timestamp_format)
        in_format = F.coalesce(*[F.try_to_timestamp(text, F.lit(f)) for f in formats])
        return F.coalesce(_pivoted(in_format, conf.timestamp_format), text.try_cast("timestamp"))
    return src.cast("timestamp")


# Two-digit years read as 1969-2068, as C's and Python's %y do (Spark's yy reads 2000-2099): 930101 is 1993. An
# ISO date, four-digit year, is taken as written.
PIVOT_YEAR = 2069


def _pivoted(value: SparkColumn, date_format: str) -> SparkColumn:
    if not has_two_digit_years(date_format):
        return value
    return F.when(F.year(value) >= PIVOT_YEAR, value + F.expr("INTERVAL '-100' YEAR")).otherwise(value)


def listed_value(text: SparkColumn, mapping: dict[str, str]) -> SparkColumn:
    """A value of a listed column as the contract spells it: the configured mapping (inputs.<table>.values), matched
    trimmed and case-insensitively, else lower case with spaces and hyphens as underscores (Charged Off, charged-off:
    charged_off). What is still not listed is rejected as invalid_value by the row rules."""
    spelt = F.regexp_replace(F.lower(text), r"[\s-]+", "_")
    mapped = F.lit(None).cast("string")
    for value, target in mapping.items():
        mapped = F.when(F.lower(text) == value.strip().lower(), F.lit(target.strip().lower())).otherwise(mapped)
    return F.coalesce(mapped, spelt)


# 1.234,56 or 1234,56 (a sign first, an exponent nowhere): anything else is not a decimal-comma number.
DECIMAL_COMMA_NUMBER = r"^[+-]?([0-9]{1,3}(\.[0-9]{3})+|[0-9]+)(,[0-9]+)?$"
# 1,234.56 and 1,234: commas between groups of three digits only.
GROUPED_POINT_NUMBER = r"^[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?$"


def number_text(text: SparkColumn, conf: InputConf) -> SparkColumn:
    """A number's text as Spark reads it: with decimal_separator ",", its groups joined and its comma a point;
    a text that is not such a number (1.5 among 1,5) stays unreadable rather than read as another number."""
    if conf.decimal_separator == ".":  # 1,234.56 as spreadsheets write it; 12,50 stays unreadable
        return F.when(text.rlike(GROUPED_POINT_NUMBER), F.regexp_replace(text, ",", "")).otherwise(text)
    return F.when(text.rlike(DECIMAL_COMMA_NUMBER), F.translate(F.regexp_replace(text, r"\.", ""), ",", "."))


def timestamp_formats(timestamp_format: str) -> list[str]:
    """The formats a timestamp's text is read with, in turn: the configured one; with seconds, where it stops at
    the minute (an export's seconds on some rows); its date part alone (a spreadsheet writes midnight without its
    time). ISO is the last resort after them."""
    formats = [timestamp_format]
    if timestamp_format.endswith("mm"):
        formats.append(f"{timestamp_format}:ss")
    date_part = re.split(r"[Hhk]", timestamp_format, maxsplit=1)[0].rstrip(" T'")
    if date_part and date_part != timestamp_format:
        formats.append(date_part)
    return formats


def is_finite(number: SparkColumn) -> SparkColumn:
    """Neither NaN nor an infinity (a double column's value)."""
    return ~F.isnan(number) & (F.abs(number) != F.lit(float("inf")))


def _has_value(src: SparkColumn, source_type: T.DataType) -> SparkColumn:
    """The source holds a value: not null and, for text, not blank (blank counts as missing)."""
    if isinstance(source_type, T.StringType):
        return F.trim(src) != ""
    return src.isNotNull()  # typed values need no text round trip


def conform(df: DataFrame, contract: TableContract, conf: InputConf, pii_columns: tuple[str, ...]) -> DataFrame:
    """Drop PII, rename to contract names, parse types; keep the source row and parse failures.

    Output: the contract columns present in the source, `_source` (the source row's contract columns as a
    struct: an allow-list, so no other column, PII or not, ever reaches rejected_records) and
    `_unparseable` (the first contract column whose value could not be read, else null), and `_malformed`
    (the raw line of a CSV row whose field count does not match its header, else null); `_basket` when
    inputs.transactions.basket names one (its column and the multiplied ones are in `_source` too).
    """
    check_schema(df, contract, conf)
    sources = kept_sources(df, contract, conf, pii_columns)
    types = {f.name: f.dataType for f in df.schema.fields}
    parsed = []
    failures = []
    extra_sources: dict[str, str] = {}  # kept in the record beside the contract's columns
    for column in contract.columns:
        if column.name not in sources:
            continue
        src = F.col(f"`{sources[column.name]}`")
        value = _parse(src, types[sources[column.name]], column, conf)
        has_value = _has_value(src, types[sources[column.name]])
        if column.allowed is not None:
            value = listed_value(value, conf.values.get(column.name, {}))
        if factor := factor_column(df, conf, column.name):  # a price missing or unreadable: the amount is too
            value = value * _parse(F.col(f"`{factor}`"), types[factor], column, conf)
            extra_sources[f"{column.name} factor"] = factor
        parsed.append(value.alias(column.name))
        failures.append(F.when(has_value & value.isNull(), F.lit(column.name)))
    basket = []
    if conf.basket:
        basket_src = named_column(df, conf.basket)
        extra_sources["basket"] = basket_src
        basket = [_parse(F.col(f"`{basket_src}`"), types[basket_src], Column(BASKET, "string", False), conf)
                  .alias(BASKET)]
    source = source_struct({**sources, **extra_sources})
    unparseable = F.coalesce(*failures, F.lit(None).cast("string")) if failures else F.lit(None).cast("string")
    malformed = F.col(CORRUPT_RECORD) if CORRUPT_RECORD in df.columns else F.lit(None).cast("string")
    taken_in = F.col(TAKEN_IN) if TAKEN_IN in df.columns else F.lit(None).cast("string")
    return df.select(*parsed, *basket, source.alias(SOURCE), unparseable.alias("_unparseable"),
                     malformed.alias("_malformed"), taken_in.alias("_taken_in"))


def kept_sources(df: DataFrame, contract: TableContract, conf: InputConf, pii_columns: tuple[str, ...]
                 ) -> dict[str, str]:
    """contract name -> source column, PII columns left out."""
    pii = {normalised(name) for name in pii_columns}
    return {name: src for name, src in source_columns(df, contract, conf).items() if normalised(src) not in pii}


def source_struct(sources: dict[str, str]) -> SparkColumn:
    return F.struct([F.col(f"`{src}`").alias(src.strip()) for src in sources.values()])


def record_json() -> SparkColumn:
    """The source row as JSON (PII already dropped): what rejected_records keeps of a bad row."""
    return F.to_json(F.col(SOURCE))


def _first_reason(rules: list[tuple[SparkColumn, str, SparkColumn]]) -> tuple[SparkColumn, SparkColumn]:
    """Turn ordered (broken?, reason, detail) rules into the first reason and its detail."""
    reason = F.lit(None).cast("string")
    detail = F.lit(None).cast("string")
    for is_broken, code, what in reversed(rules):
        reason = F.when(is_broken, F.lit(code)).otherwise(reason)
        detail = F.when(is_broken, what).otherwise(detail)
    return reason, detail


def row_rules(contract: TableContract, columns: list[str]) -> list[tuple[SparkColumn, str, SparkColumn]]:
    """Row-level rules in priority order, from the contract's column declarations, for the columns present."""
    rules: list[tuple[SparkColumn, str, SparkColumn]] = [
        (F.col("_malformed").isNotNull(), "malformed_record",
         F.coalesce(F.col("_taken_in"), F.lit("field count differs from the header"))),
        (F.col("_unparseable").isNotNull(), "unparseable_value", F.col("_unparseable")),
    ]
    for name in contract.required:
        rules.append((F.col(name).isNull(), "missing_required_value", F.lit(name)))
    present = [c for c in contract.columns if c.name in columns]
    for column in present:
        if column.value_range is not None:
            rules.append((~_in_range(F.col(column.name), column.value_range), "out_of_range", F.lit(column.name)))
    for column in present:
        if column.not_before is not None and column.not_before in columns:
            rules.append((F.col(column.name) < F.col(column.not_before), "out_of_range", F.lit(column.name)))
    for column in present:
        if column.allowed is not None:
            is_listed = F.lower(F.col(column.name)).isin(*column.allowed)
            rules.append((~is_listed, "invalid_value", F.lit(column.name)))
    for column in present:
        if column.type == "double":
            rules.append((F.abs(F.col(column.name)) > MAX_ABS_NUMBER, "out_of_range", F.lit(column.name)))
    for column in present:
        if column.nonzero:
            rules.append((F.col(column.name) == 0, "zero_amount", F.lit(column.name)))
    return rules


def _in_range(value: SparkColumn, bounds: tuple[float | None, float | None]) -> SparkColumn:
    low, high = bounds
    inside = F.lit(True)
    if low is not None:
        inside = inside & (value >= low)
    if high is not None:
        inside = inside & (value <= high)
    return inside


def with_row_rules(conformed_df: DataFrame, contract: TableContract) -> DataFrame:
    """Add `_reason` / `_detail` from the row rules (null when the row passes them); listed values lower-cased."""
    reason, detail = _first_reason(row_rules(contract, conformed_df.columns))
    checked_df = (conformed_df.withColumn(REASON, reason).withColumn(DETAIL, detail)
                  .drop("_unparseable", "_malformed", "_taken_in"))
    for column in contract.columns:
        if column.allowed is not None and column.name in checked_df.columns:
            checked_df = checked_df.withColumn(column.name, F.lower(F.col(column.name)))
    return checked_df


def key_hash(contract: TableContract) -> SparkColumn:
    return F.xxhash64(*contract.key)


def duplicate_keys(checked_df: DataFrame, contract: TableContract) -> DataFrame:
    """Hashes of keys held by more than one row: a superset of the keys shared by rows that pass the
    row rules, which `with_duplicate_check` then compares exactly.

    Only a 64-bit hash of the key is shuffled and counted, which is cheaper than the key itself. A hash
    collision, or a key shared with a row that breaks a rule, only sends a few more rows to the exact
    comparison. Counting every row with a key needs only the key columns read, not the row rules.
    Counted with a window over the sorted hashes, not a grouped count: nearly every key is unique, so a
    map-side partial count saves nothing and its hash map costs more than the sort (benchmarks/README.md).
    """
    has_key = reduce(lambda a, b: a & b, [F.col(k).isNotNull() for k in contract.key])
    hashes_df = checked_df.filter(has_key).select(key_hash(contract).alias(KEY_HASH))
    rows_per_hash = F.count(F.lit(1)).over(Window.partitionBy(KEY_HASH))
    return hashes_df.withColumn("_rows", rows_per_hash).filter(F.col("_rows") > 1).select(KEY_HASH).distinct()


def _joinable(keys_df: DataFrame, broadcast: bool) -> DataFrame:
    """Broadcast a key set the caller knows is small: the large side is then joined where it lies, unshuffled."""
    return F.broadcast(keys_df) if broadcast else keys_df


def with_duplicate_check(checked_df: DataFrame, contract: TableContract, dup_keys_df: DataFrame,
                         broadcast: bool) -> tuple[DataFrame, DataFrame]:
    """Split rows into (those whose key no other passing row holds, unchanged; those sharing a key, ranked),
    given `dup_keys_df` = `duplicate_keys` of the same rows. The union of both is the table.

    Among rows that share a key and pass the row rules, the first by the source row's JSON wins and the
    others get `duplicate_key`: deterministic whatever the partitioning.
    """
    flagged_df = dup_keys_df.withColumn("_shared", F.lit(True))
    marked_df = (checked_df.withColumn(KEY_HASH, key_hash(contract))
                 .join(_joinable(flagged_df, broadcast), on=KEY_HASH, how="left").drop(KEY_HASH))
    unique_df = marked_df.filter(F.col("_shared").isNull()).drop("_shared")
    shared_df = with_duplicates_ranked(marked_df.filter(F.col("_shared").isNotNull()).drop("_shared"), contract)
    return unique_df, shared_df


def with_duplicates_ranked(checked_df: DataFrame, contract: TableContract) -> DataFrame:
    """Reject as `duplicate_key` every row passing the row rules but the first, by the source row's JSON, among
    those that share its key. On a whole table it is the duplicate check in one pass: a sort of every row by its
    key, which only small tables can afford (`duplicate_keys` and `with_duplicate_check` spare the large ones)."""
    by_key = Window.partitionBy(*contract.key, F.col(REASON).isNull()).orderBy(record_json())
    is_duplicate = F.col(REASON).isNull() & (F.row_number().over(by_key) > 1)
    return (
        checked_df
        .withColumn("_is_duplicate", is_duplicate)  # one column, used twice: the window is planned once
        .withColumn(DETAIL, F.when(F.col("_is_duplicate"), F.lit(",".join(contract.key))).otherwise(F.col(DETAIL)))
        .withColumn(REASON, F.when(F.col("_is_duplicate"), F.lit("duplicate_key")).otherwise(F.col(REASON)))
        .drop("_is_duplicate")
    )


def with_one_row_per_customer(checked_df: DataFrame, as_of: dt.date) -> DataFrame:
    """Reduce a customers table given as a row per transaction to one row per customer: the rows passing the row
    rules merge into one with the earliest signup_date (the first transaction's date, where it stands in for a
    signup) and the other attributes of the latest row before the as-of date (point-in-time: a row after it is
    not yet known), the first by the source row's JSON among rows of one date. `_merged` counts the rows each
    kept row stands for beyond itself, for the reconciliation; rows breaking a rule are left as they are."""
    passing = F.col(REASON).isNull()
    by_customer = Window.partitionBy("customer_id", passing)
    latest_first = by_customer.orderBy(*latest_known_first(F.col("signup_date"), as_of), record_json())
    ranked_df = (checked_df.withColumn("_rank", F.row_number().over(latest_first))
                 .withColumn("_first_signup", F.min("signup_date").over(by_customer))
                 .withColumn("_rows", F.count(F.lit(1)).over(by_customer)))
    return (ranked_df.filter(~passing | (F.col("_rank") == 1))
            .withColumn("signup_date", F.when(passing, F.col("_first_signup")).otherwise(F.col("signup_date")))
            .withColumn(MERGED, F.when(passing, F.col("_rows") - 1).otherwise(F.lit(0)).cast("long"))
            .drop("_rank", "_first_signup", "_rows"))


def latest_known_first(signup_date: SparkColumn, as_of: dt.date) -> list[SparkColumn]:
    """A customer's rows in the order its attributes are taken from: the latest before the as-of date first."""
    return [(signup_date < F.lit(as_of)).desc(), signup_date.desc()]


def one_source_row_per_customer(df: DataFrame, conf: InputConf, pii_columns: tuple[str, ...],
                                as_of: dt.date) -> DataFrame:
    """A customers table given as a row per transaction, as read (every column), reduced to the row of each
    customer that `with_one_row_per_customer` takes the attributes from: for the attributes validation leaves
    out (the fairness audit's, the segments' descriptions). A row that breaks a rule is not set aside here."""
    sources = source_columns(df, CUSTOMERS, conf)
    types = {f.name: f.dataType for f in df.schema.fields}
    contract_columns = {c.name: c for c in CUSTOMERS.columns}

    def parsed(name: str) -> SparkColumn:
        return _parse(F.col(f"`{sources[name]}`"), types[sources[name]], contract_columns[name], conf)

    latest_first = Window.partitionBy(parsed("customer_id")).orderBy(
        *latest_known_first(parsed("signup_date"), as_of), F.to_json(source_struct(kept_sources(
            df, CUSTOMERS, conf, pii_columns))))
    return df.withColumn("_rank", F.row_number().over(latest_first)).filter(F.col("_rank") == 1).drop("_rank")


def with_reference_check(checked_df: DataFrame, known_keys_df: DataFrame, key: str, reason: str,
                         broadcast: bool = True) -> DataFrame:
    """Reject rows whose `key` is not in `known_keys_df`, the referenced table's accepted keys (each once)."""
    known_df = _joinable(known_keys_df.select(F.col(key).alias("_known_key")), broadcast)
    joined_df = checked_df.join(known_df, on=checked_df[key] == known_df["_known_key"], how="left")
    is_unknown = F.col(REASON).isNull() & F.col("_known_key").isNull()
    return (
        joined_df
        .withColumn(DETAIL, F.when(is_unknown, F.lit(key)).otherwise(F.col(DETAIL)))
        .withColumn(REASON, F.when(is_unknown, F.lit(reason)).otherwise(F.col(REASON)))
        .drop("_known_key")
    )


def accepted(checked_df: DataFrame, contract: TableContract) -> DataFrame:
    """Rows that passed every rule, with the contract columns present (optional ones null if absent)."""
    columns = [
        F.col(c.name) if c.name in checked_df.columns else F.lit(None).cast(c.type).alias(c.name)
        for c in contract.columns
    ]
    basket = [BASKET] if BASKET in checked_df.columns else []
    return checked_df.filter(F.col(REASON).isNull()).select(*columns, *basket)


def baskets(lines_df: DataFrame) -> DataFrame:
    """Accepted transaction lines (with `_basket`) as one transaction per customer and basket: its id is the
    basket's, its time the first line's, its amount the lines' sum (a cancelled basket is a refund), its category
    and channel those of its largest line (the last category by name among lines of equal amounts). A line without
    a basket stays a transaction of its own."""
    largest_first = F.struct(F.col("amount"), F.col("category"), F.col("channel"))
    return (lines_df
            .withColumn(BASKET, F.coalesce(F.col(BASKET), F.concat(F.lit("line "), F.col("transaction_id"))))
            .groupBy("customer_id", BASKET)
            .agg(F.min("transaction_ts").alias("transaction_ts"), F.sum("amount").alias("amount"),
                 F.max(largest_first).alias("_largest"))
            .select(F.col(BASKET).alias("transaction_id"), "customer_id", "transaction_ts", "amount",
                    F.col("_largest.category").alias("category"), F.col("_largest.channel").alias("channel")))


def rejected(checked_df: DataFrame, table: str, run_id: str, as_of: dt.date) -> DataFrame:
    """Rows that broke a rule: source table, reason code, detail and the source row as JSON."""
    return checked_df.filter(F.col(REASON).isNotNull()).select(
        F.lit(run_id).alias("run_id"),
        F.lit(table).alias("source_table"),
        F.col(REASON).alias("reason"),
        F.col(DETAIL).alias("detail"),
        record_json().alias("record_json"),
        F.lit(as_of).alias("as_of_date"),
    )


def reason_metrics(columns: list[str]) -> list[SparkColumn]:
    """Rows per reason as aggregate columns ("accepted" for rows without one, "merged" for rows merged into an
    accepted one), for an observation: the counts come out of a pass that reads the table anyway, the basis of
    the reconciliation."""
    merged = F.coalesce(F.sum(MERGED), F.lit(0)) if MERGED in columns else F.lit(0)
    return [F.count(F.when(F.col(REASON).isNull(), 1)).alias("accepted"), merged.cast("long").alias("merged"),
            *[F.count(F.when(F.col(REASON) == code, 1)).alias(code) for code in REASON_CODES]]


def reason_counts(metrics: dict[str, int]) -> dict[str | None, int]:
    """The observed `reason_metrics` as {None: accepted, reason: rows}, reasons without rows left out (merged
    rows are counted apart: they are not rejected)."""
    return {None: metrics["accepted"], **{code: metrics[code] for code in REASON_CODES if metrics[code]}}
