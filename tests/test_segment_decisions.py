"""Segment decisions a risk officer can sign off: evidence-based tiers, APR bands, the value x risk strategy table
and names that hold on real data. Pure Python with hand-written expectations, one Spark test of segment_risk."""
from __future__ import annotations

from pathlib import Path

import pytest
from chispa import assert_approx_df_equality

from custseg.config import ConfigError, PricingConf, SegmentRules, load_config
from custseg.contract.outputs import PROFILE_KEY_STATS, PROFILE_MEDIANS, PROFILE_SCHEMA, SEGMENT_PROFILES, comments_for
from custseg.ml.describe import (
    BEHAVIOURS,
    NAME_FEATURES,
    STRATEGIES,
    TIERS,
    assess_risk,
    behaviour,
    describe_segments,
    level,
    price_band,
    wilson_interval,
)

ROOT = Path(__file__).resolve().parents[1]
TEST_CONF = ROOT / "conf" / "test.yaml"
UNRATED_ACTION = "standard underwriting, no pre-approval"


def risk_row(segment_id: int, borrowers: int | None, defaulted: int | None = 0, late: int | None = 0,
             **extra) -> dict:
    """A segment_risk row; rates follow from the counts as segment_risk computes them."""
    def rate(events):
        return None if not borrowers else events / borrowers
    return {"segment_id": segment_id, "size": 1000, "share": 0.25, "lapsed_share": 0.1, "borrowers": borrowers,
            "defaulted_borrowers": defaulted if borrowers is not None else None,
            "late_borrowers_12m": late if borrowers is not None else None,
            "default_rate_ever": rate(defaulted), "late_payment_rate_12m": rate(late), **extra}


# ---------------------------------------------------------------------------------------------- Wilson


def test_wilson_interval_equals_a_hand_computation():
    # 5 of 50, z = 1.96: p = 0.1, z^2/n = 0.076829, denominator 1.076829,
    # centre = (0.1 + 0.038415) / 1.076829 = 0.128539,
    # half = 1.96 * sqrt(0.1 * 0.9 / 50 + 3.841459 / 10000) / 1.076829 = 0.085063.
    low, high = wilson_interval(5, 50)
    assert low == pytest.approx(0.043476, abs=1e-6) and high == pytest.approx(0.213602, abs=1e-6)
    # 0 of 30: the interval still has width: [0, z^2 / (n + z^2)] = [0, 3.841459 / 33.841459].
    assert wilson_interval(0, 30) == (0.0, pytest.approx(0.113513, abs=1e-6))
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


@pytest.mark.parametrize("n", [3, 6, 7, 10, 12, 37])
def test_wilson_interval_holds_the_rate_at_no_and_at_every_event(n):
    # Rounding put the lower end of 0 of 3 at 5.6e-17 > 0: the report's error bar had a negative length.
    for events in (0, n):
        low, high = wilson_interval(events, n)
        assert low <= events / n <= high


# ---------------------------------------------------------------------------------------------- tiers


def test_without_loan_data_every_segment_is_unrated_and_says_why():
    rows = [risk_row(s, None, mean_credit_score=score) for s, score in ((0, 820.0), (1, 450.0), (2, None))]
    described = describe_segments(rows, [], [])
    assert [d["risk_tier"] for d in described] == ["unrated"] * 3
    assert {d["tier_reason"] for d in described} == {"no loan data in the inputs"}
    assert {d["credit_action"] for d in described} == {UNRATED_ACTION}
    # Nothing to price on: no band, rather than the base rate that would read as a standard offer.
    assert {(d["apr_low"], d["apr_high"], d["credit_limit_multiplier"]) for d in described} == {(None, None, None)}
    assert all(d["default_rate_ever_ci_low"] is None and d["late_payment_rate_12m_ci_high"] is None for d in described)


