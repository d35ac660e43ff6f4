"""Small inputs are evaluated interpreted (custseg.platform.session.choose_evaluation); others keep generated code."""
from __future__ import annotations

import os

from custseg.platform.session import INTERPRETED, choose_evaluation, input_bytes, interpreted
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


def test_only_inputs_below_the_threshold_and_without_a_codegen_setting_are_interpreted(tmp_path):
    conf = make_conf(tmp_path, tmp_path / "out", ["spark.interpreted_below_mb=2"])
    assert interpreted(conf, 1 * MB) and not interpreted(conf, 2 * MB) and not interpreted(conf, None)
    assert not interpreted(make_conf(tmp_path, tmp_path / "out", ["spark.interpreted_below_mb=0"]), 0)
    explicit = make_conf(tmp_path, tmp_path / "out", ["spark.conf.spark.sql.codegen.wholeStage=true"])
    assert not interpreted(explicit, 0)


def test_a_small_run_sets_the_session_to_interpreted(spark, tmp_path):
    conf = make_conf(tmp_path / "nothing", tmp_path / "out")
    spark.conf.set("spark.sql.codegen.wholeStage", "true")
    try:
        choose_evaluation(spark, conf)
        assert {key: spark.conf.get(key) for key in INTERPRETED} == INTERPRETED
    finally:
        for key, value in INTERPRETED.items():  # the test session's own setting (tests/helpers.py)
            spark.conf.set(key, value)
