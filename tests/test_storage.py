"""Delta writes per as-of date: idempotent, and two runs for other dates may create a table at once."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from pyspark.sql import functions as F
from pyspark.sql import types as T

from custseg.platform.storage import matches_any, read_delta, with_comments, write_for_date

AS_OF = dt.date(2026, 1, 1)
OVERWRITE_MODE = "spark.sql.sources.partitionOverwriteMode"


def test_comments_replace_a_commented_columns_metadata_and_leave_the_others(spark):
    df = spark.createDataFrame([(1, "a", None)], "id long not null, name string, score double")
    df = df.select("id", F.col("name").alias("name", metadata={"source": "crm"}), "score")
    out = with_comments(df, {"id": "the key", "score": "a score"})
    assert [(f.name, f.dataType, f.nullable, f.metadata) for f in out.schema] == [
        ("id", T.LongType(), False, {"comment": "the key"}),
        ("name", T.StringType(), True, {"source": "crm"}),
        ("score", T.DoubleType(), True, {"comment": "a score"}),
    ]
    assert out.collect() == df.collect()


def test_two_dates_written_at_once_to_a_new_table_both_land(spark, tmp_path):
    dates = (dt.date(2026, 1, 1), dt.date(2026, 2, 1))
    for trial in range(3):  # the race is not certain on every try
        path = str(tmp_path / f"table{trial}")
        errors: list[BaseException] = []

        def write(as_of: dt.date, path: str = path, errors: list = errors) -> None:
            try:
                df = spark.createDataFrame([(as_of.isoformat(), as_of)], "value string, as_of_date date")
                write_for_date(df, path, as_of, "values by date")
            except BaseException as err:  # noqa: BLE001 - reported by the assertion below
                errors.append(err)

        threads = [threading.Thread(target=write, args=(as_of,)) for as_of in dates]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        rows = sorted((r["value"], r["as_of_date"]) for r in read_delta(spark, path).collect())
        assert rows == [(d.isoformat(), d) for d in dates]
        assert description(spark, path) == "values by date"


def description(spark, path: str) -> str:
    return spark.sql(f"DESCRIBE DETAIL delta.`{path}`").first()["description"]


def test_a_new_table_is_created_with_its_comment_in_one_commit(spark, tmp_path):
    path = str(tmp_path / "table")
    write_for_date(spark.createDataFrame([("a", AS_OF)], "value string, as_of_date date"), path, AS_OF, "it's new")
    history = spark.sql(f"DESCRIBE HISTORY delta.`{path}`").collect()
    assert [r["operation"] for r in history] == ["CREATE TABLE AS SELECT"]
    assert description(spark, path) == "it's new" and read_delta(spark, path).collect()[0]["value"] == "a"


def test_a_column_the_first_write_filled_may_be_null_on_a_later_date(spark, tmp_path):
    path, later = str(tmp_path / "table"), dt.date(2026, 2, 1)
    first_df = spark.range(1).selectExpr("id", "'x' as value", f"date'{AS_OF}' as as_of_date")  # not nullable
    write_for_date(first_df, path, AS_OF, "created from non-null columns")
    write_for_date(spark.createDataFrame([(None, None, later)], "id long, value string, as_of_date date"), path,
                   later, "created from non-null columns")
    rows = read_delta(spark, path).orderBy("as_of_date").collect()
    assert [(r["id"], r["value"]) for r in rows] == [(0, "x"), (None, None)]


def test_files_a_killed_first_write_left_do_not_stop_the_next_write(spark, tmp_path):
    path = str(tmp_path / "table")
    # The data files of a first write killed before its commit: a folder with Parquet files and no Delta log.
    spark.createDataFrame([("lost",)], "value string").write.parquet(f"{path}/as_of_date={AS_OF}")
    write_for_date(spark.createDataFrame([("kept", AS_OF)], "value string, as_of_date date"), path, AS_OF, "again")
    assert [r["value"] for r in read_delta(spark, path).collect()] == ["kept"]
    assert description(spark, path) == "again"


@pytest.mark.parametrize("comment", [None, "values by date"])
def test_a_table_another_run_created_after_the_check_keeps_that_runs_rows(spark, tmp_path, monkeypatch, comment):
    from custseg.platform import storage

    path, later = str(tmp_path / "table"), dt.date(2026, 2, 1)
    write_for_date(spark.createDataFrame([("other run", AS_OF)], "value string, as_of_date date"), path, AS_OF)
    answers = iter([False])  # the first check ran before the other run's commit
    real_check = storage.delta_exists
    monkeypatch.setattr(storage, "delta_exists", lambda spark, path: next(answers, real_check(spark, path)))
    spark.conf.set(OVERWRITE_MODE, "static")  # as a user's spark.conf may set it: not what the write relies on
    try:
        write_for_date(spark.createDataFrame([("this run", later)], "value string, as_of_date date"), path, later,
                       comment)
    finally:
        spark.conf.set(OVERWRITE_MODE, "dynamic")  # the session's own (custseg.platform.session.BASE_CONF)
    rows = sorted((r["value"], r["as_of_date"]) for r in read_delta(spark, path).collect())
    assert rows == [("other run", AS_OF), ("this run", later)]


def test_writing_a_date_again_replaces_only_that_date(spark, tmp_path):
    path = str(tmp_path / "table")
    first, second = dt.date(2026, 1, 1), dt.date(2026, 2, 1)
    for as_of, value in ((first, "a"), (second, "b"), (first, "c")):
        write_for_date(spark.createDataFrame([(value, as_of)], "value string, as_of_date date"), path, as_of)
    assert sorted((r["value"], r["as_of_date"]) for r in read_delta(spark, path).collect()) == [
        ("b", second), ("c", first)]


def test_a_saved_model_replaces_the_old_one_whole_and_leaves_no_partial_folder(spark, tmp_path):
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import SQLTransformer

    from custseg.platform.storage import PARTIAL_SUFFIX, save_model

    uri = f"file://{tmp_path}/models/run 1"  # a URI with a space, as object-store keys may have
    (tmp_path / "models" / f"run 1{PARTIAL_SUFFIX}").mkdir(parents=True)  # a crashed save's leftovers
    for statement in ("SELECT *, 1 AS v FROM __THIS__", "SELECT *, 2 AS v FROM __THIS__"):
        save_model(spark, PipelineModel(stages=[SQLTransformer(statement=statement)]), uri)
    loaded = PipelineModel.load(uri)
    assert loaded.transform(spark.range(1)).first()["v"] == 2
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["run 1"]


def test_a_newer_release_may_add_a_column_to_an_existing_output(spark, tmp_path):
    path = str(tmp_path / "table")
    first, second = dt.date(2026, 1, 1), dt.date(2026, 2, 1)
    write_for_date(spark.createDataFrame([("a", first)], "value string, as_of_date date"), path, first)
    write_for_date(spark.createDataFrame([("b", 3, second)], "value string, added int, as_of_date date"), path, second)
    rows = sorted((r["value"], r["added"], r["as_of_date"]) for r in read_delta(spark, path).collect())
    assert rows == [("a", None, first), ("b", 3, second)]


def test_outputs_written_side_by_side_all_land_and_a_failure_is_raised(spark, tmp_path):
    from custseg.contract import outputs
    from custseg.platform.storage import write_outputs

    as_of = dt.date(2026, 1, 1)
    k_df = spark.createDataFrame([(3, True)], "k int, is_chosen boolean")
    lineage_df = spark.createDataFrame([(0, "new")], "segment_id int, status string")
    write_outputs({outputs.K_SELECTION: k_df, outputs.SEGMENT_LINEAGE: lineage_df}, str(tmp_path), "r1", as_of)
    assert [tuple(r) for r in read_delta(spark, str(tmp_path / outputs.K_SELECTION)).collect()] == [
        ("r1", 3, True, as_of)]
    assert [tuple(r) for r in read_delta(spark, str(tmp_path / outputs.SEGMENT_LINEAGE)).collect()] == [
        ("r1", 0, "new", as_of)]
    (tmp_path / "blocked").mkdir()
    (tmp_path / "blocked" / outputs.K_SELECTION).write_text("not a table")  # this write fails, the other lands
    with pytest.raises(Exception):  # noqa: B017 - whichever error Spark gives for a file in the table's place
        write_outputs({outputs.K_SELECTION: k_df, outputs.SEGMENT_LINEAGE: lineage_df}, str(tmp_path / "blocked"),
                      "r2", as_of)
    assert read_delta(spark, str(tmp_path / "blocked" / outputs.SEGMENT_LINEAGE)).count() == 1



def test_a_run_retires_the_dates_rows_of_other_runs_of_its_job(spark, tmp_path):
    from custseg.contract.outputs import FEATURES_TABLE
    from custseg.platform.runs import recorded_run
    from custseg.platform.storage import write_output
    from helpers import make_conf

    as_of = dt.date(2026, 1, 1)
    run_ids = []
    for seed in (1, 2):  # another seed: another run id of the same job and date
        conf = make_conf(tmp_path, tmp_path / "out", [f"as_of_date={as_of}", f"seed={seed}"])
        with recorded_run(spark, conf, "build_features", as_of) as record:
            write_output(spark.createDataFrame([(str(seed),)], "value string"), FEATURES_TABLE, conf.output_path,
                         record.run_id, as_of)
            record.outputs[FEATURES_TABLE] = record.run_id
        run_ids.append(record.run_id)
    rows = read_delta(spark, str(tmp_path / "out" / FEATURES_TABLE)).collect()
    assert [(r["run_id"], r["value"]) for r in rows] == [(run_ids[1], "2")] and run_ids[0] != run_ids[1]


def test_a_run_started_beside_its_work_ends_with_one_row_whatever_its_outcome(spark, tmp_path):
    from custseg.contract.outputs import RUNS_TABLE
    from custseg.platform.runs import recorded_run
    from helpers import make_conf

    as_of = dt.date(2026, 1, 1)
    conf = make_conf(tmp_path, tmp_path / "out", [f"as_of_date={as_of}"])
    runs_path = str(tmp_path / "out" / RUNS_TABLE)
    with pytest.raises(RuntimeError, match="before its first output"):
        with recorded_run(spark, conf, "build_features", as_of, start=False) as record:
            record.start_beside(spark, conf.output_path)
            raise RuntimeError("failed before its first output")  # its started row may still be on its way
    with recorded_run(spark, conf, "train_segments", as_of, start=False) as record:
        record.start_beside(spark, conf.output_path)
        record.recorded()
        while_running = [r["status"] for r in read_delta(spark, runs_path).filter(F.col("job") == "train_segments")
                         .collect()]
    rows = read_delta(spark, runs_path).orderBy("job").collect()
    assert while_running == ["started"]
    assert [(r["job"], r["status"], r["error"]) for r in rows] == [
        ("build_features", "failed", "RuntimeError: failed before its first output"),
        ("train_segments", "succeeded", None)]


def test_only_tables_a_recorded_job_writes_can_hold_other_runs_rows():
    from custseg.contract import outputs
    from custseg.platform.runs import tables_written_by

    assert tables_written_by(set()) == set()
    assert tables_written_by({"build_features"}) == {outputs.FEATURES_TABLE, outputs.REJECTED_TABLE}
    # the assignments are written by training and by scoring
    assert outputs.SEGMENT_ASSIGNMENTS in tables_written_by({"score_customers"}) & tables_written_by({"train_segments"})
    assert outputs.SEGMENT_PROFILES not in tables_written_by({"build_features", "score_customers"})
    assert tables_written_by({"a_job_of_a_later_release"}) == set(outputs.OUTPUT_TABLES)


def test_a_run_appends_only_to_tables_no_earlier_run_of_its_date_could_have_written():
    from custseg.contract import outputs
    from custseg.platform.runs import RunRecord

    def record(earlier: set[tuple[str, str]]) -> RunRecord:
        return RunRecord(run_id="r2", job="train_segments", as_of=dt.date(2026, 1, 1), params={}, earlier_runs=earlier)

    assert record(set()).new_tables == set(outputs.OUTPUT_TABLES)  # the date's first run
    after_build = record({("r1", "build_features")}).new_tables
    assert outputs.SEGMENT_PROFILES in after_build and outputs.FEATURES_TABLE not in after_build
    # a killed attempt of this very run, or a scoring of the date, may have left assignments
    assert outputs.SEGMENT_ASSIGNMENTS not in record({("r2", "train_segments")}).new_tables
    assert outputs.SEGMENT_ASSIGNMENTS not in record({("r0", "score_customers")}).new_tables
    assert outputs.SEGMENT_PROFILES in record({("r0", "score_customers")}).new_tables


def test_an_input_path_or_glob_matches_files_only_where_there_are_some(spark, tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "part-1.csv").write_text("customer_id\nC1\n")
    assert matches_any(spark, str(tmp_path / "in")) and matches_any(spark, f"file://{tmp_path}/in/*.csv")
    assert not matches_any(spark, str(tmp_path / "missing")) and not matches_any(spark, f"{tmp_path}/in/*.parquet")
