"""Validation: one test per rejection reason, schema errors name the column, reconciliation holds."""
from __future__ import annotations

import datetime as dt
import json

import pytest
from chispa import assert_df_equality

from custseg.config import InputConf
from custseg.contract.inputs import CUSTOMERS, LOAN_PAYMENTS, LOANS, TRANSACTIONS
from custseg.platform.session import LOCAL_CHECKPOINTS, cache_scope
from custseg.platform.storage import InputError
from custseg.transforms import validation as V
from custseg.transforms.ingest import ReconciliationError, check_inputs, ingest, reconcile
from helpers import make_conf

AS_OF = dt.date(2026, 1, 1)
PII = ("email", "name")


def csv_conf(name: str, columns: dict[str, str] | None = None) -> InputConf:
    return InputConf(name=name, path="unused", format="csv", columns=columns or {})


def check(df, contract, conf, parents=(), broadcast=True):
    """The steps of custseg.transforms.ingest, on a small table."""
    checked_df = V.with_row_rules(V.conform(df, contract, conf, PII), contract)
    unique_df, shared_df = V.with_duplicate_check(checked_df, contract, V.duplicate_keys(checked_df, contract),
                                                  broadcast)
    checked_df = unique_df.unionByName(shared_df)
    for key, parent_df, reason in parents:
        checked_df = V.with_reference_check(checked_df, parent_df.select(key), key, reason, broadcast)
    return checked_df


def reasons(checked_df, key):
    return checked_df.select(key, V.REASON, V.DETAIL)


TXN_COLUMNS = "transaction_id string, customer_id string, transaction_ts string, amount string, email string"


@pytest.fixture(params=["broadcast", "shuffle"])
def join_kind(request, spark):
    """Run a test with the key sets broadcast (small) and joined by shuffle (too large to broadcast)."""
    if request.param == "broadcast":
        yield True
        return
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        yield False
    finally:
        spark.conf.unset("spark.sql.autoBroadcastJoinThreshold")


TXN_ROWS = [
    ("t1", "C1", "2025-12-01 10:00:00", "12.50", "a@x.com"),  # good
    ("t2", "C1", "not-a-date", "12.50", None),                 # unparseable timestamp
    ("t3", "C1", "2025-12-01 10:00:00", "n/a", None),          # unparseable amount
    ("t4", None, "2025-12-01 10:00:00", "5", None),            # missing customer
    ("t5", "C1", "2025-12-01 10:00:00", "0", None),            # zero amount
    ("t6", "C1", "2025-12-01 10:00:00", "-3", None),           # refund: valid
    ("t6", "C1", "2025-12-02 10:00:00", "-3", None),           # duplicate id: the later JSON loses
    ("t7", "C9", "2025-12-01 10:00:00", "5", None),            # unknown customer
    ("t8", "C1", "  ", "5", None),                             # blank timestamp = missing
    ("t9", "C1", "2025-12-01 10:00:00", "0", None),            # a bad row first by JSON holds the key:
    ("t9", "C1", "2025-12-01 10:00:00", "7", None),            # the only good row with it is kept
]


def test_each_transaction_rejection_reason(spark, join_kind):
    raw_df = spark.createDataFrame(TXN_ROWS, TXN_COLUMNS)
    known_df = spark.createDataFrame([("C1",)], "customer_id string")
    checked_df = check(raw_df, TRANSACTIONS, csv_conf("transactions"),
                       [("customer_id", known_df, "unknown_customer")], broadcast=join_kind)
    expected = spark.createDataFrame([
        ("t1", None, None),
        ("t2", "unparseable_value", "transaction_ts"),
        ("t3", "unparseable_value", "amount"),
        ("t4", "missing_required_value", "customer_id"),
        ("t5", "zero_amount", "amount"),
        ("t6", None, None),
        ("t6", "duplicate_key", "transaction_id"),
        ("t7", "unknown_customer", "customer_id"),
        ("t8", "missing_required_value", "transaction_ts"),
        ("t9", "zero_amount", "amount"),
        ("t9", None, None),
    ], "transaction_id string, _reason string, _detail string")
    assert_df_equality(reasons(checked_df, "transaction_id"), expected, ignore_row_order=True,
                       ignore_nullable=True)
    kept = checked_df.filter("transaction_id = 't6' AND _reason IS NULL").collect()[0]
    assert kept["transaction_ts"] == dt.datetime(2025, 12, 1, 10)


