"""Tests of the synthetic data generator: determinism, schema, planted personas, credit, mix, dirt, writers."""
from __future__ import annotations

import dataclasses
import re
from datetime import date, timedelta
from functools import reduce

import pytest
from chispa import assert_column_equality, assert_df_equality
from custseg_sample import datagen
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StringType, StructField, StructType

from custseg.contract.inputs import CONTRACTS, CREDIT_SCORE_RANGE
from custseg.transforms.features import loan_features
from scripts import generate_data as script

AS_OF = date(2024, 6, 30)
N_CUSTOMERS = 300
TX_PER_CUSTOMER = 10
SEED = 11
DIRT_RATE = 0.05


def _cached(data: datagen.GeneratedData) -> datagen.GeneratedData:
    frames = {f.name: getattr(data, f.name).cache() for f in dataclasses.fields(data)
              if f.name not in ("dirt_rate", "seed")}
    return dataclasses.replace(data, **frames)


def _unpersist(data: datagen.GeneratedData) -> None:
    for df in (*data.inputs().values(), data.truth):
        df.unpersist()


@pytest.fixture(scope="module")
def clean(spark):
    data = _cached(datagen.generate(spark, N_CUSTOMERS, TX_PER_CUSTOMER, AS_OF, SEED))
    yield data
    _unpersist(data)


@pytest.fixture(scope="module")
def dirty(spark):
    data = _cached(datagen.generate(spark, N_CUSTOMERS, TX_PER_CUSTOMER, AS_OF, SEED, dirt_rate=DIRT_RATE))
    yield data
    _unpersist(data)


def _sorted_rows(df):
    return sorted(df.collect(), key=lambda row: tuple("" if v is None else str(v) for v in row))


def _tables(data: datagen.GeneratedData) -> dict[str, DataFrame]:
    return {**data.inputs(), "truth": data.truth}


def _every_row(tables: dict[str, DataFrame]) -> list[tuple[str, str]]:
    """(table, row as JSON) for every row of every table, sorted: one Spark job for them all."""
    rows = reduce(DataFrame.unionAll, [df.select(F.lit(name), F.to_json(F.struct(*df.columns)))
                                       for name, df in tables.items()])
    return sorted(map(tuple, rows.collect()))


def _schemas(tables: dict[str, DataFrame]) -> dict[str, list]:
    return {name: [(f.name, f.dataType) for f in df.schema] for name, df in tables.items()}


# ---------------------------------------------------------------- building blocks


def test_uniform_is_a_pure_function_of_its_keys(spark):
    schema = StructType([StructField("id", LongType(), True)])
    df = spark.createDataFrame([(1,), (2,), (1,), (None,)], schema)
    values = [r["u"] for r in df.select(datagen.uniform(7, "salt", F.col("id")).alias("u")).collect()]
    assert values[0] == values[2]
    assert values[0] != values[1]
    assert all(0.0 < v < 1.0 for v in values)
    other_salt = df.select(datagen.uniform(7, "other", F.col("id")).alias("u")).first()["u"]
    assert other_salt != values[0]


def test_padded_id_pads_and_never_truncates(spark):
    schema = StructType([StructField("n", LongType(), True), StructField("expected", StringType(), True)])
    df = spark.createDataFrame(
        [(1, "C00000001"), (12345678, "C12345678"), (123456789, "C123456789"), (None, None)], schema
    ).withColumn("id", datagen.padded_id("C", F.col("n"), 8))
    assert_column_equality(df, "id", "expected")


# ---------------------------------------------------------------- determinism and schema


def test_same_arguments_give_identical_rows_whatever_the_partitioning(spark):
    first = datagen.generate(spark, 80, TX_PER_CUSTOMER, AS_OF, SEED, dirt_rate=DIRT_RATE, num_partitions=1)
    second = datagen.generate(spark, 80, TX_PER_CUSTOMER, AS_OF, SEED, dirt_rate=DIRT_RATE, num_partitions=3)
    assert list(first.inputs()) == ["customers", "transactions", "loans", "loan_payments", "products"]
    rows = _every_row(_tables(first))
    assert {table for table, _ in rows} == set(_tables(first))  # no table empty
    assert rows == _every_row(_tables(second))


