"""A reader that is not Spark (delta-rs, the engine behind DuckDB's and Polars' Delta readers and many BI
connectors) sees the same rows, comments and history as Spark in tables written by custseg.io."""
from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from custseg.contract import outputs as tables
from custseg.flows.train_segments import PROFILE_SCHEMA
from custseg.platform.storage import with_comments, write_for_date
from golden import AS_OF, LATER

JAN, FEB = dt.date(2026, 1, 1), dt.date(2026, 2, 1)
RUN_JAN, RUN_FEB = "20260101-aaaaaaaaaa", "20260201-bbbbbbbbbb"
ASSIGNMENT_SCHEMA = "customer_id string, segment_id int, segment_name string, distance_to_centroid double"
ASSIGNMENT_COLUMNS = ["run_id", "customer_id", "segment_id", "segment_name", "distance_to_centroid", "as_of_date"]


def stamped(df: DataFrame, run_id: str, as_of: dt.date) -> DataFrame:
    """The layout segment_flow writes: run_id first, the table's columns, as_of_date last."""
    return df.select(F.lit(run_id).alias("run_id"), "*", F.lit(as_of).alias("as_of_date"))


def write(df: DataFrame, table: str, path: str, as_of: dt.date) -> None:
    write_for_date(with_comments(df, tables.comments_for(table)), path, as_of, tables.TABLE_COMMENTS[table])


def profile_row(segment_id: int, name: str, size: int, share: float, **values) -> tuple:
    row = {"segment_id": segment_id, "segment_name": name, "size": size, "share": share, **values}
    return tuple(row.get(field.name) for field in PROFILE_SCHEMA.fields)


@pytest.fixture(scope="module")
def written(spark, tmp_path_factory):
    out = tmp_path_factory.mktemp("bi_out")
    paths = {t: str(out / t) for t in (tables.SEGMENT_ASSIGNMENTS, tables.SEGMENT_PROFILES)}
    first_jan = spark.createDataFrame([("C1", 0, "Loyal", 0.5), ("C2", 1, "Dormant", 1.25)], ASSIGNMENT_SCHEMA)
    feb = spark.createDataFrame([("C1", 1, "Dormant", 0.75), ("C3", 0, "Loyal", None)], ASSIGNMENT_SCHEMA)
    # Re-running January replaces its rows: a reader that ignored the log's removes would see duplicates.
    second_jan = spark.createDataFrame([("C1", 0, "Loyal", 0.5), ("C2", 0, "Loyal", 2.0), ("C4", 1, None, 0.0)],
                                       ASSIGNMENT_SCHEMA)
    write(stamped(first_jan, RUN_JAN, JAN), tables.SEGMENT_ASSIGNMENTS, paths[tables.SEGMENT_ASSIGNMENTS], JAN)
    write(stamped(feb, RUN_JAN, FEB), tables.SEGMENT_ASSIGNMENTS, paths[tables.SEGMENT_ASSIGNMENTS], FEB)
    before_rerun = DeltaTable(paths[tables.SEGMENT_ASSIGNMENTS]).version()
    write(stamped(second_jan, RUN_JAN, JAN), tables.SEGMENT_ASSIGNMENTS, paths[tables.SEGMENT_ASSIGNMENTS], JAN)

    profiles = spark.createDataFrame([
        profile_row(0, "Loyal", 3, 0.6, mean_monetary=1234.5, risk_tier="low", credit_action="pre-approve",
                    max_dpd=0, distinguishing_features="monetary +1.2 sd"),
        profile_row(1, "Dormant", 2, 0.4, mean_monetary=None, risk_tier="medium", max_dpd=None),
    ], PROFILE_SCHEMA)
    write(stamped(profiles, RUN_FEB, FEB), tables.SEGMENT_PROFILES, paths[tables.SEGMENT_PROFILES], FEB)
    return paths, before_rerun


def sorted_rows(rows: list[dict], columns: list[str]) -> list[tuple]:
    return sorted((tuple(r[c] for c in columns) for r in rows), key=repr)


def spark_rows(spark, path: str, version: int | None = None) -> list[dict]:
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    return [r.asDict() for r in reader.load(path).collect()]