def test_a_key_hash_shared_by_chance_rejects_nothing(spark):
    """duplicate_keys works on key hashes; a collision sends rows to the exact comparison, which keeps them."""
    raw_df = spark.createDataFrame([("t1", "C1", "2025-12-01 10:00:00", "5", None),
                                    ("t2", "C1", "2025-12-01 10:00:00", "5", None),
                                    ("t2", "C1", "2025-12-02 10:00:00", "5", None)], TXN_COLUMNS)
    checked_df = V.with_row_rules(V.conform(raw_df, TRANSACTIONS, csv_conf("transactions"), PII), TRANSACTIONS)
    collided_df = checked_df.filter("transaction_id = 't1'").select(V.key_hash(TRANSACTIONS).alias(V.KEY_HASH))
    all_hashes_df = V.duplicate_keys(checked_df, TRANSACTIONS).unionByName(collided_df)
    unique_df, shared_df = V.with_duplicate_check(checked_df, TRANSACTIONS, all_hashes_df, broadcast=True)
    assert unique_df.count() == 0
    assert sorted((r["transaction_id"], r[V.REASON] or "") for r in shared_df.collect()) == [
        ("t1", ""), ("t2", ""), ("t2", "duplicate_key")]


def test_a_small_tables_one_pass_duplicate_check_rejects_the_same_rows(spark):
    """A run on small inputs ranks every row by key in one pass (custseg.transforms.ingest): the same reasons
    as the key hashes' path, the later JSON of t6 rejected and t9's only good row kept."""
    raw_df = spark.createDataFrame(TXN_ROWS, TXN_COLUMNS)
    conf = csv_conf("transactions")
    checked_df = V.with_row_rules(V.conform(raw_df, TRANSACTIONS, conf, PII), TRANSACTIONS)
    one_pass_df = V.with_duplicates_ranked(checked_df, TRANSACTIONS)
    assert_df_equality(reasons(one_pass_df, "transaction_id"), reasons(check(raw_df, TRANSACTIONS, conf),
                                                                       "transaction_id"),
                       ignore_row_order=True, ignore_nullable=True)
    assert sorted(r["transaction_ts"].day for r in one_pass_df.filter("transaction_id = 't6'").collect()
                  if r[V.REASON] is None) == [1]


def test_customer_rules_and_pii_never_in_record(spark):
    raw_df = spark.createDataFrame([
        ("C1", "2020-01-01", "50000", "700", "Ann", "ann@x.com"),
        ("C2", "2020-01-01", "50000", "900", "Bob", "bob@x.com"),   # credit score out of range
        ("C3", "2020-01-01", "-1", "700", "Cy", "cy@x.com"),        # negative income
        ("C4", None, "50000", "700", "Di", "di@x.com"),             # missing signup date
        ("C5", "2020-01-01", None, None, None, None),              # optional values null: fine
    ], "cust string, joined string, income string, score string, name string, email string")
    conf = csv_conf("customers", {"customer_id": "cust", "signup_date": "joined", "annual_income": "income",
                                  "credit_score": "score"})
    checked_df = check(raw_df, CUSTOMERS, conf)
    expected = spark.createDataFrame([
        ("C1", None, None),
        ("C2", "out_of_range", "credit_score"),
        ("C3", "out_of_range", "annual_income"),
        ("C4", "missing_required_value", "signup_date"),
        ("C5", None, None),
    ], "customer_id string, _reason string, _detail string")
    assert_df_equality(reasons(checked_df, "customer_id"), expected, ignore_row_order=True, ignore_nullable=True)
    records = [json.loads(r["record"]) for r in checked_df.select(V.record_json().alias("record")).collect()]
    assert all("name" not in rec and "email" not in rec for rec in records)
    assert {rec["cust"] for rec in records} == {"C1", "C2", "C3", "C4", "C5"}