def test_a_different_seed_gives_different_rows(spark, clean):
    other = datagen.generate(spark, N_CUSTOMERS, TX_PER_CUSTOMER, AS_OF, SEED + 1)
    assert _sorted_rows(other.truth) != _sorted_rows(clean.truth)
    assert _sorted_rows(other.transactions.limit(50)) != _sorted_rows(clean.transactions.limit(50))


def test_tables_follow_the_contract(clean):
    for name, contract in CONTRACTS.items():
        types = dict(clean.inputs()[name].dtypes)
        for column in contract.columns:
            assert types.get(column.name) == column.type, f"{name}.{column.name}: {types.get(column.name)}"
    assert {"sex", "name", "email", "phone"} <= set(clean.customers.columns)
    assert clean.truth.columns == ["customer_id", "persona"]


def test_ids_are_zero_padded(clean):
    assert clean.customers.orderBy("customer_id").first()["customer_id"] == "C00000001"
    assert clean.transactions.orderBy("transaction_id").first()["transaction_id"] == "T000000000001"
    assert re.fullmatch(r"L\d{7}", clean.loans.first()["loan_id"])


def test_truth_has_one_persona_per_customer_and_all_personas(clean):
    truth = clean.truth
    assert truth.count() == N_CUSTOMERS
    assert truth.select("customer_id").distinct().count() == N_CUSTOMERS
    assert {r["persona"] for r in truth.select("persona").distinct().collect()} == set(datagen.PERSONAS)
    unmatched = truth.join(clean.customers, on="customer_id", how="left_anti").count()
    assert unmatched == 0


# ---------------------------------------------------------------- clean data


def test_clean_transactions_have_no_dirt(clean):
    tx = clean.transactions
    n_rows = tx.count()
    assert n_rows > N_CUSTOMERS
    assert tx.select("transaction_id").distinct().count() == n_rows
    assert tx.filter(F.col("customer_id").isNull()).count() == 0
    assert tx.filter(F.col("amount") == 0).count() == 0
    assert tx.filter(F.col("transaction_ts") >= F.lit(AS_OF).cast("timestamp")).count() == 0
    too_old = F.lit(AS_OF - timedelta(days=datagen.LOOKBACK_LIMIT_DAYS)).cast("timestamp")
    assert tx.filter(F.col("transaction_ts") < too_old).count() == 0
    assert tx.join(clean.customers, on="customer_id", how="left_anti").count() == 0
    before_signup = (tx.join(clean.customers, on="customer_id", how="inner")
                     .filter(F.to_date("transaction_ts") < F.col("signup_date")).count())
    assert before_signup == 0


def test_clean_customers_and_payments_have_no_dirt(clean):
    customers = clean.customers
    assert customers.select("customer_id").distinct().count() == customers.count() == N_CUSTOMERS
    low, high = CREDIT_SCORE_RANGE
    assert customers.filter(F.col("annual_income").isNull() | F.col("credit_score").isNull()).count() == 0
    assert customers.filter(~F.col("credit_score").between(low, high)).count() == 0
    payments = clean.loan_payments
    assert payments.filter(F.col("due_date").isNull()).count() == 0
    assert payments.filter(F.col("paid_date") >= F.lit(AS_OF)).count() == 0
    assert payments.filter(F.col("paid_date").isNull() != F.col("amount_paid").isNull()).count() == 0
    assert payments.groupBy("loan_id", "due_date").count().filter(F.col("count") > 1).count() == 0


# ---------------------------------------------------------------- personas


def _with_persona(df, data):
    return df.join(data.truth, on="customer_id", how="inner")


def test_credit_and_income_follow_the_personas(clean):
    stats = {r["persona"]: r for r in _with_persona(clean.customers, clean).groupBy("persona").agg(
        F.avg("credit_score").alias("credit"), F.min("annual_income").alias("min_income"),
        F.max("annual_income").alias("max_income")).collect()}
    assert stats["credit_stressed"]["credit"] < 600 < 740 < stats["affluent_loyal"]["credit"]
    assert stats["affluent_loyal"]["min_income"] >= 120_000
    assert stats["young_frequent"]["max_income"] <= 50_000