def test_too_few_borrowers_is_unrated_whatever_their_rates():
    rules = SegmentRules()
    clean, bad = risk_row(0, 12, defaulted=0, late=0), risk_row(1, 12, defaulted=6, late=9)
    assert assess_risk(clean, rules) == ("unrated", "12 borrowers, fewer than the 30 required")
    assert assess_risk(bad, rules) == ("unrated", "12 borrowers, fewer than the 30 required")
    assert assess_risk(risk_row(2, 0), rules) == ("unrated", "0 borrowers, fewer than the 30 required")
    assert assess_risk(bad, SegmentRules(min_borrowers=10)).tier == "high"  # the configured minimum decides


def test_tiers_from_the_borrower_rates_and_their_intervals():
    rules = SegmentRules()
    # 30 of 200 defaulted: 15.0 %, Wilson 10.71-20.61 %, at or over the 10 % high threshold.
    assert assess_risk(risk_row(0, 200, defaulted=30, late=10), rules) == (
        "high", "200 borrowers: default rate (ever) 15.0 % (95 % CI 10.7-20.6 %) >= 10 %")
    # Late payments alone make a tier: 35 of 100 late (35 %, over 30 %), no default.
    assert assess_risk(risk_row(1, 100, defaulted=0, late=35), rules).tier == "high"
    # 4 of 200 defaulted is 2 % (under 3 %), but its interval reaches 5.0 %: not evidence of low risk.
    assert assess_risk(risk_row(2, 200, defaulted=4, late=10), rules) == (
        "medium", "200 borrowers: default rate (ever) 2.0 % (95 % CI 0.8-5.0 %), interval reaches 3 %")
    # 20 of 2,000 defaulted (1 %, CI 0.6-1.5 %) and 100 late (5 %, CI 4.1-6.0 %): both intervals below.
    low = assess_risk(risk_row(3, 2000, defaulted=20, late=100), rules)
    assert low.tier == "low" and low.reason == (
        "2,000 borrowers: default rate (ever) 1.0 % (95 % CI 0.6-1.5 %), interval below 3 %; "
        "late-payment rate (12m) 5.0 % (95 % CI 4.1-6.0 %), interval below 10 %")
    # No defaults among 30 borrowers is not low either: the interval reaches 11.4 %.
    assert assess_risk(risk_row(4, 30, defaulted=0, late=0), rules).tier == "medium"


def test_with_late_payments_unknown_a_tier_rests_on_the_default_rate_and_is_never_low():
    rules = SegmentRules()
    unknown_late = {"late_borrowers_12m": None, "late_payment_rate_12m": None}
    assert assess_risk({**risk_row(0, 200, defaulted=30), **unknown_late}, rules).tier == "high"
    # A tier from the default rate alone says that the late payments are unknown.
    assert assess_risk({**risk_row(1, 200, defaulted=4), **unknown_late}, rules) == (
        "medium", "200 borrowers: default rate (ever) 2.0 % (95 % CI 0.8-5.0 %), interval reaches 3 %; "
                  "late-payment rate unknown (no loan payments in the inputs)")
    # 20 of 2,000 defaulted is evidence of a low default rate, but nothing is known of late payments.
    assert assess_risk({**risk_row(2, 2000, defaulted=20), **unknown_late}, rules) == (
        "unrated", "2,000 borrowers: default rate (ever) 1.0 % (95 % CI 0.6-1.5 %), interval below 3 %; "
                   "late-payment rate unknown (no loan payments in the inputs)")
    described = describe_segments([{**risk_row(3, 2000, defaulted=20), **unknown_late}], [], [])[0]
    assert described["late_payment_rate_12m_ci_low"] is None and described["late_payment_rate_12m_ci_high"] is None
    assert described["default_rate_ever_ci_high"] > 0


def test_collections_support_is_for_the_borrowers_of_a_segment_mostly_without_loans():
    from custseg.ml.describe import strategy_text

    assert strategy_text("mid", "high", 0.8) == ("collections support: payment plans and financial-health "
                                                  "outreach, no credit offers")
    assert strategy_text("low", "high", 0.03) == (
        "collections support for its borrowers (3% of the segment): payment plans and financial-health outreach; "
        "non-credit engagement for the others; no credit offers")
    assert strategy_text("high", "high", 0.03) == "retention of deposits only, no credit offers"  # not collections