def test_loan_status_and_unknown_loan(spark):
    loans_df = spark.createDataFrame([
        ("L1", "C1", dt.date(2025, 1, 1), 1000.0, "Current"),
        ("L2", "C1", dt.date(2025, 1, 1), 1000.0, "frozen"),   # not a contract status
    ], "loan_id string, customer_id string, origination_date date, principal double, status string")
    checked_loans_df = check(loans_df, LOANS, InputConf("loans", "unused", "delta"))
    expected_loans = spark.createDataFrame([("L1", None, None), ("L2", "invalid_value", "status")],
                                           "loan_id string, _reason string, _detail string")
    assert_df_equality(reasons(checked_loans_df, "loan_id"), expected_loans, ignore_row_order=True,
                       ignore_nullable=True)
    assert V.accepted(checked_loans_df, LOANS).collect()[0]["status"] == "current"

    # Another lender's spellings: separators as underscores, the configured mapping, anything else rejected.
    lender_df = spark.createDataFrame([
        (f"M{i}", "C1", dt.date(2025, 1, 1), 1000.0, status) for i, status in enumerate(
            ["Charged Off", " paid-off ", "Fully Paid", "LATE (31-120 days)", "In Grace Period", "Closed"])],
        "loan_id string, customer_id string, origination_date date, principal double, status string")
    mapping = {"fully paid": "paid_off", "Late (31-120 days)": "late", "In Grace Period": "Late"}
    checked_lender_df = check(lender_df, LOANS, InputConf("loans", "unused", "delta", values={"status": mapping}))
    assert sorted((r["loan_id"], r["status"], r[V.REASON]) for r in checked_lender_df.collect()) == [
        ("M0", "charged_off", None), ("M1", "paid_off", None), ("M2", "paid_off", None), ("M3", "late", None),
        ("M4", "late", None), ("M5", "closed", "invalid_value")]
    assert json.loads(V.rejected(checked_lender_df, "loans", "run-1", AS_OF).collect()[0]["record_json"])[
        "status"] == "Closed"  # as the table holds it

    payments_df = spark.createDataFrame([
        ("L1", "C1", dt.date(2025, 2, 1), 100.0),
        ("L2", "C1", dt.date(2025, 2, 1), 100.0),  # its loan was rejected
        ("L1", "C1", None, 100.0),                 # missing due date
    ], "loan_id string, customer_id string, due_date date, amount_due double")
    accepted_loans_df = V.accepted(checked_loans_df, LOANS)
    checked_df = check(payments_df, LOAN_PAYMENTS, InputConf("loan_payments", "unused", "delta"),
                       [("loan_id", accepted_loans_df, "unknown_loan")])
    expected = spark.createDataFrame([
        ("L1", dt.date(2025, 2, 1), None),
        ("L2", dt.date(2025, 2, 1), "unknown_loan"),
        ("L1", None, "missing_required_value"),
    ], "loan_id string, due_date date, _reason string")
    assert_df_equality(checked_df.select("loan_id", "due_date", V.REASON), expected, ignore_row_order=True,
                       ignore_nullable=True)


def test_missing_required_column_names_table_and_column(spark):
    raw_df = spark.createDataFrame([("t1", "C1", "5")], "transaction_id string, customer_id string, amount string")
    with pytest.raises(InputError, match=r"'transactions'.*'transaction_ts'"):
        V.check_schema(raw_df, TRANSACTIONS, csv_conf("transactions"))


def test_mapped_column_missing_names_the_source_column(spark):
    raw_df = spark.createDataFrame([("C1", "2020-01-01")], "id string, signup_date string")
    conf = csv_conf("customers", {"customer_id": "cust_no"})
    with pytest.raises(InputError, match=r"'customers'.*'customer_id'.*'cust_no'"):
        V.check_schema(raw_df, CUSTOMERS, conf)


def test_wrong_column_type_is_refused(spark):
    raw_df = spark.createDataFrame([("t1", "C1", True, 5.0)],
                                   "transaction_id string, customer_id string, transaction_ts boolean, amount double")
    with pytest.raises(InputError, match=r"'transactions'.*'transaction_ts'.*boolean"):
        V.check_schema(raw_df, TRANSACTIONS, InputConf("transactions", "unused", "parquet"))


def test_rejected_rows_carry_table_reason_and_json(spark):
    raw_df = spark.createDataFrame([("t1", "C1", "2025-12-01 10:00:00", "0", "x@y.z")], TXN_COLUMNS)
    checked_df = check(raw_df, TRANSACTIONS, csv_conf("transactions"))
    row = V.rejected(checked_df, "transactions", "run-1", AS_OF).collect()[0]
    assert (row["run_id"], row["source_table"], row["reason"], row["detail"], row["as_of_date"]) == (
        "run-1", "transactions", "zero_amount", "amount", AS_OF)
    assert json.loads(row["record_json"]) == {"transaction_id": "t1", "customer_id": "C1",
                                              "transaction_ts": "2025-12-01 10:00:00", "amount": "0"}