def test_purchase_behaviour_follows_the_personas(clean):
    tx = _with_persona(clean.transactions, clean)
    per_customer = tx.groupBy("persona", "customer_id").agg(
        F.count("*").alias("n"), F.avg(F.abs("amount")).alias("ticket"),
        F.min(F.datediff(F.lit(AS_OF), F.to_date("transaction_ts"))).alias("recency"))
    stats = {r["persona"]: r for r in per_customer.groupBy("persona").agg(
        F.avg("n").alias("n"), F.avg("ticket").alias("ticket"), F.max("recency").alias("max_recency")).collect()}
    assert stats["young_frequent"]["n"] > 2 * stats["affluent_loyal"]["n"]
    assert stats["affluent_loyal"]["ticket"] > 3 * stats["credit_stressed"]["ticket"] > 9 * stats[
        "young_frequent"]["ticket"]
    assert stats["affluent_loyal"]["max_recency"] <= 7
    assert stats["young_frequent"]["max_recency"] <= 3


def test_dormant_customers_have_no_recent_transactions(clean):
    dormant = _with_persona(clean.transactions, clean).filter(F.col("persona") == "dormant")
    days_back = F.datediff(F.lit(AS_OF), F.to_date("transaction_ts"))
    assert dormant.count() > 0
    assert dormant.filter(days_back <= 200).count() == 0
    in_last_year = dormant.filter(days_back <= 365).groupBy("customer_id").count()
    assert in_last_year.filter(F.col("count") > 3).count() == 0


def test_new_customers_signed_up_recently_and_bought_since(clean):
    new = _with_persona(clean.customers, clean).filter(F.col("persona") == "new_customer")
    tenure = F.datediff(F.lit(AS_OF), F.col("signup_date"))
    assert new.count() > 0
    assert new.filter(~tenure.between(20, 90)).count() == 0
    new_tx = _with_persona(clean.transactions, clean).filter(F.col("persona") == "new_customer")
    assert new_tx.filter(F.col("transaction_ts") < F.lit(AS_OF - timedelta(days=90)).cast("timestamp")).count() == 0


def test_credit_stressed_spending_declines(clean):
    days_back = F.datediff(F.lit(AS_OF), F.to_date("transaction_ts"))
    stressed = _with_persona(clean.transactions, clean).filter(F.col("persona") == "credit_stressed")
    row = stressed.agg(F.sum(F.when(days_back <= 90, F.col("amount"))).alias("last"),
                       F.sum(F.when((days_back > 90) & (days_back <= 180), F.col("amount"))).alias("prior")).first()
    assert row["last"] < 0.5 * row["prior"]


def test_loan_terms_and_repayment_follow_the_personas(clean):
    loans = _with_persona(clean.loans, clean)
    stats = {r["persona"]: r for r in loans.groupBy("persona").agg(
        F.percentile_approx("principal", 0.5).alias("principal"), F.min("interest_rate").alias("min_rate"),
        F.max("interest_rate").alias("max_rate")).collect()}
    assert stats["affluent_loyal"]["principal"] > 3 * stats["credit_stressed"]["principal"]
    assert stats["affluent_loyal"]["max_rate"] < stats["young_frequent"]["min_rate"]
    assert stats["young_frequent"]["max_rate"] < stats["credit_stressed"]["max_rate"]
    past = _with_persona(clean.loan_payments, clean).filter(F.col("due_date") < F.lit(AS_OF))
    on_time = {r["persona"]: r["on_time"] for r in past.groupBy("persona").agg(
        F.avg(F.coalesce((F.col("paid_date") <= F.col("due_date")), F.lit(False)).cast("double")).alias("on_time"))
        .collect()}
    assert on_time["affluent_loyal"] > 0.95
    assert on_time["credit_stressed"] < 0.8


POPULATION_CUSTOMERS = 2000  # enough for the credit and product shares' tolerances


@pytest.fixture(scope="module")
def population(spark):
    """A larger clean dataset (few transactions each), computed once for the credit and product tests."""
    data = _cached(datagen.generate(spark, POPULATION_CUSTOMERS, 2, AS_OF, SEED))
    yield data
    _unpersist(data)


@pytest.fixture(scope="module")
def credit(population):
    """Per customer: persona, is_borrower, has_default and is_late as customer_features defines them."""
    data = population
    borrowers = loan_features(data.loans, data.loan_payments, AS_OF, late_window_days=365, default_dpd=90)
    df = (data.truth.join(borrowers, on="customer_id", how="left")
          .select("customer_id", "persona", F.col("n_loans").isNotNull().alias("is_borrower"),
                  (F.col("has_default") == 1).alias("has_default"),
                  (F.col("late_payments_12m") > 0).alias("is_late"))
          .cache())
    yield df
    df.unpersist()