def test_delta_rs_reads_the_current_assignments_like_spark(spark, written):
    paths, _ = written
    path = paths[tables.SEGMENT_ASSIGNMENTS]
    delta_rs = DeltaTable(path).to_pyarrow_table().to_pylist()
    expected = [
        (RUN_JAN, "C1", 0, "Loyal", 0.5, JAN), (RUN_JAN, "C2", 0, "Loyal", 2.0, JAN),
        (RUN_JAN, "C4", 1, None, 0.0, JAN),
        (RUN_JAN, "C1", 1, "Dormant", 0.75, FEB), (RUN_JAN, "C3", 0, "Loyal", None, FEB),
    ]
    assert sorted_rows(delta_rs, ASSIGNMENT_COLUMNS) == sorted(expected, key=repr)
    assert sorted_rows(spark_rows(spark, path), ASSIGNMENT_COLUMNS) == sorted(expected, key=repr)


def test_delta_rs_reads_the_profiles_like_spark(spark, written):
    paths, _ = written
    path = paths[tables.SEGMENT_PROFILES]
    table = DeltaTable(path).to_pyarrow_table()
    columns = ["run_id", *PROFILE_SCHEMA.fieldNames(), "as_of_date"]
    assert table.column_names == columns
    delta_rs = table.to_pylist()
    assert sorted_rows(delta_rs, columns) == sorted_rows(spark_rows(spark, path), columns)
    by_segment = {r["segment_id"]: r for r in delta_rs}
    assert by_segment[0]["mean_monetary"] == 1234.5 and by_segment[0]["max_dpd"] == 0
    assert by_segment[1]["mean_monetary"] is None and by_segment[1]["risk_tier"] == "medium"
    assert {r["as_of_date"] for r in delta_rs} == {FEB}


def test_delta_rs_sees_the_column_and_table_comments(written):
    paths, _ = written
    for table in (tables.SEGMENT_ASSIGNMENTS, tables.SEGMENT_PROFILES):
        delta_table = DeltaTable(paths[table])
        comments = {f.name: f.metadata.get("comment") for f in delta_table.schema().fields}
        assert comments["segment_name"] == tables.COMMON["segment_name"]
        assert comments["as_of_date"] == tables.COMMON["as_of_date"]
        assert delta_table.metadata().description == tables.TABLE_COMMENTS[table]
        assert delta_table.metadata().partition_columns == ["as_of_date"]
    profile_comments = {f.name: f.metadata.get("comment")
                        for f in DeltaTable(paths[tables.SEGMENT_PROFILES]).schema().fields}
    assert profile_comments["risk_tier"] == tables.COLUMN_COMMENTS[tables.SEGMENT_PROFILES]["risk_tier"]


def test_delta_rs_time_travel_matches_spark_version_as_of(spark, written):
    paths, before_rerun = written
    path = paths[tables.SEGMENT_ASSIGNMENTS]
    delta_rs = DeltaTable(path, version=before_rerun).to_pyarrow_table().to_pylist()
    expected = [
        (RUN_JAN, "C1", 0, "Loyal", 0.5, JAN), (RUN_JAN, "C2", 1, "Dormant", 1.25, JAN),
        (RUN_JAN, "C1", 1, "Dormant", 0.75, FEB), (RUN_JAN, "C3", 0, "Loyal", None, FEB),
    ]
    assert sorted_rows(delta_rs, ASSIGNMENT_COLUMNS) == sorted(expected, key=repr)
    assert sorted_rows(spark_rows(spark, path, before_rerun), ASSIGNMENT_COLUMNS) == sorted(expected, key=repr)


def test_delta_rs_filters_on_the_date_partition(written):
    paths, _ = written
    february = [("as_of_date", "=", "2026-02-01")]
    table = DeltaTable(paths[tables.SEGMENT_ASSIGNMENTS]).to_pyarrow_table(partitions=february)
    assert sorted(table.column("customer_id").to_pylist()) == ["C1", "C3"]


def test_delta_rs_reads_the_golden_runs_assignments_like_spark(spark, golden):
    """A real run's table: two dates, written by the flows (and the training date possibly written again)."""
    path = golden.conf.table_path(tables.SEGMENT_ASSIGNMENTS)
    delta_rs = DeltaTable(path).to_pyarrow_table().to_pylist()
    columns = spark.read.format("delta").load(path).columns
    assert {r["as_of_date"] for r in delta_rs} == {AS_OF, LATER}
    assert len(delta_rs) == golden.train.counts["customers"] + golden.score.counts["customers"]
    assert sorted_rows(delta_rs, columns) == sorted_rows(spark_rows(spark, path), columns)