def test_reconcile_counts_and_refuses_a_lost_row():
    counts = reconcile("transactions", 10, {None: 7, "zero_amount": 2, "duplicate_key": 1})
    assert counts == {"read": 10, "accepted": 7, "rejected": 3, "rejected_duplicate_key": 1,
                      "rejected_zero_amount": 2}
    with pytest.raises(ReconciliationError, match="transactions.*read 10.*accepted 7.*rejected 2"):
        reconcile("transactions", 10, {None: 7, "zero_amount": 2})


FAULTY_CSV = (
    "transaction_id,customer_id,transaction_ts,amount,category,channel\n"
    "T1,C1,2025-01-01 10:00:00,12.50,food,online\n"
    "T2,C1,2025-01-02 10:00:00,12,50,food,online\n"      # an unquoted comma: one field too many
    'T3,C1,2025-01-03 10:00:00,"7.0",food,"mob\nile"\n'  # a quoted field holding a newline: one valid row
    "T4,C1,2025-01-04 10:00:00,NaN,food,pos\n"
    "T5,C1,2025-01-04 10:00:00,-Infinity,food,pos\n"
    "T6,C1,2025-01-04 10:00:00,1.8e308,food,pos\n"        # overflows a double: read as infinity
    "T7,C1,2025-01-04 10:00:00,1e308,food,pos\n"          # finite, but no amount is that large
    "T8,C1,2025-01-04 10:00:00,5\n"                       # fields missing
    'T10,C1,2025-01-06 10:00:00,4.0,"12"" ruler, wood",pos\n'  # a quote doubled inside a quoted field (RFC 4180)
)


def test_csv_faults_are_quarantined_never_shifted_or_cut(spark, tmp_path):
    from custseg.platform.storage import read_input

    path = tmp_path / "transactions.csv"
    path.write_bytes(FAULTY_CSV.encode("utf-8") + b"T9,C\xff1,2025-01-05 10:00:00,3.0,food,pos\n")  # not UTF-8
    conf = InputConf(name="transactions", path=str(path), format="csv")
    checked_df = check(read_input(spark, conf), TRANSACTIONS, conf)
    expected = spark.createDataFrame([
        ("T1", None, None),
        ("T2", "malformed_record", "field count differs from the header"),
        ("T3", None, None),
        ("T4", "unparseable_value", "amount"),
        ("T5", "unparseable_value", "amount"),
        ("T6", "unparseable_value", "amount"),
        ("T7", "out_of_range", "amount"),
        ("T8", "malformed_record", "field count differs from the header"),
        ("T9", "unparseable_value", "customer_id"),
        ("T10", None, None),
    ], "transaction_id string, _reason string, _detail string")
    assert_df_equality(reasons(checked_df, "transaction_id"), expected, ignore_row_order=True, ignore_nullable=True)
    accepted_df = checked_df.filter(f"{V.REASON} IS NULL")
    kept = {r["transaction_id"]: (r["amount"], r["category"], r["channel"]) for r in accepted_df.collect()}
    assert kept == {"T1": (12.5, "food", "online"), "T3": (7.0, "food", "mob\nile"),
                    "T10": (4.0, '12" ruler, wood', "pos")}


STRAY_QUOTE_CSV = (
    "transaction_id;customer_id;transaction_ts;amount;category;channel\n"
    "T1;C1;2025-01-01 10:00:00;1.0;food;pos\n"
    'T2;C1;2025-01-02 10:00:00;2.0;food;"pos\n'         # a quote opened in the last field, never closed
    "T3;C1;2025-01-03 10:00:00;3.0;food;pos\n"
    "T4;C1;2025-01-04 10:00:00;4.0;food;pos\n"
    'T5;C1;2025-01-05 10:00:00;5.0;"food;pos\n'         # closes the quote of T2: then one field too few
    'T6;C1;2025-01-06 10:00:00;6.0;food;"mob\nile"\n'  # a quoted field holding a newline: one valid row
    "T7;C1;2025-01-07 10:00:00;7.0;food;pos\n"
)


