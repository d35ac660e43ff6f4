"""The fairness audit (transforms/fairness.py): hand-computed counts, shares and disparity ratios, suppression of
small groups, age bands from birth dates, and the audit of the golden run."""
from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from custseg.contract import outputs
from custseg.contract.features import FEATURES
from custseg.transforms.attributes import AgeSource, age_band, attribute_groups
from custseg.transforms.fairness import audited_attributes, fairness_audit
from golden import AS_OF

DECISIONS = {0: ("prime", "low"), 1: ("steady", "medium"), 2: ("stressed", "high")}


def assignments(spark, segments: list[int]):
    return spark.createDataFrame([(f"C{i:03d}", s, *DECISIONS[s]) for i, s in enumerate(segments)],
                                 "customer_id string, segment_id int, segment_name string, risk_tier string")


def groups(spark, attribute: str, values: list[str]):
    return spark.createDataFrame([(f"C{i:03d}", attribute, v) for i, v in enumerate(values)],
                                 "customer_id string, attribute string, group string")


def overall(audit_df) -> dict[str, dict]:
    return {r["group"]: r.asDict() for r in audit_df.filter(F.col("segment_id").isNull()).collect()}


def test_four_fifths_rule_on_hand_counted_groups(spark):
    # 60 customers of group a: 30 in the low-tier segment, 20 medium, 10 high; 40 of group b: 10 low, 10 medium,
    # 20 high. Favourable shares 0.5 and 0.25: ratio 0.5 for b, flagged; adverse 1/6 and 0.5.
    segments = [0] * 30 + [1] * 20 + [2] * 10 + [0] * 10 + [1] * 10 + [2] * 20
    values = ["a"] * 60 + ["b"] * 40
    audit = overall(fairness_audit(groups(spark, "sex", values), assignments(spark, segments), min_group_size=20))
    assert audit["a"]["customers"] == 60 and audit["b"]["customers"] == 40
    assert audit["a"]["share"] == pytest.approx(0.6) and audit["b"]["share"] == pytest.approx(0.4)
    assert audit["a"]["favourable_share"] == pytest.approx(0.5)
    assert audit["b"]["favourable_share"] == pytest.approx(0.25)
    assert audit["a"]["adverse_share"] == pytest.approx(10 / 60)
    assert audit["b"]["adverse_share"] == pytest.approx(0.5)
    assert audit["a"]["disparity_ratio"] == pytest.approx(1.0) and not audit["a"]["is_flagged"]
    assert audit["b"]["disparity_ratio"] == pytest.approx(0.5) and audit["b"]["is_flagged"]
    # spared an adverse action: 5/6 and 1/2 -> b at 0.6 of a
    assert audit["a"]["adverse_disparity_ratio"] == pytest.approx(1.0)
    assert audit["b"]["adverse_disparity_ratio"] == pytest.approx(0.5 / (50 / 60))


def test_adverse_actions_alone_can_flag_a_group(spark):
    # No favourable segment; 4 of 20 of a and 10 of 20 of b in the high tier: spared 0.8 and 0.5 -> b at 0.625.
    segments = [2] * 4 + [1] * 16 + [2] * 10 + [1] * 10
    audit = overall(fairness_audit(groups(spark, "sex", ["a"] * 20 + ["b"] * 20), assignments(spark, segments),
                                   min_group_size=20))
    assert audit["b"]["disparity_ratio"] is None
    assert audit["b"]["adverse_disparity_ratio"] == pytest.approx(0.625) and audit["b"]["is_flagged"]
    assert not audit["a"]["is_flagged"]


def test_equal_treatment_is_not_flagged_and_segment_rows_give_the_composition(spark):
    segments = ([0] * 20 + [1] * 20) * 2
    values = ["a"] * 40 + ["b"] * 40
    audit_df = fairness_audit(groups(spark, "sex", values), assignments(spark, segments), min_group_size=20)
    assert {g: r["disparity_ratio"] for g, r in overall(audit_df).items()} == {"a": 1.0, "b": 1.0}
    assert not any(r["is_flagged"] for r in audit_df.collect())
    in_prime = {r["group"]: (r["customers"], r["share"], r["segment_name"])
                for r in audit_df.filter(F.col("segment_id") == 0).collect()}
    assert in_prime == {"a": (20, 0.5, "prime"), "b": (20, 0.5, "prime")}