def _credit_rates(credit_df) -> dict:
    """Per persona (and "all"): customers, borrower share, default rate and late rate over borrowers."""
    def rates(df):
        return df.agg(F.count("*").alias("customers"), F.avg(F.col("is_borrower").cast("double")).alias("borrowers"),
                      F.avg(F.when(F.col("is_borrower"), F.col("has_default").cast("double"))).alias("default"),
                      F.avg(F.when(F.col("is_borrower"), F.col("is_late").cast("double"))).alias("late"))

    per_persona = {r["persona"]: r for r in rates(credit_df.groupBy("persona")).collect()}
    return {**per_persona, "all": rates(credit_df).first()}


def test_every_persona_borrows_in_its_own_share(credit):
    rates = _credit_rates(credit)
    expected = {"affluent_loyal": 0.45, "young_frequent": 0.25, "dormant": 0.10, "credit_stressed": 0.95,
                "new_customer": 0.15}  # new customers: 18% of those signed up a month or more ago
    for persona, share in expected.items():
        assert rates[persona]["borrowers"] == pytest.approx(share, abs=0.06), persona


def test_defaults_are_rare_overall_and_concentrated_in_the_stressed(credit):
    rates = _credit_rates(credit)
    assert 0.02 <= rates["all"]["default"] <= 0.10
    assert 0.12 <= rates["credit_stressed"]["default"] <= 0.25
    for persona in ("affluent_loyal", "young_frequent", "dormant", "new_customer"):
        assert rates[persona]["default"] <= 0.04, persona


def test_late_payments_are_more_common_than_defaults_in_every_persona(credit):
    rates = _credit_rates(credit)
    for persona in (*datagen.PERSONAS, "all"):
        assert rates[persona]["late"] >= rates[persona]["default"], persona
    assert rates["credit_stressed"]["late"] > 0.8
    assert rates["young_frequent"]["late"] > rates["affluent_loyal"]["late"] > rates["dormant"]["late"]


def test_loan_status_follows_the_payments(population):
    data = population
    due = F.col("due_date")
    dpd = F.coalesce(F.datediff("paid_date", due), F.datediff(F.lit(AS_OF), due))
    per_loan = data.loan_payments.groupBy("loan_id").agg(
        F.max(F.when(due < F.lit(AS_OF), dpd)).alias("max_dpd"),
        F.count(F.when(F.col("paid_date").isNull() & (due < F.lit(AS_OF)), 1)).alias("overdue"),
        F.count(F.when(F.col("paid_date").isNull(), 1)).alias("unpaid"))
    loans = data.loans.join(per_loan, on="loan_id", how="left").join(data.customers, on="customer_id", how="inner")
    by_status = {r["status"]: r for r in loans.groupBy("status").agg(
        F.count("*").alias("n"), F.min("max_dpd").alias("min_dpd"), F.max("max_dpd").alias("max_dpd"),
        F.min("overdue").alias("min_overdue"), F.max("overdue").alias("max_overdue"),
        F.min("unpaid").alias("min_unpaid"), F.max("unpaid").alias("max_unpaid"),
        F.max("outstanding_balance").alias("max_balance")).collect()}
    assert set(by_status) == {"current", "late", "default", "charged_off", "paid_off"}
    for status in ("default", "charged_off"):
        assert by_status[status]["min_dpd"] >= 90, status
    for status in ("current", "late", "paid_off"):
        assert by_status[status]["max_dpd"] is None or by_status[status]["max_dpd"] < 90, status
    assert by_status["late"]["min_overdue"] >= 1
    assert by_status["current"]["max_overdue"] == 0 and by_status["current"]["min_unpaid"] >= 1
    assert by_status["paid_off"]["max_unpaid"] == 0 and by_status["paid_off"]["max_balance"] == 0.0
    bad_dates = loans.filter((F.col("origination_date") < F.col("signup_date"))
                             | (F.col("origination_date") >= F.lit(AS_OF))).count()
    assert bad_dates == 0
    assert loans.filter(~F.col("outstanding_balance").between(0.0, F.col("principal"))).count() == 0