def test_rows_a_stray_quote_took_in_are_rejected_each_with_its_own_fields(spark, tmp_path):
    from custseg.platform.storage import read_input

    path = tmp_path / "transactions.csv"
    path.write_text(STRAY_QUOTE_CSV)
    conf = InputConf(name="transactions", path=str(path), format="csv", options={"sep": ";"})
    checked_df = check(read_input(spark, conf), TRANSACTIONS, conf)
    took_in = "a quote left open here took in 3 lines that read as rows"
    inside = "a line inside a quote left open on an earlier row"
    expected = spark.createDataFrame([
        ("T1", None, None), ("T2", "malformed_record", took_in), ("T3", "malformed_record", inside),
        ("T4", "malformed_record", inside), ("T5", "malformed_record", inside), ("T6", None, None),
        ("T7", None, None),
    ], "transaction_id string, _reason string, _detail string")
    assert_df_equality(reasons(checked_df, "transaction_id"), expected, ignore_row_order=True, ignore_nullable=True)
    records = {r["transaction_id"]: json.loads(r["record"]) for r in checked_df.select(
        "transaction_id", V.record_json().alias("record")).collect()}
    assert records["T4"] == {"transaction_id": "T4", "customer_id": "C1", "transaction_ts": "2025-01-04 10:00:00",
                             "amount": "4.0", "category": "food", "channel": "pos"}
    assert checked_df.filter("transaction_id = 'T6'").first()["channel"] == "mob\nile"


def test_a_timestamp_is_read_with_or_without_its_seconds_and_as_a_date_alone(spark):
    assert V.timestamp_formats("dd/MM/yyyy HH:mm") == ["dd/MM/yyyy HH:mm", "dd/MM/yyyy HH:mm:ss", "dd/MM/yyyy"]
    assert V.timestamp_formats("yyyy-MM-dd'T'HH:mm:ss") == ["yyyy-MM-dd'T'HH:mm:ss", "yyyy-MM-dd"]
    raw_df = spark.createDataFrame([("T1", "C1", "05/01/2025 10:30", "1"), ("T2", "C1", "05/01/2025 10:30:15", "1"),
                                    ("T3", "C1", "05/01/2025", "1"), ("T4", "C1", "2025-01-05T10:30:00", "1"),
                                    ("T5", "C1", "5 Jan 2025 10:30", "1")],
                                   "transaction_id string, customer_id string, transaction_ts string, amount string")
    conf = InputConf(name="transactions", path="unused", format="csv", timestamp_format="dd/MM/yyyy HH:mm")
    checked_df = check(raw_df, TRANSACTIONS, conf)
    read = {r["transaction_id"]: (r["transaction_ts"], r[V.REASON]) for r in checked_df.collect()}
    assert read == {"T1": (dt.datetime(2025, 1, 5, 10, 30), None), "T2": (dt.datetime(2025, 1, 5, 10, 30, 15), None),
                    "T3": (dt.datetime(2025, 1, 5), None), "T4": (dt.datetime(2025, 1, 5, 10, 30), None),
                    "T5": (None, "unparseable_value")}


def test_decimal_comma_numbers_are_read_when_configured_and_nothing_else_is_guessed(spark):
    texts = ["1.234,56", "-12,5", "7", "1.234", "1,5,0", "1.5", "12.34,5", "1e3"]
    raw_df = spark.createDataFrame([(f"T{i}", "C1", "2025-01-05 10:00:00", t) for i, t in enumerate(texts)],
                                   "transaction_id string, customer_id string, transaction_ts string, amount string")
    conf = InputConf(name="transactions", path="unused", format="csv", decimal_separator=",")
    read = {texts[int(r["transaction_id"][1:])]: r["amount"] for r in check(raw_df, TRANSACTIONS, conf).collect()}
    assert read == {"1.234,56": 1234.56, "-12,5": -12.5, "7": 7.0, "1.234": 1234.0,
                    "1,5,0": None, "1.5": None, "12.34,5": None, "1e3": None}  # not decimal-comma numbers
    # With a decimal point, commas group thousands in threes, and nothing else is read as a number.
    texts += ["1,234.56", "-1,234", "12,50", "1,23,456.7"]
    raw_df = spark.createDataFrame([(f"T{i}", "C1", "2025-01-05 10:00:00", t) for i, t in enumerate(texts)],
                                   "transaction_id string, customer_id string, transaction_ts string, amount string")
    default = {texts[int(r["transaction_id"][1:])]: r["amount"]
               for r in check(raw_df, TRANSACTIONS, csv_conf("transactions")).collect()}
    assert default == {"1.234,56": None, "-12,5": None, "7": 7.0, "1.234": 1.234, "1,5,0": None, "1.5": 1.5,
                       "12.34,5": None, "1e3": 1000.0, "1,234.56": 1234.56, "-1,234": -1234.0, "12,50": None,
                       "1,23,456.7": None}


