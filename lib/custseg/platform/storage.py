"""Read input tables and write Delta outputs (idempotent per as_of_date, with comments)."""
from __future__ import annotations

import datetime as dt
import logging
import os
import random
import signal
import time
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from py4j.java_gateway import is_instance_of
from pyspark.ml.util import MLWritable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from custseg.config import InputConf
from custseg.contract import outputs
from custseg.platform.csv_rows import split_rows_taken_into_quotes
from custseg.platform.locations import absolute_location, join_uri

log = logging.getLogger(__name__)

AS_OF_COLUMN = "as_of_date"
CORRUPT_RECORD = "_corrupt_record"  # the raw text of a CSV row that does not fit its header
PARTIAL_SUFFIX = ".partial"  # a model folder being written
WRITE_ATTEMPTS = 5
PARALLEL_ACTIONS = 2  # independent small writes or reads at once: the driver's planning and commits are one core each
T_ = TypeVar("T_")
R_ = TypeVar("R_")
# Delta's errors when another writer created the table between our check and our commit.
CREATION_RACES = ("ProtocolChangedException", "DELTA_PROTOCOL_CHANGED", "MetadataChangedException",
                  "DELTA_METADATA_CHANGED")
# Creating a table where one, or files, already are: found when the create is planned, or, for files another
# writer added since, when it commits.
ALREADY_EXISTS = ("TABLE_OR_VIEW_ALREADY_EXISTS", "DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION")


class InputError(RuntimeError):
    """An input table cannot be used: unreadable, a column missing or of the wrong type."""


def read_input(spark: SparkSession, conf: InputConf) -> DataFrame:
    """Read one input table as the user stores it (their column names, their types).

    CSV is read with every column as a string so that an unparseable value can be rejected
    row by row instead of failing the whole read or turning silently into null; quoted fields may span
    lines, and a row whose field count differs from the header keeps its raw text in CORRUPT_RECORD
    (rejected as malformed, never read with its fields shifted); rows a quote left open took into one value
    are rows again, malformed (csv_rows).
    """
    try:
        if conf.format == "table":
            return spark.table(conf.table)
        if conf.format != "delta" and not matches_any(spark, conf.path):  # Spark would log a Java stack trace first
            raise InputError(f"input table '{conf.name}': cannot read {conf.format} at {conf.path}: no such file "
                             "or folder")
        reader = spark.read.format(conf.format)
        if conf.format == "csv":
            # A quote inside a quoted field is doubled, as RFC 4180, Excel and pandas write it ("12"" ruler").
            reader = (reader.option("header", "true").option("inferSchema", "false").option("multiLine", "true")
                      .option("escape", '"'))
        for key, value in conf.options.items():
            reader = reader.option(key, value)
        df = reader.load(conf.path)
        if conf.format == "csv":
            schema = T.StructType([*[T.StructField(c, T.StringType()) for c in df.columns],
                                   T.StructField(CORRUPT_RECORD, T.StringType())])
            df = (reader.schema(schema).option("mode", "PERMISSIVE")
                  .option("columnNameOfCorruptRecord", CORRUPT_RECORD).load(conf.path))
            if {k.lower(): v for k, v in conf.options.items()}.get("multiline", "true").lower() == "true":
                df = split_rows_taken_into_quotes(df, CORRUPT_RECORD, {"escape": '"', **conf.options})
        df.schema  # noqa: B018 - resolve the schema now so a missing path fails here
        return df
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - re-raised with the table named
        where = conf.table if conf.format == "table" else conf.path
        raise InputError(f"input table '{conf.name}': cannot read {conf.format} at {where}: {err}") from err


def with_comments(df: DataFrame, comments: dict[str, str]) -> DataFrame:
    """Attach column comments (stored in the Delta schema, shown by BI tools): a commented column's metadata is
    its comment, the others keep theirs. One schema for all columns: an alias with metadata costs about
    twenty calls to the JVM a column."""
    return df.to(T.StructType([_commented(field, comments.get(field.name)) for field in df.schema]))