def _is_held(as_of: date):
    """A product row held at as_of: opened before it and not closed by then."""
    return (F.col("opened_date") < F.lit(as_of)) & (
        F.col("closed_date").isNull() | (F.col("closed_date") >= F.lit(as_of)))


@pytest.fixture(scope="module")
def holdings(population):
    """Clean product rows with persona, signup_date and is_held (at AS_OF), and the customers per persona."""
    data = population
    df = (_with_persona(data.products, data)
          .join(data.customers.select("customer_id", "signup_date"), on="customer_id", how="inner")
          .withColumn("is_held", _is_held(AS_OF))
          .cache())
    customers = {r["persona"]: r["count"] for r in data.truth.groupBy("persona").count().collect()}
    yield df, customers
    df.unpersist()


def test_product_holdings_follow_the_personas_with_planted_gaps(holdings):
    df, customers = holdings
    held = df.filter(F.col("is_held")).groupBy("persona", "product").agg(F.countDistinct("customer_id").alias("n"))
    shares = {(r["persona"], r["product"]): r["n"] / customers[r["persona"]] for r in held.collect()}
    for spec in datagen.SPECS:
        n = customers[spec.name]
        for product, share in spec.products:
            tolerance = 4 * (share * (1 - share) / n) ** 0.5  # 4 binomial standard errors: about 0.05-0.1 here
            assert shares.get((spec.name, product), 0.0) == pytest.approx(share, abs=tolerance), (spec.name, product)
    for persona in datagen.PERSONAS:
        if persona != "young_frequent":
            assert shares[(persona, "savings")] > 4 * shares[("young_frequent", "savings")], persona
        if persona != "credit_stressed":
            assert shares[(persona, "credit_card")] > 4 * shares[("credit_stressed", "credit_card")], persona


def test_closed_and_future_products_are_not_held_at_as_of(holdings):
    df, _ = holdings
    n_rows = df.count()
    assert df.groupBy("customer_id", "product").count().filter(F.col("count") > 1).count() == 0
    closed = df.filter(F.col("closed_date").isNotNull())
    future = df.filter(F.col("opened_date") >= F.lit(AS_OF))
    assert closed.count() / n_rows == pytest.approx(datagen.PRODUCT_CLOSED_SHARE, abs=0.02)
    assert future.count() / n_rows == pytest.approx(datagen.PRODUCT_FUTURE_SHARE, abs=0.015)
    assert closed.filter(F.col("is_held") | (F.col("closed_date") >= F.lit(AS_OF))).count() == 0
    assert future.filter(F.col("is_held") | F.col("closed_date").isNotNull()).count() == 0
    assert future.filter(F.col("opened_date") > F.lit(AS_OF + timedelta(days=datagen.PRODUCT_FUTURE_DAYS))).count() == 0
    assert df.filter(F.col("is_held")).count() == n_rows - closed.count() - future.count()
    assert df.filter(F.col("opened_date") < F.col("signup_date")).count() == 0
    assert closed.filter(F.col("closed_date") < F.col("opened_date")).count() == 0
    assert {r["product"] for r in df.select("product").distinct().collect()} == set(datagen.PRODUCTS)


# ---------------------------------------------------------------- persona mix


def test_persona_shares_scale_the_personas_left_out():
    shares = datagen.persona_shares({"dormant": 0.7})
    assert shares["dormant"] == 0.7
    assert sum(shares.values()) == pytest.approx(1.0)
    assert shares["young_frequent"] == pytest.approx(0.3 * 0.25 / 0.8)
    assert datagen.persona_shares(None) == datagen.DEFAULT_PERSONA_WEIGHTS
    assert datagen.persona_shares({"dormant": 1.0})["new_customer"] == 0.0


@pytest.mark.parametrize("weights, message", [
    ({"sleepy": 0.5}, "unknown personas"), ({"dormant": 1.5}, r"\[0, 1\]"),
    ({"dormant": 0.7, "young_frequent": 0.5}, "sum to 1"),
    (dict.fromkeys(datagen.PERSONAS, 0.1), "sum to 1"),
])
def test_invalid_persona_weights_are_rejected(spark, weights, message):
    with pytest.raises(ValueError, match=message):
        datagen.generate(spark, 10, 5, AS_OF, SEED, persona_weights=weights)