def test_header_names_are_trimmed_and_case_folded_and_only_contract_columns_reach_the_record(spark):
    raw_df = spark.createDataFrame([("C1", "2020-01-01", "Ann", "ann@x.com", "secret note", "-5")],
                                   "`Customer_ID` string, ` signup_date` string, ` name` string, ` Email` string, "
                                   "`notes` string, ` annual_income` string")
    checked_df = check(raw_df, CUSTOMERS, csv_conf("customers"))
    row = checked_df.select("customer_id", V.REASON, V.DETAIL, V.record_json().alias("record")).first()
    assert (row["customer_id"], row[V.REASON], row[V.DETAIL]) == ("C1", "out_of_range", "annual_income")
    assert json.loads(row["record"]) == {"Customer_ID": "C1", "signup_date": "2020-01-01", "annual_income": "-5"}


@pytest.mark.parametrize("local_checkpoints", ["true", "false"])  # a small run's caches, and a large run's
def test_an_empty_input_table_is_counted_not_waited_for(spark, golden, tmp_path, local_checkpoints):
    # The golden run's inputs with an empty loan_payments table; the counts per reason are observed by whatever
    # action runs the rejected rows (build_features writes them to Delta).
    empty_path = str(tmp_path / "empty_payments")
    golden.input(spark, "loan_payments").limit(0).write.format("delta").save(empty_path)
    conf = make_conf(golden.data_dir, tmp_path / "out", [f"inputs.loan_payments.path={empty_path}"])
    spark.conf.set(LOCAL_CHECKPOINTS, local_checkpoints)
    try:
        with cache_scope(spark) as persist:
            result = ingest(spark, conf, check_inputs(spark, conf), "run-empty", conf.as_of_date, persist)
            result.rejected.write.format("noop").mode("overwrite").save()
            counts = result.reconciled_counts()
    finally:
        spark.conf.set(LOCAL_CHECKPOINTS, "true")  # the test session's own (tests/helpers.py)
    assert counts["loan_payments"] == {"read": 0, "accepted": 0, "rejected": 0}
    assert counts["loans"] == golden.features.counts["inputs"]["loans"]
    for table in ("customers", "transactions", "products"):
        assert counts[table] == golden.features.counts["inputs"][table], table


FLAT_CSV = (  # an export with a row per transaction and the customer's attributes on each (day/month/year)
    "TxnID,CustomerID,When,Amount,Country,Income\n"
    "T1,C1,05/01/2025 10:00,10.0,UK,100\n"
    "T2,C1,05/03/2025 11:00,20.0,UK,120\n"
    "T3,C1,02/01/2026 09:00,30.0,FR,999\n"   # after the as-of date: not yet known then
    "T4,C2,not a date,5.0,DE,50\n"           # rejected in both tables; C2 stands on its other row
    "T5,C2,01/06/2025 08:00,6.0,DE,55\n"
    "T6,C3,15/02/2026 12:00,7.0,ES,70\n"     # signed up after the as-of date: kept, not a customer then
)


FLAT_CUSTOMER_COLUMNS = {"customer_id": "CustomerID", "signup_date": "When", "region": "Country",
                         "annual_income": "Income"}