def test_credit_score_never_makes_a_tier():
    rows = [risk_row(0, 2000, defaulted=20, late=100, mean_credit_score=420.0),
            risk_row(1, 2000, defaulted=20, late=100, mean_credit_score=830.0),
            risk_row(2, None, mean_credit_score=830.0), risk_row(3, 5, mean_credit_score=830.0)]
    tiers = [d["risk_tier"] for d in describe_segments(rows, [], [])]
    assert tiers == ["low", "low", "unrated", "unrated"]


# ---------------------------------------------------------------------------------------------- pricing


def test_apr_band_is_base_plus_the_upper_default_rate_times_lgd_within_floor_and_cap():
    pricing = PricingConf()  # base 12 %, LGD 45 %, floor 6 %, cap 36 %, half-width 1 pt
    # 0.12 + 0.20 x 0.45 = 0.21: the band 20-22 %; high risk lowers limits.
    assert price_band("high", 0.20, pricing) == (0.20, 0.22, 0.75)
    # 0.12 + 0.60 x 0.45 = 0.39, capped at 0.36: the band 35-36 %.
    assert price_band("high", 0.60, pricing) == (0.35, 0.36, 0.75)
    # Unrated: the base band whatever the rate, no limit increase.
    assert price_band("unrated", 0.60, pricing) == (0.11, 0.13, 1.0)
    assert price_band("low", 0.0, pricing) == (0.11, 0.13, 1.25)
    # The floor: base 6 % with no expected loss gives 6 % - 1 pt, raised to the 6 % floor.
    at_floor = PricingConf(base_apr=0.06, floor_apr=0.06)
    assert price_band("low", 0.0, at_floor) == (0.06, 0.07, 1.25)


def test_describe_prices_from_the_conservative_end_of_the_interval():
    # 30 of 200: upper end 0.206056; 0.12 + 0.206056 x 0.45 = 0.212725 -> 21.27 % +- 1 pt.
    described = describe_segments([risk_row(0, 200, defaulted=30, late=10)], [], [])[0]
    assert (described["apr_low"], described["apr_high"]) == (0.2027, 0.2227)
    assert described["default_rate_ever_ci_high"] == pytest.approx(0.206056, abs=1e-6)


@pytest.mark.parametrize(("override", "message"), [
    ("pricing.limit_multiplier.high=1.2",
     "config: pricing.limit_multiplier.high must be below 1 (a high-risk segment gets lower limits), got 1.2"),
    ("pricing.limit_multiplier.unrated=1.1",
     "config: pricing.limit_multiplier.unrated must be at most 1 (no limit increase without evidence), got 1.1"),
    ("pricing.base_apr=0.5", "config: pricing.base_apr must be within floor_apr and cap_apr (0.06-0.36), got 0.5"),
    ("pricing.base_aprr=0.1", "config: unknown key pricing.base_aprr; did you mean pricing.base_apr?"),
    ("segment_rules.medium_risk.default_rate=0.2",
     "config: segment_rules.medium_risk.default_rate must be at most high_risk.default_rate (0.1), got 0.2"),
    ("segment_rules.high_risk.credit_score_below=600",
     "config: unknown key segment_rules.high_risk.credit_score_below; valid keys: default_rate, late_payment_rate"),
])
def test_pricing_and_rules_refuse_unsafe_values(override, message):
    with pytest.raises(ConfigError) as caught:
        load_config(TEST_CONF, [override])
    assert str(caught.value) == message


# ---------------------------------------------------------------------------------------------- strategy


GROWTH_WORDS = ("upsell", "cross-sell:", "pre-approv", "card", "higher limit")


def test_the_strategy_table_covers_every_behaviour_and_tier():
    assert set(STRATEGIES) == {(b, t) for b in BEHAVIOURS for t in TIERS}


def test_no_high_risk_segment_gets_a_credit_offer_whatever_its_value():
    for kind in BEHAVIOURS:
        strategy = STRATEGIES[(kind, "high")]
        assert not strategy.offers_credit and "no credit offers" in strategy.text, kind
        assert not any(word in strategy.text for word in GROWTH_WORDS), kind


