"""Inputs that validate row by row but cannot make a sound run stop build_features with the reason: a table mostly
rejected (a wrong mapping or number format), or no customer signed up before the as-of date (a misread date)."""
from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from custseg.flows.build_features import run_build_features
from custseg.platform.storage import delta_exists, read_delta
from custseg.transforms.ingest import RejectedShareError
from helpers import make_conf

NO_LOANS = ["inputs.loans=null", "inputs.loan_payments=null", "inputs.products=null"]


def write_csv(folder, name: str, header: str, rows: list[str]) -> None:
    (folder / name).mkdir(parents=True)
    (folder / name / "part-0.csv").write_text("\n".join([header, *rows]) + "\n")


def test_the_hint_for_unreadable_values_follows_the_columns_type():
    from custseg.flows.build_features import rejection_hint

    assert rejection_hint("customers", "unparseable_value", "signup_date") == (
        "signup_date values not readable as a date: check inputs.customers.date_format (e.g. dd/MM/yyyy); a day "
        "number or an epoch needs turning into a date before this job")
    assert rejection_hint("transactions", "unparseable_value", "transaction_ts").startswith(
        "transaction_ts values not readable as a timestamp: check inputs.transactions.timestamp_format")
    assert rejection_hint("customers", "unparseable_value", "credit_score").startswith(
        "credit_score values not readable as a number")
    assert rejection_hint("customers", "unparseable_value", "region").startswith("values not readable as the contract")
    assert rejection_hint("loans", "invalid_value", "status").startswith("values outside the contract's list")
    assert rejection_hint("customers", "duplicate_key", "customer_id").startswith(
        "customer ids on several rows: customers holds one row per customer")
    assert rejection_hint("transactions", "duplicate_key", "transaction_id").startswith("rows sharing their key")


def test_a_table_mostly_rejected_stops_the_run_with_its_reasons_and_keeps_the_rejected_rows(spark, tmp_path):
    data = tmp_path / "data"
    write_csv(data, "customers", "customer_id,signup_date", ["C1,2024-01-01", "C2,2024-02-01"])
    write_csv(data, "transactions", "transaction_id,customer_id,transaction_ts,amount",
              ["T1,C1,2025-06-01 10:00:00,12.50", "T2,C1,2025-06-02 10:00:00,12.50 EUR",
               "T3,C2,2025-06-03 10:00:00,7.00 EUR", "T4,C2,2025-06-04 10:00:00,3.10 EUR"])
    conf = make_conf(data, tmp_path / "out", [*NO_LOANS, "inputs.customers.format=csv",
                                              "inputs.transactions.format=csv"])

    with pytest.raises(RejectedShareError) as raised:
        run_build_features(spark, conf)

    assert str(raised.value).startswith(
        "input table 'transactions': 3 of 4 rows rejected (75.0%), more than inputs.transactions.max_rejected_share "
        "(50%); most: unparseable_value in amount 3. Amount values not readable as a number: check the number "
        "format")
    run = read_delta(spark, conf.table_path("runs")).filter("job = 'build_features'").collect()
    assert [(r["status"], r["error"].split(":")[0]) for r in run] == [("failed", "RejectedShareError")]
    rejected = read_delta(spark, conf.table_path("rejected_records")).filter(F.col("run_id") == run[0]["run_id"])
    assert sorted((r["source_table"], r["reason"], r["detail"]) for r in rejected.collect()) == [
        ("transactions", "unparseable_value", "amount")] * 3
    assert not delta_exists(spark, conf.table_path("customer_features"))

    # The same table passes when the user says a larger share may be rejected.
    record = run_build_features(spark, make_conf(data, tmp_path / "out", [
        *NO_LOANS, "inputs.customers.format=csv", "inputs.transactions.format=csv",
        "inputs.transactions.max_rejected_share=0.8"]))
    assert record.counts["inputs"]["transactions"]["accepted"] == 1


def test_no_customer_signed_up_before_the_as_of_date_stops_the_run_naming_the_dates_read(spark, tmp_path):
    data = tmp_path / "data"
    # Two-digit years as some bank exports write them, and after the as-of date (2026-01-01).
    write_csv(data, "customers", "customer_id,signup_date", ["C1,270101", "C2,270215"])
    write_csv(data, "transactions", "transaction_id,customer_id,transaction_ts,amount",
              ["T1,C1,2025-06-01 10:00:00,12.50"])
    conf = make_conf(data, tmp_path / "out", [*NO_LOANS, "inputs.customers.format=csv",
                                              "inputs.customers.date_format=yyMMdd", "inputs.transactions.format=csv"])

    with pytest.raises(ValueError) as raised:
        run_build_features(spark, conf)

    assert str(raised.value) == (
        f"no accepted customer signed up before the as-of date {conf.as_of_date}: 2 accepted, signup dates "
        "2027-01-01 to 2027-02-15; customer_features would be empty. Check as_of_date and "
        "inputs.customers.date_format 'yyMMdd' (two-digit years, yy, are read as 1969-2068)")
    assert not delta_exists(spark, conf.table_path("customer_features"))