@pytest.mark.parametrize("local_checkpoints", ["true", "false"])  # a small run's one pass, a large run's two
def test_an_export_with_a_row_per_transaction_serves_as_the_customers_table(spark, tmp_path, local_checkpoints):
    import yaml

    from custseg.config import parse_config
    from helpers import ROOT

    path = tmp_path / "flat.csv"
    path.write_text(FLAT_CSV)
    shared = {"path": str(path), "format": "csv", "date_format": "dd/MM/yyyy HH:mm"}
    raw = yaml.safe_load((ROOT / "conf" / "test.yaml").read_text())
    raw["inputs"] = {
        "customers": {**shared, "rows_per_customer": "many", "columns": FLAT_CUSTOMER_COLUMNS},
        "transactions": {**shared, "timestamp_format": "dd/MM/yyyy HH:mm", "columns": {
            "transaction_id": "TxnID", "customer_id": "CustomerID", "transaction_ts": "When", "amount": "Amount"}}}
    raw["output"]["path"] = str(tmp_path / "out")
    conf = parse_config(raw)
    spark.conf.set(LOCAL_CHECKPOINTS, local_checkpoints)
    try:
        with cache_scope(spark) as persist:
            result = ingest(spark, conf, check_inputs(spark, conf), "run-flat", AS_OF, persist)
            rejected = result.rejected.collect()
            counts = result.reconciled_counts()
            customers = {r["customer_id"]: (r["signup_date"], r["region"], r["annual_income"])
                         for r in result.accepted["customers"].collect()}
            transactions = sorted(r["transaction_id"] for r in result.accepted["transactions"].collect())
    finally:
        spark.conf.set(LOCAL_CHECKPOINTS, "true")  # the test session's own (tests/helpers.py)
    # The first transaction's date, and the attributes of the latest row before the as-of date.
    assert customers == {"C1": (dt.date(2025, 1, 5), "UK", 120.0), "C2": (dt.date(2025, 6, 1), "DE", 55.0),
                         "C3": (dt.date(2026, 2, 15), "ES", 70.0)}
    assert counts["customers"] == {"read": 6, "accepted": 3, "merged": 2, "rejected": 1,
                                   "rejected_unparseable_value": 1}
    assert transactions == ["T1", "T2", "T3", "T5", "T6"]
    assert sorted((r["source_table"], r["reason"], r["detail"]) for r in rejected) == [
        ("customers", "unparseable_value", "signup_date"), ("transactions", "unparseable_value", "transaction_ts")]



def test_the_attributes_validation_leaves_out_come_from_the_row_the_customer_was_built_from(spark, tmp_path):
    from custseg.platform.storage import read_input

    path = tmp_path / "flat.csv"
    path.write_text(FLAT_CSV)
    conf = InputConf(name="customers", path=str(path), format="csv", date_format="dd/MM/yyyy HH:mm",
                     rows_per_customer="many", columns=FLAT_CUSTOMER_COLUMNS)
    rows = V.one_source_row_per_customer(read_input(spark, conf), conf, PII, AS_OF).collect()
    assert sorted((r["CustomerID"], r["TxnID"], r["Country"]) for r in rows) == [
        ("C1", "T2", "UK"), ("C2", "T5", "DE"), ("C3", "T6", "ES")]


def test_invoice_lines_get_an_amount_from_quantity_times_price_and_ids_from_their_values(spark):
    lines_df = spark.createDataFrame([
        ("536365", "85123A", "C1", "2025-12-01 08:26:00", "6", "2.55"),
        ("536365", "71053", "C1", "2025-12-01 08:26:00", "6", "3.39"),
        ("536365", "71053", "C1", "2025-12-01 08:26:00", "6", "3.39"),   # a copy of the line above
        ("C536379", "D", "C1", "2025-12-02 09:41:00", "-1", "27.50"),   # a cancellation: a refund
        ("536380", "22961", "C1", "2025-12-03 09:00:00", "24", ""),      # no price: no amount
        ("536381", "22139", "C1", "2025-12-03 09:10:00", "12", "0.00"),  # a free line: neither purchase nor refund
    ], "Invoice string, StockCode string, CustomerID string, InvoiceDate string, Quantity string, Price string")
    conf = InputConf(name="transactions", path="unused", format="csv", multiply_by={"amount": "price"},
                     transaction_id_from_row=True, columns={"customer_id": "CustomerID",
                                                            "transaction_ts": "InvoiceDate", "amount": "Quantity"})
    with_ids_df = V.with_transaction_id_from_row(lines_df, "transactions")
    checked = check(with_ids_df, TRANSACTIONS, conf).collect()
    got = [(None if r["amount"] is None else round(r["amount"], 6), r[V.REASON], r[V.DETAIL]) for r in checked]
    assert sorted(got, key=str) == sorted([
        (15.3, None, None), (20.34, None, None), (20.34, "duplicate_key", "transaction_id"), (-27.5, None, None),
        (None, "unparseable_value", "amount"), (0.0, "zero_amount", "amount")], key=str)
    ids = [r["transaction_id"] for r in with_ids_df.collect()]
    assert ids[1] == ids[2] and len(set(ids)) == 5 and all(i.startswith("row-") for i in ids)
    assert ids == [r["transaction_id"] for r in V.with_transaction_id_from_row(lines_df, "transactions").collect()]
    rejected = {json.loads(r["record_json"])["Quantity"]: json.loads(r["record_json"])
                for r in V.rejected(check(with_ids_df, TRANSACTIONS, conf), "transactions", "r", AS_OF).collect()}
    assert rejected["24"]["Price"] == "" and rejected["12"]["Price"] == "0.00"  # the factor kept with the row
    with pytest.raises(InputError, match="'transactions': has a column 'Transaction_ID' already"):
        V.with_transaction_id_from_row(lines_df.withColumnRenamed("Invoice", "Transaction_ID"), "transactions")
    with pytest.raises(InputError, match=r"column 'price' \(inputs.transactions.multiply_by.amount\) is missing"):
        V.check_schema(with_ids_df.drop("Price"), TRANSACTIONS, conf)