def test_a_group_below_the_minimum_is_suppressed_not_shown(spark):
    segments = [0] * 25 + [2] * 25 + [2] * 5
    values = ["a"] * 50 + ["c"] * 5
    audit = overall(fairness_audit(groups(spark, "marital_status", values), assignments(spark, segments),
                                   min_group_size=20))
    assert audit["c"]["is_suppressed"]
    hidden = ("customers", "share", "favourable_share", "adverse_share", "disparity_ratio", "adverse_disparity_ratio")
    assert [audit["c"][k] for k in hidden] == [None] * 6
    assert not audit["c"]["is_flagged"]
    assert audit["a"]["customers"] == 50 and not audit["a"]["is_suppressed"]


@pytest.mark.parametrize("tier", ["medium", "unrated"])
def test_no_favourable_nor_adverse_action_gives_no_ratio_rather_than_parity(spark, tier):
    # Everyone in one segment, neither low nor high: no group met either action, so no ratio compares them.
    decided = assignments(spark, [1] * 40).withColumn("risk_tier", F.lit(tier))
    audit = overall(fairness_audit(groups(spark, "sex", ["a"] * 20 + ["b"] * 20), decided, min_group_size=20))
    assert [audit[g]["disparity_ratio"] for g in "ab"] == [None, None]
    assert [audit[g]["adverse_disparity_ratio"] for g in "ab"] == [None, None]
    assert [audit[g]["adverse_share"] for g in "ab"] == [0.0, 0.0]
    assert not audit["a"]["is_flagged"] and not audit["b"]["is_flagged"]


def test_birth_dates_become_age_bands_at_the_as_of_date_and_duplicates_one_group(spark):
    as_of = dt.date(2026, 1, 1)
    customers_df = spark.createDataFrame([
        ("C1", "2001-01-01", " F "), ("C2", "2001-01-02", "M"), ("C3", None, ""), ("C3", "1950-06-30", "M"),
        ("C4", "1930-01-01", None),
    ], "Customer_ID string, Birth_Date string, SEX string")
    attributes = audited_attributes(customers_df.columns, ("birth_date", "sex", "religion"))
    assert attributes == {"sex": "SEX", "age_band": AgeSource("Birth_Date", is_birth_date=True)}
    rows = {(r["customer_id"], r["attribute"]): r["group"]
            for r in attribute_groups(customers_df, "Customer_ID", attributes, as_of).collect()}
    assert rows == {("C1", "age_band"): "25-34", ("C2", "age_band"): "18-24", ("C3", "age_band"): "65+",
                    ("C4", "age_band"): "65+", ("C1", "sex"): "F", ("C2", "sex"): "M", ("C3", "sex"): "M",
                    ("C4", "sex"): "unknown"}


def test_a_mapped_birth_date_in_the_tables_date_format_gives_age_bands(spark):
    # birth_date held in CustomerDOB (inputs.customers.columns) as d/M/yyyy text, as in a bank's CSV export.
    customers_df = spark.createDataFrame([("C1", "1/1/2001", "F"), ("C2", "2/1/2001", "M"), ("C3", "31/12/1960", "M"),
                                          ("C4", "1/1/1800", "F"), ("C5", "n/a", "F")],
                                         "CustomerID string, CustomerDOB string, CustGender string")
    mapped = {"customer_id": "CustomerID", "birth_date": "CustomerDOB"}
    attributes = audited_attributes(customers_df.columns, ("birth_date", "custgender"), mapped)
    assert attributes == {"custgender": "CustGender", "age_band": AgeSource("CustomerDOB", is_birth_date=True)}
    groups_df = attribute_groups(customers_df, "CustomerID", attributes, dt.date(2026, 1, 1), "d/M/yyyy")
    bands = {r["customer_id"]: r["group"] for r in groups_df.filter("attribute = 'age_band'").collect()}
    assert bands == {"C1": "25-34", "C2": "18-24", "C3": "65+", "C4": "unknown", "C5": "unknown"}


def test_a_two_digit_birth_year_after_the_as_of_date_is_read_a_century_earlier(spark):
    customers_df = spark.createDataFrame([("C1", "10/1/94"), ("C2", "1/1/05"), ("C3", "1/1/30"), ("C4", "2/1/26")],
                                         "id string, dob string")
    groups_df = attribute_groups(customers_df, "id", {"age_band": AgeSource("dob", is_birth_date=True)},
                                 dt.date(2026, 1, 1), "d/M/yy")
    # 1994, 2005, 1930 (2030 is not yet), 1926 (born the day after the as-of date in 2026, so not yet)
    assert {r["customer_id"]: r["group"] for r in groups_df.collect()} == {
        "C1": "25-34", "C2": "18-24", "C3": "65+", "C4": "65+"}


