"""Small inputs run with the small-input settings (custseg.platform.session.apply_small_input_settings: interpreted
expressions, no adaptive execution); others keep Spark's defaults."""
from __future__ import annotations

import os

import pytest
from py4j.protocol import Py4JJavaError

from custseg.platform.runs import last_job_id
from custseg.platform.session import (
    LOCAL_CHECKPOINTS,
    SHUFFLE_PARTITIONS,
    SMALL_INPUT,
    apply_small_input_settings,
    cache_scope,
    holds_local_checkpoints,
    input_bytes,
    is_small_input,
)
from helpers import make_conf

MB = 1024 * 1024


def files_size(folder) -> int:
    """Bytes of the files under a folder, without the local file system's hidden checksum files."""
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(folder) for name in names
               if not (name.startswith(".") and name.endswith(".crc")))


def test_input_bytes_sums_the_configured_inputs_files_and_counts_a_missing_path_as_zero(spark, tmp_path):
    data = tmp_path / "data"
    spark.range(500).selectExpr("cast(id as string) as customer_id").write.format("delta").save(str(data / "customers"))
    spark.range(2000).selectExpr("id", "id * 2.5 as amount").write.csv(str(data / "transactions"))
    conf = make_conf(data, tmp_path / "out")  # loans, loan_payments and products: no such folder

    assert input_bytes(spark, conf) == files_size(data / "customers") + files_size(data / "transactions") > 0
    table_conf = make_conf(data, tmp_path / "out", ["inputs.customers={format: table, table: bank.customers}"])
    assert input_bytes(spark, table_conf) is None  # a catalog table's size is not known


def test_only_inputs_below_the_threshold_and_without_such_a_setting_of_their_own_are_small(tmp_path):
    conf = make_conf(tmp_path, tmp_path / "out", ["spark.small_input_mb=2"])
    assert is_small_input(conf, 1 * MB) and not is_small_input(conf, 2 * MB) and not is_small_input(conf, None)
    assert not is_small_input(make_conf(tmp_path, tmp_path / "out", ["spark.small_input_mb=0"]), 0)
    for explicit in ("spark.sql.codegen.wholeStage=true", "spark.sql.adaptive.enabled=true"):
        assert not is_small_input(make_conf(tmp_path, tmp_path / "out", [f"spark.conf.{explicit}"]), 0), explicit


def test_a_small_run_gets_the_small_input_settings(spark, tmp_path):
    conf = make_conf(tmp_path / "nothing", tmp_path / "out")
    spark.conf.set("spark.sql.codegen.wholeStage", "true")
    spark.conf.set("spark.sql.adaptive.enabled", "true")
    spark.conf.set(LOCAL_CHECKPOINTS, "false")
    try:
        apply_small_input_settings(spark, conf)
        assert {key: spark.conf.get(key) for key in [*SMALL_INPUT, LOCAL_CHECKPOINTS]} == {
            "spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
            "spark.sql.adaptive.enabled": "false", LOCAL_CHECKPOINTS: "true"}
    finally:
        for key, value in {**SMALL_INPUT, LOCAL_CHECKPOINTS: "true"}.items():  # the test session's own (helpers.py)
            spark.conf.set(key, value)


def test_local_checkpoints_have_a_threshold_of_their_own(tmp_path):
    conf = make_conf(tmp_path, tmp_path / "out", ["spark.small_input_mb=2", "spark.local_checkpoint_mb=8"])
    assert holds_local_checkpoints(conf, 4 * MB) and not is_small_input(conf, 4 * MB)  # held, yet generated code
    assert not holds_local_checkpoints(conf, 8 * MB) and not holds_local_checkpoints(conf, None)
    assert not holds_local_checkpoints(make_conf(tmp_path, tmp_path / "out", ["spark.local_checkpoint_mb=0"]), 0)
    assert not holds_local_checkpoints(make_conf(tmp_path, tmp_path / "out", [f"spark.conf.{LOCAL_CHECKPOINTS}=false"]),
                                       0)


def test_a_small_run_has_at_most_one_shuffle_partition_per_core_unless_spark_conf_sets_them(spark, tmp_path):
    own = spark.conf.get(SHUFFLE_PARTITIONS)
    cores = spark.sparkContext.defaultParallelism
    try:
        apply_small_input_settings(spark, make_conf(tmp_path / "nothing", tmp_path / "out",
                                                    [f"spark.shuffle_partitions={cores * 4}"]))
        assert spark.conf.get(SHUFFLE_PARTITIONS) == str(cores)
        apply_small_input_settings(spark, make_conf(tmp_path / "nothing", tmp_path / "out",
                                                    ["spark.shuffle_partitions=1"]))
        assert spark.conf.get(SHUFFLE_PARTITIONS) == "1"  # fewer than the cores: kept
        spark.conf.set(SHUFFLE_PARTITIONS, str(cores * 4))
        explicit = make_conf(tmp_path / "nothing", tmp_path / "out", [f"spark.conf.{SHUFFLE_PARTITIONS}={cores * 4}"])
        apply_small_input_settings(spark, explicit)
        assert spark.conf.get(SHUFFLE_PARTITIONS) == str(cores * 4)
    finally:
        spark.conf.set(SHUFFLE_PARTITIONS, own)
        for key, value in {**SMALL_INPUT, LOCAL_CHECKPOINTS: "true"}.items():  # the test session's own
            spark.conf.set(key, value)


def plan_root(df) -> str:
    return df._jdf.queryExecution().analyzed().getClass().getSimpleName()


def test_a_cache_persists_what_it_keeps_and_releases_it_when_its_block_ends(spark):
    df = spark.range(100).selectExpr("id", "id % 3 AS r")
    spark.conf.set(LOCAL_CHECKPOINTS, "false")
    try:
        with cache_scope(spark) as keep:
            kept_df = keep(df)
            assert kept_df.is_cached and keep.cut_lineage(df) is df  # nothing cut outside a small run
            assert sorted(kept_df.groupBy("r").count().collect()) == [(0, 34), (1, 33), (2, 33)]
            counted_df, rows = keep.counted(df.filter("r = 0"))
            assert rows == 34 and counted_df.is_cached
        assert not kept_df.is_cached and not counted_df.is_cached
    finally:
        spark.conf.set(LOCAL_CHECKPOINTS, "true")  # the test session's own (tests/helpers.py)


def test_a_small_runs_cache_keeps_local_checkpoints_planned_from_their_rows_and_releases_them(spark):
    df = spark.range(100).selectExpr("id", "id % 3 AS r").filter("id >= 10")
    with cache_scope(spark) as keep:  # the test session has the small-input settings
        kept_df, cut_df = keep(df), keep.cut_lineage(df.filter("r = 0"))
        assert plan_root(kept_df) == plan_root(cut_df) == "LogicalRDD" and not kept_df.is_cached
        assert sorted(kept_df.groupBy("r").count().collect()) == [(0, 30), (1, 30), (2, 30)]
        assert cut_df.count() == 30
        before = last_job_id()
        counted_df, rows = keep.counted(df.filter("r = 1"))
        assert rows == 30 and last_job_id() - before == 1  # counted in the checkpoint's own job
        assert plan_root(counted_df) == "LogicalRDD" and sorted(counted_df.collect())[0] == (10, 1)
    with pytest.raises(Py4JJavaError, match="CHECKPOINT_RDD_BLOCK_ID_NOT_FOUND"):
        kept_df.count()  # released: the rows are gone, and reading them fails rather than reading nothing