def test_only_evidence_of_low_risk_allows_a_credit_offer():
    offering = {key for key, strategy in STRATEGIES.items() if strategy.offers_credit}
    assert offering == {("high", "low"), ("mid", "low"), ("new", "low")}
    for kind in BEHAVIOURS:
        assert "after underwriting" in STRATEGIES[(kind, "unrated")].text, kind
    assert STRATEGIES[("lapsed", "low")].text.startswith("reactivation")
    assert STRATEGIES[("new", "unrated")].text.startswith("onboarding")


def test_the_documented_table_is_the_table_in_the_code():
    rows = {"high value": "high", "mid value": "mid", "low value": "low", "lapsed": "lapsed", "new": "new"}
    documented = {}
    for line in (ROOT / "docs" / "model.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] in rows:
            documented.update({(rows[cells[0]], tier): text for tier, text in zip(("low", "medium", "unrated", "high"),
                                                                                   cells[1:], strict=True)})
    assert documented == {key: strategy.text for key, strategy in STRATEGIES.items()}


def test_a_high_value_high_risk_segment_keeps_deposits_only():
    medians = {0: {"monetary": 9000.0, "frequency": 40.0, "tenure_days": 2000.0}}
    population = {"monetary": (100.0, 500.0, 2000.0), "frequency": (2.0, 8.0, 20.0),
                  "tenure_days": (300.0, 900.0, 1800.0)}
    row = describe_segments([risk_row(0, 500, defaulted=80, late=200)], [], [], medians=medians,
                            population=population)[0]
    assert (row["segment_name"], row["risk_tier"]) == ("High value, frequent", "high")
    assert row["marketing_strategy"] == "retention of deposits only, no credit offers"
    assert row["credit_action"].startswith("manual review") and row["credit_limit_multiplier"] < 1


# ---------------------------------------------------------------------------------------------- names


# Real purchase data: most customers bought nothing in the lookback year, so the population's first two
# quartiles of spend and purchases are 0.
POPULATION = {"monetary": (0.0, 0.0, 350.0), "frequency": (0.0, 0.0, 6.0), "tenure_days": (400.0, 900.0, 1800.0)}


def test_a_dormant_majority_is_named_lapsed_and_a_small_big_spender_as_such():
    rows = [{**risk_row(0, None), "share": 0.70, "lapsed_share": 0.90},
            {**risk_row(1, None), "share": 0.05, "lapsed_share": 0.0},
            {**risk_row(2, None), "share": 0.20, "lapsed_share": 0.2},
            {**risk_row(3, None), "share": 0.05, "lapsed_share": 0.6}]
    medians = {0: {"monetary": 0.0, "frequency": 0.0, "tenure_days": 1500.0},
               1: {"monetary": 4800.0, "frequency": 40.0, "tenure_days": 1200.0},
               2: {"monetary": 150.0, "frequency": 3.0, "tenure_days": 900.0},
               3: {"monetary": 0.0, "frequency": 0.0, "tenure_days": 60.0}}
    z_rows = [(0, "monetary", -0.3), (1, "monetary", 4.2), (2, "monetary", 0.1), (3, "monetary", -0.3)]
    described = {d["segment_id"]: d for d in describe_segments(rows, z_rows, ["monetary"], medians=medians,
                                                                population=POPULATION)}
    assert {s: d["segment_name"] for s, d in described.items()} == {
        0: "Low value, lapsed", 1: "High value, frequent", 2: "Mid value, regular",
        3: "Low value, no purchase yet, new"}
    assert described[0]["marketing_strategy"].startswith("reactivation")
    assert described[3]["marketing_strategy"].startswith("onboarding")
    assert described[0]["median_monetary"] == 0.0 and described[1]["median_frequency"] == 40.0
    assert all("risk" not in d["segment_name"] for d in described.values())  # the tier is its own column


def test_levels_compare_the_median_with_the_population_quartiles_ties_included():
    assert [level(m, (10.0, 20.0, 30.0)) for m in (5.0, 10.0, 20.0, 29.0, 30.0, None)] == [
        "low", "low", "mid", "mid", "high", "mid"]
    # Three quarters at 0: a median of 0 is typical (mid), any spend puts a segment in the top quarter.
    assert [level(m, (0.0, 0.0, 0.0)) for m in (0.0, 5.0)] == ["mid", "high"]
    assert level(5.0, (None, None, None)) == "mid"  # a feature that is all null names nothing


def test_lapsed_follows_the_configured_share_and_net_spend_of_zero_is_low_value():
    medians = {"monetary": 0.0, "frequency": 2.0, "tenure_days": 700.0}
    assert behaviour(medians, 0.45, POPULATION, SegmentRules()).name == "Low value, regular"
    assert behaviour(medians, 0.45, POPULATION, SegmentRules(lapsed_share=0.4)).name == "Low value, lapsed"
    assert behaviour(medians, 0.45, POPULATION, SegmentRules(new_tenure_days=700)).name == "Low value, regular, new"


def test_a_median_of_one_purchase_is_one_time_not_a_level_against_the_others():
    # Quartiles of 1, 1, 1 (most bought once, as in a bank's short export) or 0, 0, 6: one purchase is no pattern.
    once = {"monetary": 120.0, "frequency": 1.0, "tenure_days": 60.0}
    for population in (POPULATION, {**POPULATION, "frequency": (1.0, 1.0, 1.0)}):
        assert behaviour(once, 0.1, population, SegmentRules()).name.endswith("value, one-time, new")
    assert behaviour(once, 0.6, POPULATION, SegmentRules()).activity == "lapsed"  # lapsed comes first
    twice = {**once, "frequency": 2.0}
    assert behaviour(twice, 0.1, {**POPULATION, "frequency": (1.0, 1.0, 1.0)}, SegmentRules()).activity == "frequent"


def test_equal_behaviours_get_unique_names():
    rows = [risk_row(0, None), risk_row(1, None)]
    same = {"monetary": 150.0, "frequency": 3.0, "tenure_days": 900.0}
    z_rows = [(0, "n_loans", 0.5), (1, "n_loans", -0.6)]
    names = [d["segment_name"] for d in describe_segments(rows, z_rows, ["n_loans"], medians={0: same, 1: same},
                                                          population=POPULATION)]
    assert names == ["Mid value, regular (higher n_loans)", "Mid value, regular (lower n_loans)"]


# ---------------------------------------------------------------------------------------------- the contract


def test_every_profile_column_is_described_and_written():
    columns = [f.name for f in PROFILE_SCHEMA.fields]
    assert [c for c in columns if c not in comments_for(SEGMENT_PROFILES)] == []
    assert PROFILE_MEDIANS == NAME_FEATURES
    row = describe_segments([risk_row(0, 200, defaulted=30, late=10, max_dpd=120, mean_credit_score=640.0,
                                      mean_distance_to_centroid=1.5, borrower_share=0.2)], [], [])[0]
    flow_adds = {f"mean_{f}" for f in PROFILE_KEY_STATS}  # train_segments adds the means from feature_stats
    assert {c for c in columns if c not in row} == flow_adds
    assert not {"default_rate", "late_payment_rate"} & set(columns)  # renamed: each says its window


# ---------------------------------------------------------------------------------------------- Spark


RISK_INPUT_SCHEMA = ("customer_id string, segment_id int, n_loans long, has_default long, late_payments_12m long, "
                     "frequency long, max_dpd long, credit_score double, distance_to_centroid double")
RISK_OUTPUT_SCHEMA = ("segment_id int, size long, share double, lapsed_share double, borrower_share double, "
                      "borrowers long, defaulted_borrowers long, default_rate_ever double, late_borrowers_12m long, "
                      "late_payment_rate_12m double, max_dpd long, mean_credit_score double, "
                      "mean_distance_to_centroid double")


def test_segment_risk_counts_and_rates_over_borrowers_only(spark):
    from custseg.transforms.statistics import segment_risk

    scored_df = spark.createDataFrame([
        # segment 0: three borrowers (one defaulted, two late) and one customer without a loan
        ("A1", 0, 2, 1, 3, 0, 120, 500.0, 1.0),
        ("A2", 0, 1, 0, 1, 5, 10, 700.0, 2.0),
        ("A3", 0, 0, 0, 0, 0, 0, None, 3.0),
        ("A4", 0, 1, 0, 0, None, 0, 600.0, 2.0),   # frequency unknown: not counted as lapsed or not
        # segment 1: no loan data at all (n_loans null): counts and rates null, not 0
        ("B1", 1, None, None, None, 3, None, 800.0, 0.5),
        ("B2", 1, None, None, None, 0, None, 820.0, 1.5),
        ("B3", 1, None, None, None, None, None, None, 1.0),
        # segment 2: loan data, no borrower: 0 borrowers, rates undefined
        ("C1", 2, 0, 0, 0, 2, 0, 650.0, 0.0),
    ], RISK_INPUT_SCHEMA)
    expected_df = spark.createDataFrame([
        (0, 4, 4 / 8, 2 / 3, 3 / 4, 3, 1, 1 / 3, 2, 2 / 3, 120, 600.0, 2.0),
        (1, 3, 3 / 8, 1 / 2, None, None, None, None, None, None, None, 810.0, 1.0),
        (2, 1, 1 / 8, 0.0, 0.0, 0, 0, None, 0, None, 0, 650.0, 0.0),
    ], RISK_OUTPUT_SCHEMA)
    assert_approx_df_equality(segment_risk(scored_df), expected_df, precision=1e-12, ignore_nullable=True,
                              ignore_row_order=True)


def test_segment_risk_without_a_loans_table_has_no_borrower_evidence(spark):
    """build_features fills the loan features of a run without a loans table with 0: the flow says so."""
    from custseg.transforms.statistics import segment_risk

    scored_df = spark.createDataFrame([("A1", 0, 0, 0, 0, 4, 0, 700.0, 1.0), ("A2", 0, 0, 0, 0, 0, 0, None, 3.0)],
                                      RISK_INPUT_SCHEMA)
    expected_df = spark.createDataFrame([(0, 2, 1.0, 0.5, None, None, None, None, None, None, None, 700.0, 2.0)],
                                        RISK_OUTPUT_SCHEMA)
    assert_approx_df_equality(segment_risk(scored_df, has_loan_data=False), expected_df, precision=1e-12,
                              ignore_nullable=True)


def test_segment_risk_with_loans_but_no_payments_has_no_late_payment_evidence(spark):
    """Loans without a loan_payments table: defaults from the loans' statuses, late payments unknown (null)."""
    from custseg.transforms.statistics import segment_risk

    scored_df = spark.createDataFrame([("B1", 0, 1, 1, None, 4, None, 700.0, 1.0),
                                       ("B2", 0, 2, 0, None, 0, None, 650.0, 3.0),
                                       ("N1", 0, 0, 0, None, 2, None, None, 2.0)], RISK_INPUT_SCHEMA)
    expected_df = spark.createDataFrame([(0, 3, 1.0, 1 / 3, 2 / 3, 2, 1, 0.5, None, None, None, 675.0, 2.0)],
                                        RISK_OUTPUT_SCHEMA)
    assert_approx_df_equality(segment_risk(scored_df), expected_df, precision=1e-12, ignore_nullable=True)


def test_population_quartiles_over_all_customers(spark):
    from custseg.transforms.statistics import population_quartiles

    df = spark.createDataFrame([(float(v), None) for v in range(1, 101)], "monetary double, frequency double")
    assert population_quartiles(df, ("monetary", "frequency")) == {
        "monetary": (25.0, 50.0, 75.0), "frequency": (None, None, None)}


def test_a_feature_unknown_in_a_segment_does_not_describe_it():
    rows = [risk_row(0, 2000, defaulted=20, late=100), risk_row(1, 2000, defaulted=20, late=100)]
    z_rows = [(0, "avg_ticket", 1.5), (0, "frequency", 0.4), (1, "avg_ticket", None), (1, "frequency", -2.0)]
    described = describe_segments(rows, z_rows, ["avg_ticket", "frequency"])
    assert described[0]["distinguishing_features"] == "avg_ticket +1.5 sd; frequency +0.4 sd"
    assert described[1]["distinguishing_features"] == "frequency -2.0 sd"