def test_an_age_in_years_becomes_a_band_and_a_tables_own_age_band_stays_as_it_is(spark):
    customers_df = spark.createDataFrame([("C1", "34", "26-35", "1990-01-01"), ("C2", " 70 ", "65+", None)],
                                         "id string, AGE string, age_band string, birth_date string")
    ages = audited_attributes(customers_df.columns, ("age",))
    assert ages == {"age_band": AgeSource("AGE", is_birth_date=False)}
    own = audited_attributes(customers_df.columns, ("birth_date", "age_band"))
    assert own == {"age_band": "age_band"}  # the table's own bands, not one derived from the birth date
    as_of = dt.date(2026, 1, 1)
    assert {r["id"]: r["group"] for r in attribute_groups(customers_df, "id", ages, as_of)
            .withColumnRenamed("customer_id", "id").collect()} == {"C1": "25-34", "C2": "65+"}
    assert {r["id"]: r["group"] for r in attribute_groups(customers_df, "id", own, as_of)
            .withColumnRenamed("customer_id", "id").collect()} == {"C1": "26-35", "C2": "65+"}


def test_age_band_edges(spark):
    ages = [None, -1, 0, 17, 18, 24, 25, 44, 45, 64, 65, 101, 120, 121, 226]
    df = spark.createDataFrame([(a,) for a in ages], "age int").select(age_band(F.col("age")).alias("band"))
    assert [r["band"] for r in df.collect()] == ["unknown", "unknown", "under 18", "under 18", "18-24", "18-24",
                                                 "25-34", "35-44", "45-54", "55-64", "65+", "65+", "65+", "unknown",
                                                 "unknown"]


def test_the_generators_planted_age_disparity_is_flagged_and_independent_sex_is_not(spark, golden):
    # The generator draws sex independently of the persona and age from persona-specific ranges: the
    # credit-stressed persona (high tier) is 25-55, the affluent and retired ones (no adverse action) older.
    overall_df = golden.table(spark, outputs.FAIRNESS_AUDIT, AS_OF).filter(F.col("segment_id").isNull())
    flagged = {(r["attribute"], r["group"]) for r in overall_df.filter("is_flagged").collect()}
    assert flagged and {attribute for attribute, _ in flagged} == {"age_band"}
    # an independent computation of the spared-adverse ratio of sex from the assignments and profiles
    tiers = {r["segment_id"]: r["risk_tier"] for r in golden.table(spark, outputs.SEGMENT_PROFILES, AS_OF).collect()}
    segment = {r["customer_id"]: r["segment_id"] for r in golden.table(spark, outputs.SEGMENT_ASSIGNMENTS, AS_OF)
               .filter(f"run_id = '{golden.train.run_id}'").collect()}
    customers = golden.input(spark, "customers").collect()
    sex = {r["customer_id"]: r["sex"] for r in customers if r["customer_id"] in segment}
    spared = {g: sum(tiers[segment[c]] != "high" for c, s in sex.items() if s == g) / sum(s == g for s in sex.values())
              for g in set(sex.values())}
    ratios = {r["group"]: r["adverse_disparity_ratio"] for r in overall_df.filter("attribute = 'sex'").collect()}
    assert ratios == pytest.approx({g: v / max(spared.values()) for g, v in spared.items()})
    assert min(ratios.values()) >= 0.8


def test_the_golden_runs_audit_keeps_protected_attributes_out_of_every_other_output(spark, golden):
    audit_df = golden.table(spark, outputs.FAIRNESS_AUDIT, AS_OF)
    assert {r["attribute"] for r in audit_df.collect()} == {"sex", "age_band"}
    overall_rows = audit_df.filter(F.col("segment_id").isNull())
    sex_customers = overall_rows.filter(F.col("attribute") == "sex").agg(F.sum("customers")).first()[0]
    assignments_n = golden.table(spark, outputs.SEGMENT_ASSIGNMENTS, AS_OF).count()
    assert sex_customers == assignments_n
    for table in outputs.OUTPUT_TABLES:
        if table != outputs.FAIRNESS_AUDIT:
            columns = {c.casefold() for c in golden.table(spark, table).columns}
            assert not columns & {"sex", "birth_date", "age_band"}, table
    assert not {"sex", "birth_date"} & set(FEATURES)