def test_persona_weights_shift_the_mix(spark, clean):
    n = 1000
    dormant_majority = datagen.generate(spark, n, 2, AS_OF, SEED, persona_weights={"dormant": 0.7})
    counts = {r["persona"]: r["count"] for r in dormant_majority.truth.groupBy("persona").count().collect()}
    expected = datagen.persona_shares({"dormant": 0.7})
    assert sum(counts.values()) == n
    for persona in datagen.PERSONAS:
        assert counts[persona] / n == pytest.approx(expected[persona], abs=0.04), persona
    default_counts = {r["persona"]: r["count"] for r in clean.truth.groupBy("persona").count().collect()}
    for persona, share in datagen.DEFAULT_PERSONA_WEIGHTS.items():
        assert default_counts[persona] / N_CUSTOMERS == pytest.approx(share, abs=0.07), persona


def test_the_script_reads_persona_weights():
    args = script.parse_args(["--out", "/tmp/unused", "--persona-weights", "dormant=0.7, new_customer=0.1"])
    assert args.persona_weights == {"dormant": 0.7, "new_customer": 0.1}
    assert script.parse_args(["--out", "/tmp/unused"]).persona_weights is None
    for bad in ("dormant", "dormant=lots", "sleepy=0.5", "dormant=0.9,new_customer=0.2"):
        with pytest.raises(SystemExit):
            script.parse_args(["--out", "/tmp/unused", "--persona-weights", bad])


# ---------------------------------------------------------------- dirt


def test_every_kind_of_transaction_dirt_appears(dirty):
    tx = dirty.transactions
    duplicated = tx.groupBy("transaction_id").agg(F.count("*").alias("n"),
                                                  F.countDistinct("amount").alias("amounts"))
    assert duplicated.filter((F.col("n") > 1) & (F.col("amounts") == 1)).count() > 0
    assert duplicated.filter((F.col("n") > 1) & (F.col("amounts") > 1)).count() > 0
    assert tx.filter(F.col("customer_id").isNull()).count() > 0
    assert tx.filter(F.col("amount") == 0).count() > 0
    assert tx.filter(F.col("transaction_ts") >= F.lit(AS_OF).cast("timestamp")).count() > 0
    unknown = tx.filter(F.col("customer_id").isNotNull()).join(dirty.customers, on="customer_id", how="left_anti")
    assert unknown.count() > 0


def test_every_kind_of_customer_and_payment_dirt_appears(dirty):
    customers = dirty.customers
    low, high = CREDIT_SCORE_RANGE
    assert customers.count() > customers.select("customer_id").distinct().count()
    assert customers.filter(F.col("annual_income").isNull()).count() > 0
    assert customers.filter(F.col("credit_score").isNull()).count() > 0
    assert customers.filter(~F.col("credit_score").between(low, high)).count() > 0
    assert dirty.loan_payments.filter(F.col("due_date").isNull()).count() > 0


def test_product_dirt_is_null_products_and_duplicates_in_their_shares(clean, dirty):
    clean_rows = _sorted_rows(clean.products)
    dirty_products = dirty.products.filter(F.col("product").isNotNull())
    assert _sorted_rows(dirty_products.distinct()) == clean_rows
    null_share = dirty.products.filter(F.col("product").isNull()).count() / len(clean_rows)
    duplicate_share = (dirty_products.count() - len(clean_rows)) / len(clean_rows)
    assert null_share == pytest.approx(DIRT_RATE, abs=0.02)
    assert duplicate_share == pytest.approx(DIRT_RATE / 2, abs=0.015)
    assert duplicate_share > 0


def test_dirt_stays_a_small_share(clean, dirty):
    clean_rows, dirty_rows = clean.transactions.count(), dirty.transactions.count()
    assert clean_rows < dirty_rows < clean_rows * (1 + 2 * DIRT_RATE)
    assert_df_equality(clean.truth, dirty.truth, ignore_row_order=True)


# ---------------------------------------------------------------- writers