def _commented(field: T.StructField, comment: str | None) -> T.StructField:
    if comment is None:
        return field
    return T.StructField(field.name, field.dataType, field.nullable, {"comment": comment})


def delta_exists(spark: SparkSession, path: str) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(spark, path)


def write_for_date(df: DataFrame, path: str, as_of: dt.date, table_comment: str | None = None,
                   also: dict[str, str] | None = None, replace: bool = True, observed: bool = False) -> None:
    """Replace the rows of one as_of_date (and `also` column values) in a Delta table partitioned by date.

    Re-running a date replaces that date's rows and leaves other dates untouched. Two runs for other
    dates may start at once on a new table: the one that loses the race to create it retries (a few
    times, with jitter) and then replaces only its date. Conflicts on the same date still fail.
    replace=False appends, for a caller that knows the table holds no such rows: the same result, without
    the replaceWhere's search for rows to remove. A new table is created with its comment in the same commit,
    unless `observed`: a create-as-select does not report the metrics of a DataFrame.observe on its rows, so such
    a table is written, then commented.
    """
    if AS_OF_COLUMN not in df.columns:
        raise ValueError(f"cannot write {path}: no {AS_OF_COLUMN} column")
    spark = df.sparkSession
    create = table_comment is not None and not observed  # a new table gets its description in its first commit
    condition = f"{AS_OF_COLUMN} = DATE'{as_of.isoformat()}'"
    for column, value in (also or {}).items():
        condition += f" AND {column} = '{value}'"
    for attempt in range(1, WRITE_ATTEMPTS + 1):
        exists = delta_exists(spark, path)
        # A newer release may add columns: they are added to the table, earlier rows read them as null.
        if exists and not replace:
            writer = df.write.format("delta").mode("append").partitionBy(AS_OF_COLUMN).option("mergeSchema", "true")
        else:  # also for a table not there at the check: one another run creates meanwhile keeps its other rows
            writer = (df.write.format("delta").mode("overwrite").partitionBy(AS_OF_COLUMN)
                      .option("replaceWhere", condition).option("mergeSchema", "true"))
        try:
            if create and not exists:
                (df.writeTo(f"delta.`{absolute_location(path)}`").using("delta").partitionedBy(F.col(AS_OF_COLUMN))
                 .tableProperty("comment", table_comment).create())
                log.info("wrote %s for %s", path, as_of)
                return
            writer.save(path)
            break
        except Exception as err:  # noqa: BLE001 - only a lost race to create the table is retried
            if create and not exists and names_any(err, ALREADY_EXISTS) and attempt < WRITE_ATTEMPTS:
                # Files but no Delta table at the path: a killed first write's, or another run's new table. Look
                # again and write as a table that exists, or as a new one with the comment after it.
                create = False
                continue
            if exists or attempt == WRITE_ATTEMPTS or not names_any(err, CREATION_RACES):
                raise
            log.warning("%s was created by a concurrent run; writing %s again (attempt %d)", path, as_of, attempt + 1)
            time.sleep(random.uniform(0.2, 1.0) * attempt)
    if table_comment and not exists:
        escaped = table_comment.replace("'", "\\'")
        spark.sql(f"ALTER TABLE delta.`{absolute_location(path)}` SET TBLPROPERTIES ('comment' = '{escaped}')")
    log.info("wrote %s for %s", path, as_of)


def names_any(err: Exception, names: tuple[str, ...]) -> bool:
    return any(name in str(err) for name in names)


def read_delta(spark: SparkSession, path: str) -> DataFrame:
    return spark.read.format("delta").load(path)


def stamped(df: DataFrame, run_id: str, as_of: dt.date) -> DataFrame:
    """The run id first and the as-of date last, as every segment output has them."""
    return df.select(F.lit(run_id).alias("run_id"), "*", F.lit(as_of).alias(AS_OF_COLUMN))