def test_the_lines_of_a_basket_become_one_transaction_after_each_line_is_checked(spark):
    lines_df = spark.createDataFrame([
        ("l1", "536365", "C1", "2025-12-01 08:26:00", "15.30", "LIGHTS"),
        ("l2", "536365", "C1", "2025-12-01 08:27:00", "20.34", "BAGS"),
        ("l3", "536365", "C1", "2025-12-01 08:27:00", "n/a", "BAGS"),     # rejected on its own; the basket stays
        ("l4", "C536379", "C1", "2025-12-02 09:41:00", "-27.50", "MUGS"),  # a cancellation: a refund
        ("l5", "536365", "C2", "2025-12-03 10:00:00", "5.00", "LIGHTS"),   # another customer's basket of that number
        ("l6", "", "C2", "2025-12-03 11:00:00", "7.00", None),             # no basket: a transaction of its own
    ], "line string, Invoice string, customer_id string, transaction_ts string, amount string, category string")
    conf = InputConf(name="transactions", path="unused", format="csv", basket="invoice",
                     columns={"transaction_id": "line"})
    checked_df = check(lines_df, TRANSACTIONS, conf)
    got = sorted((r["transaction_id"], r["customer_id"], str(r["transaction_ts"]), round(r["amount"], 6),
                  r["category"]) for r in V.baskets(V.accepted(checked_df, TRANSACTIONS)).collect())
    assert got == [("536365", "C1", "2025-12-01 08:26:00", 35.64, "BAGS"),
                   ("536365", "C2", "2025-12-03 10:00:00", 5.0, "LIGHTS"),
                   ("C536379", "C1", "2025-12-02 09:41:00", -27.5, "MUGS"),
                   ("line l6", "C2", "2025-12-03 11:00:00", 7.0, None)]
    rejected = V.rejected(checked_df, "transactions", "r", AS_OF).collect()
    assert [(r["reason"], json.loads(r["record_json"])["Invoice"]) for r in rejected] == [
        ("unparseable_value", "536365")]
    with pytest.raises(InputError, match=r"column 'invoice' \(inputs.transactions.basket\) is missing"):
        V.check_schema(lines_df.drop("Invoice"), TRANSACTIONS, conf)


def test_two_digit_years_are_read_as_1969_to_2068_and_four_digit_ones_as_written(spark):
    raw_df = spark.createDataFrame([(f"C{i}", d) for i, d in enumerate(
        ["930101", "680101", "690101", "2093-01-01", "011231"])], "customer_id string, signup_date string")
    conf = InputConf(name="customers", path="unused", format="csv", date_format="yyMMdd")
    read = {r["customer_id"]: r["signup_date"] for r in check(raw_df, CUSTOMERS, conf).collect()}
    assert read == {"C0": dt.date(1993, 1, 1), "C1": dt.date(2068, 1, 1), "C2": dt.date(1969, 1, 1),
                    "C3": dt.date(2093, 1, 1), "C4": dt.date(2001, 12, 31)}
    txn_df = spark.createDataFrame([("T1", "C1", "930101 10:05", "5"), ("T2", "C1", "250601 09:00", "5")],
                                   "transaction_id string, customer_id string, transaction_ts string, amount string")
    txn_conf = InputConf(name="transactions", path="unused", format="csv", timestamp_format="yyMMdd HH:mm")
    assert {r["transaction_id"]: r["transaction_ts"] for r in check(txn_df, TRANSACTIONS, txn_conf).collect()} == {
        "T1": dt.datetime(1993, 1, 1, 10, 5), "T2": dt.datetime(2025, 6, 1, 9, 0)}