def test_csv_output_has_header_formats_and_junk(spark, tmp_path):
    data = datagen.generate(spark, 120, TX_PER_CUSTOMER, AS_OF, SEED, dirt_rate=0.1)
    out = str(tmp_path / "csv")
    datagen.write_dataset(data, out, "csv")
    tx = datagen.read_table(spark, f"{out}/transactions", "csv")
    assert tx.columns == list(datagen.TRANSACTION_COLUMNS)
    products = datagen.read_table(spark, f"{out}/products", "csv")
    assert products.columns == list(datagen.PRODUCT_COLUMNS)
    customers = datagen.read_table(spark, f"{out}/customers", "csv")
    truth = datagen.read_table(spark, f"{out}/truth", "csv")

    def rows_where(condition):
        return F.count(F.when(condition, 1))

    is_date = r"^\d{4}-\d{2}-\d{2}$"
    timestamp_ok = F.col("transaction_ts").rlike(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")
    tx_counts = tx.agg(F.count("*"), rows_where(F.col("amount") == "n/a"),
                       rows_where(F.col("transaction_ts") == "not-a-date"),
                       rows_where(~timestamp_ok & (F.col("transaction_ts") != "not-a-date"))).first()
    assert tx_counts[1] > 0 and tx_counts[2] > 0  # junk amounts and timestamps
    assert tx_counts[3] == 0  # every other timestamp in the documented format
    assert customers.filter(~F.col("birth_date").rlike(is_date)).count() == 0
    assert products.filter(~F.col("opened_date").rlike(is_date)).count() == 0
    generated = data.transactions.count(), data.products.count()
    assert (tx_counts[0], products.count(), truth.count()) == (*generated, 120)


@pytest.fixture(scope="module")
def small(spark):
    """60 customers with dirt, computed once for the writers' tests."""
    data = _cached(datagen.generate(spark, 60, 5, AS_OF, SEED, dirt_rate=DIRT_RATE))
    yield data
    _unpersist(data)


@pytest.mark.parametrize("fmt", ["delta", "parquet"])
def test_binary_formats_round_trip(spark, small, tmp_path, fmt):
    out = str(tmp_path / fmt)
    datagen.write_dataset(small, out, fmt)
    written = _tables(small)
    read = {table: datagen.read_table(spark, f"{out}/{table}", fmt) for table in written}
    assert _schemas(read) == _schemas(written)
    assert _every_row(read) == _every_row(written)


def test_writing_again_replaces_the_tables(spark, small, tmp_path):
    out = str(tmp_path / "parquet")
    datagen.write_dataset(small, out, "parquet")
    datagen.write_dataset(datagen.generate(spark, 25, 5, AS_OF, SEED), out, "parquet")
    assert datagen.read_table(spark, f"{out}/truth", "parquet").count() == 25
    assert datagen.read_table(spark, f"{out}/customers", "parquet").count() == 25


@pytest.mark.parametrize("kwargs", [{"n_customers": 0}, {"transactions_per_customer": 0}, {"dirt_rate": -0.1},
                                    {"dirt_rate": 0.9}])
def test_invalid_arguments_are_rejected(spark, kwargs):
    args = {"n_customers": 10, "transactions_per_customer": 5, "as_of": AS_OF, "seed": 1, **kwargs}
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        datagen.generate(spark, **args)


def test_unknown_format_is_rejected(clean, tmp_path):
    with pytest.raises(ValueError, match="format"):
        datagen.write_dataset(clean, str(tmp_path), "json")


def test_sample_data_is_generated_again_where_it_is_not_in_the_configured_format(spark, tmp_path):
    from custseg_sample.sample_data import ensure_sample_data

    from custseg.config import load_config
    from helpers import ROOT

    def conf(fmt: str):
        return load_config(ROOT / "conf" / "local.yaml", [f"sample_data.path={tmp_path}", f"sample_data.format={fmt}",
                                                          "sample_data.customers=12",
                                                          "sample_data.transactions_per_customer=2"], None)

    assert ensure_sample_data(spark, conf("delta"))
    assert (tmp_path / "customers" / "_delta_log").is_dir()
    assert not ensure_sample_data(spark, conf("delta"))  # there, in its format: kept
    assert ensure_sample_data(spark, conf("parquet"))  # an earlier release's Delta sample: written again as Parquet
    assert not any((tmp_path / t / "_delta_log").exists() for t in ("customers", "transactions", "truth"))
    rows = spark.read.parquet(str(tmp_path / "customers")).select("customer_id").collect()
    assert len(rows) >= 12 and not ensure_sample_data(spark, conf("parquet"))