def write_output(df: DataFrame, table: str, output_path: str, run_id: str, as_of: dt.date,
                 new_tables: Collection[str] = ()) -> None:
    """Stamp an output with its run and date, attach the table's comments and replace that run's rows of the date
    (append them to a table in new_tables: one known to hold no row of the date, custseg.platform.runs).

    Other runs' rows of the date stay until this run has succeeded (custseg.platform.runs retires them), so a
    reader following the runs table never sees a half-written run.
    """
    write_for_date(with_comments(stamped(df, run_id, as_of), outputs.comments_for(table)),
                   join_uri(output_path, table), as_of, outputs.TABLE_COMMENTS[table], also={"run_id": run_id},
                   replace=table not in new_tables)
    crash_point(table)


def write_outputs(tables: dict[str, DataFrame], output_path: str, run_id: str, as_of: dt.date,
                  new_tables: Collection[str] = ()) -> None:
    """write_output for several independent tables, side by side: a small table's write is mostly planning and a
    Delta commit on the driver, one core each, so two at once use the second core (benchmarks/README.md).
    Every write is waited for; the first failure, in the order given, is raised."""
    in_parallel(lambda item: write_output(item[1], item[0], output_path, run_id, as_of, new_tables),
                list(tables.items()))


def in_parallel(task: Callable[[T_], R_], items: list[T_]) -> list[R_]:
    """task(item) for every item, in PARALLEL_ACTIONS threads (Spark runs jobs from several threads at once); the
    results in the order of the items, the first failure in that order raised."""
    with ThreadPoolExecutor(max_workers=PARALLEL_ACTIONS) as pool:
        futures = [pool.submit(task, item) for item in items]
    return [future.result() for future in futures]


def crash_point(table: str) -> None:
    """Test hook: with CUSTSEG_CRASH_AFTER=<table> the process is killed (SIGKILL) right after writing that table,
    as a lost node or an out-of-memory kill would; the crash tests check what readers then see."""
    if os.environ.get("CUSTSEG_CRASH_AFTER") == table:
        log.warning("CUSTSEG_CRASH_AFTER=%s: killing this process", table)
        os.kill(os.getpid(), signal.SIGKILL)


def path_exists(spark: SparkSession, uri: str) -> bool:
    """Whether a file or folder exists, asked of the Hadoop FileSystem of its URI."""
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)
    return bool(path.getFileSystem(spark._jsc.hadoopConfiguration()).exists(path))


def matches_any(spark: SparkSession, uri: str) -> bool:
    """Whether a path (or a glob such as data/*.csv, as Spark reads them) names at least one file or folder."""
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)
    return bool(path.getFileSystem(spark._jsc.hadoopConfiguration()).globStatus(path))


def write_bytes(spark: SparkSession, uri: str, data: bytes) -> None:
    """Write (or replace) one file through the Hadoop FileSystem of its URI, so object stores and HDFS work too."""
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    if is_instance_of(spark.sparkContext._gateway, fs, "org.apache.hadoop.fs.ChecksumFileSystem"):
        fs = fs.getRawFileSystem()  # local disk: no hidden .crc file beside each file people open
    fs.mkdirs(path.getParent())
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(data))
    finally:
        stream.close()


def save_model(spark: SparkSession, model: MLWritable, uri: str) -> None:
    """Save a fitted model so that `uri` never holds a partial one: written beside it, then moved into place.

    A crash while writing leaves only a temporary folder (removed by the next save); the old model stays
    whole until the new one is complete.
    """
    path = spark._jvm.org.apache.hadoop.fs.Path(uri)
    fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
    partial = spark._jvm.org.apache.hadoop.fs.Path(f"{uri.rstrip('/')}{PARTIAL_SUFFIX}")
    fs.delete(partial, True)  # a crashed save's leftovers
    model.write().save(partial.toString())
    fs.delete(path, True)
    if not fs.rename(partial, path):
        raise OSError(f"could not move the saved model from {partial.toString()} to {uri}")
