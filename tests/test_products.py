"""Product opportunities, spend mix and who the customers are (ml/opportunities.py, transforms/products.py,
transforms/characteristics.py): hand-computed penetration, lift, neighbours and scores; the risk rules on credit
products; the products input's validation and its point-in-time holdings."""
from __future__ import annotations

import datetime as dt

import pytest
from test_validation import check, reasons

from custseg.config import ProductsConf
from custseg.contract import outputs
from custseg.contract.inputs import PRODUCTS
from custseg.ml.opportunities import is_credit_product, nearest_segments, product_opportunities
from custseg.transforms.characteristics import segment_characteristics
from custseg.transforms.features import SPEND_BY_CATEGORY_TYPE, products_held
from custseg.transforms.products import product_holders
from golden import AS_OF as GOLDEN_AS_OF

AS_OF = dt.date(2026, 1, 1)
# Three segments on a line: 0 and 1 close, 2 far from both. Sizes 100, 200, 50.
CENTERS = {0: [0.0, 0.0], 1: [1.0, 0.0], 2: [5.0, 0.0]}
SIZES = {0: 100, 1: 200, 2: 50}
HOLDERS = [(0, "savings", 10), (1, "savings", 160), (2, "savings", 40),
           (0, "credit_card", 5), (1, "credit_card", 150), (2, "credit_card", 10)]


def by_key(rows):
    return {(r["segment_id"], r["product"]): r for r in rows}


def test_penetration_lift_neighbours_and_scores_by_hand():
    conf = ProductsConf(neighbour_segments=1, min_gap=0.1)
    rows = by_key(product_opportunities(HOLDERS, SIZES, CENTERS, {0: "low", 1: "low", 2: "low"}, conf))
    savings = rows[(0, "savings")]
    assert savings["penetration"] == pytest.approx(0.10)
    assert savings["population_penetration"] == pytest.approx(210 / 350)
    assert savings["lift"] == pytest.approx(0.10 / (210 / 350))
    # Segment 0's nearest is 1 (distance 1); segment 1's is 0; segment 2's is 1 (distance 4 against 5).
    assert savings["neighbour_segments"] == "1" and rows[(2, "savings")]["neighbour_segments"] == "1"
    assert savings["neighbour_penetration"] == pytest.approx(0.80)
    assert savings["gap"] == pytest.approx(0.70)
    assert savings["opportunity_score"] == pytest.approx(70.0)  # 0.7 x 100 customers
    assert savings["is_recommended"] and savings["rank"] == 2  # credit card: 0.75 - 0.05 = 0.70 x 100 = 70, tie
    card = rows[(0, "credit_card")]
    assert card["opportunity_score"] == pytest.approx(70.0) and card["rank"] == 1  # ties ranked by product name
    assert "offer credit card: 5 % hold it against 75 % in the nearest segments (segment 1)" in card["recommendation"]
    # Segment 1 holds more than its neighbour: no gap, no score, not recommended.
    assert rows[(1, "savings")]["gap"] == pytest.approx(0.10 - 0.80)
    assert rows[(1, "savings")]["opportunity_score"] == 0.0 and rows[(1, "savings")]["rank"] is None
    assert rows[(1, "savings")]["recommendation"].startswith("no gap")
    # Segment 2 (savings 80 %) against 1 (80 %): a gap of 0 is below min_gap.
    assert not rows[(2, "savings")]["is_recommended"]


def test_neighbours_are_pooled_over_their_customers():
    conf = ProductsConf(neighbour_segments=2)
    rows = by_key(product_opportunities(HOLDERS, SIZES, CENTERS, {0: "low", 1: "low", 2: "low"}, conf))
    # Segment 0's two neighbours are 1 and 2: (160 + 40) / (200 + 50) holders of savings.
    assert rows[(0, "savings")]["neighbour_segments"] == "1, 2"
    assert rows[(0, "savings")]["neighbour_penetration"] == pytest.approx(200 / 250)


def test_credit_products_follow_the_risk_tier():
    conf = ProductsConf(neighbour_segments=1)
    tiers = {0: "high", 1: "low", 2: "unrated"}
    rows = by_key(product_opportunities(HOLDERS, SIZES, CENTERS, tiers, conf, {1: "Steady savers"}))
    high_card = rows[(0, "credit_card")]
    assert high_card["is_credit_product"] and not high_card["is_recommended"] and high_card["rank"] is None
    assert high_card["recommendation"].startswith("not offered: a credit product and the segment is high risk")
    assert high_card["opportunity_score"] == pytest.approx(70.0)  # the gap is still reported
    assert rows[(0, "savings")]["is_recommended"] and rows[(0, "savings")]["rank"] == 1  # non-credit: offered
    unrated_card = rows[(2, "credit_card")]  # 20 % against 75 % in segment 1
    assert unrated_card["is_recommended"]
    assert unrated_card["recommendation"].endswith("only after underwriting (risk unrated)")
    assert "(Steady savers)" in unrated_card["recommendation"]


def test_one_segment_has_nothing_to_compare_with():
    rows = product_opportunities([(0, "savings", 3)], {0: 10}, {0: [0.0]}, {0: "low"}, ProductsConf())
    assert rows[0]["neighbour_penetration"] is None and not rows[0]["is_recommended"]
    assert rows[0]["recommendation"] == "no other segment to compare with"


def test_credit_products_are_recognised_by_name():
    terms = ProductsConf().credit_product_terms
    assert all(is_credit_product(p, terms) for p in ("credit_card", "Personal Loan", "mortgage", "overdraft"))
    assert not any(is_credit_product(p, terms) for p in ("savings", "current_account", "investment", "debit_card"))
    assert nearest_segments(CENTERS, 5) == {0: [1, 2], 1: [0, 2], 2: [1, 0]}


def test_products_input_rules(spark):
    raw_df = spark.createDataFrame([
        ("C1", "savings", "2024-01-01", None),
        ("C1", "savings", "2024-01-01", "2025-01-01"),   # same key
        ("C2", "mortgage", "2024-06-01", "2024-05-01"),  # closed before it was opened
        ("C3", None, "2024-06-01", None),
    ], "customer_id string, product string, opened_date string, closed_date string")
    from custseg.config import InputConf
    checked = {(r["customer_id"], r["_reason"], r["_detail"])
               for r in reasons(check(raw_df, PRODUCTS, InputConf("products", "unused", "csv")), "customer_id")
               .collect()}
    assert checked == {("C1", None, None), ("C1", "duplicate_key", "customer_id,product,opened_date"),
                       ("C2", "out_of_range", "closed_date"), ("C3", "missing_required_value", "product")}


def test_holdings_are_point_in_time(spark):
    products_df = spark.createDataFrame([
        ("C1", " Savings ", dt.date(2024, 1, 1), None),
        ("C1", "credit_card", dt.date(2024, 1, 1), dt.date(2025, 12, 31)),  # closed before the as-of date
        ("C1", "mortgage", dt.date(2024, 1, 1), AS_OF),                    # closed on it: still held the day before
        ("C2", "investment", AS_OF, None),                                # opened on it: not yet
        ("C2", "savings", dt.date(2025, 12, 31), None),
    ], "customer_id string, product string, opened_date date, closed_date date")
    held = {r["customer_id"]: r["products_held"] for r in products_held(products_df, AS_OF).collect()}
    assert held == {"C1": ["mortgage", "savings"], "C2": ["savings"]}


def test_holders_and_characteristics_by_hand(spark):
    features_df = spark.createDataFrame([
        ("A", ["savings"], [("groceries", 100.0), ("travel", 300.0)], 1.0),
        ("B", [], [("groceries", 100.0)], 0.0),
        ("C", ["savings", "mortgage"], [("groceries", 400.0)], None),
        ("D", None, [], 0.5),  # no segment: left out
    ], f"customer_id string, products_held array<string>, spend_by_category {SPEND_BY_CATEGORY_TYPE}, "
       "digital_share double")
    assignments_df = spark.createDataFrame([("A", 0), ("B", 0), ("C", 1)], "customer_id string, segment_id int")
    assert product_holders(features_df, assignments_df) == [(0, "savings", 1), (1, "mortgage", 1),
                                                            (1, "savings", 1)]
    groups_df = spark.createDataFrame([("A", "region", "north"), ("B", "region", "south"), ("C", "region", "north")],
                                      "customer_id string, attribute string, group string")
    rows = {(r["aspect"], r["segment_id"], r["value"]): r.asDict()
            for r in segment_characteristics(features_df, assignments_df, groups_df, min_customers=1).collect()}
    travel = rows[("spend_category", 0, "travel")]
    # Segment 0 spent 500, 300 on travel; all customers 900, 300 on travel.
    assert travel["amount"] == 300.0 and travel["customers"] == 1
    assert travel["share"] == pytest.approx(0.6) and travel["population_share"] == pytest.approx(1 / 3)
    assert travel["lift"] == pytest.approx(1.8)
    assert rows[("spend_category", 1, "groceries")]["share"] == pytest.approx(1.0)
    assert rows[("spend_category", 1, "groceries")]["population_share"] == pytest.approx(600 / 900)
    digital = rows[("channel", 0, "digital")]  # mean of 1.0 and 0.0; C's is unknown
    assert digital["share"] == pytest.approx(0.5) and digital["population_share"] == pytest.approx(0.5)
    assert digital["customers"] == 2 and ("channel", 1, "digital") not in rows
    north = rows[("region", 0, "north")]
    assert north["customers"] == 1 and north["share"] == pytest.approx(0.5) and north["amount"] is None
    assert north["population_share"] == pytest.approx(2 / 3) and north["lift"] == pytest.approx(0.75)
    assert ("region", 2, "north") not in rows and not [k for k in rows if k[1] is None]
    # By default a share with fewer than 30 customers behind it does not describe a segment: its lift is unknown.
    assert {r["lift"] for r in segment_characteristics(features_df, assignments_df, groups_df).collect()} == {None}


# ------------------------------------------------------------------------------ on the golden run

def persona_segments(spark, golden) -> dict[str, int]:
    """persona -> the segment holding most of its customers on the training date."""
    joined = (golden.table(spark, outputs.SEGMENT_ASSIGNMENTS, GOLDEN_AS_OF)
              .join(golden.input(spark, "truth"), on="customer_id").groupBy("persona", "segment_id").count()
              .collect())
    best: dict[str, tuple[int, int]] = {}
    for r in joined:
        if r["count"] > best.get(r["persona"], (-1, -1))[0]:
            best[r["persona"]] = (r["count"], r["segment_id"])
    return {persona: segment for persona, (_, segment) in best.items()}


def golden_rows(spark, golden, table):
    return [r.asDict() for r in golden.table(spark, table, GOLDEN_AS_OF).collect()]


def test_the_planted_product_gaps_are_found(spark, golden):
    segments = persona_segments(spark, golden)
    rows = by_key(golden_rows(spark, golden, outputs.SEGMENT_PRODUCT_OPPORTUNITIES))
    tiers = {r["segment_id"]: r["risk_tier"] for r in golden_rows(spark, golden, outputs.SEGMENT_PROFILES)}
    # The young hold savings far less than the segments nearest to them: offered, and first or second.
    savings = rows[(segments["young_frequent"], "savings")]
    assert savings["gap"] > 0.3 and savings["is_recommended"] and savings["rank"] <= 2
    assert savings["recommendation"].startswith("offer savings: ")
    # The stressed lack credit cards too, but they are high risk: the gap is reported, the card is not offered.
    stressed = segments["credit_stressed"]
    card = rows[(stressed, "credit_card")]
    assert tiers[stressed] == "high" and card["gap"] > 0.3
    assert not card["is_recommended"] and card["recommendation"].startswith("not offered")


def test_no_credit_product_is_recommended_to_a_high_risk_segment(spark, golden):
    tiers = {r["segment_id"]: r["risk_tier"] for r in golden_rows(spark, golden, outputs.SEGMENT_PROFILES)}
    rows = golden_rows(spark, golden, outputs.SEGMENT_PRODUCT_OPPORTUNITIES)
    assert {r["segment_id"] for r in rows} == set(tiers) and {r["product"] for r in rows} >= {"savings", "mortgage"}
    for r in rows:
        assert r["segment_name"] and r["run_id"] == golden.train.run_id
        if r["is_credit_product"] and tiers[r["segment_id"]] == "high":
            assert not r["is_recommended"], r
        if r["is_credit_product"] and r["is_recommended"] and tiers[r["segment_id"]] != "low":
            assert r["recommendation"].endswith(f"only after underwriting (risk {tiers[r['segment_id']]})"), r
    ranked = sorted((r["segment_id"], r["rank"]) for r in rows if r["is_recommended"])
    assert all(rank is not None for _, rank in ranked) and not [r for r in rows if not r["is_recommended"]
                                                                 and r["rank"] is not None]


def test_spend_mix_and_attributes_describe_the_personas(spark, golden):
    segments = persona_segments(spark, golden)
    rows = {(r["aspect"], r["segment_id"], r["value"]): r
            for r in golden_rows(spark, golden, outputs.SEGMENT_CHARACTERISTICS)}
    affluent, young = segments["affluent_loyal"], segments["young_frequent"]
    # Only the affluent travel (their spend is most of all spend, which bounds their lift); the dormant pay
    # utilities, a category of small tickets that all customers' spend hardly shows.
    assert rows[("spend_category", affluent, "travel")]["lift"] > 1.2
    assert ("spend_category", young, "travel") not in rows
    assert rows[("spend_category", segments["dormant"], "utilities")]["lift"] > 2
    for segment in set(segments.values()):  # each aspect's shares sum to 1 in every segment
        for aspect in ("spend_category", "region", "employment_status"):
            total = sum(r["share"] for (a, s, _), r in rows.items() if a == aspect and s == segment)
            assert total == pytest.approx(1.0), (aspect, segment)
    assert rows[("employment_status", young, "student")]["lift"] > 1.5  # the young are students or employed
    digital = rows[("channel", young, "digital")]  # the young buy on mobile and online only
    assert digital["share"] > 0.95 and digital["lift"] > 1.2
    assert not {a for a, _, _ in rows} & {"sex", "birth_date", "age_band"}  # protected: the fairness audit only


def test_the_report_says_what_to_offer(golden):
    page = golden.report_path.read_text(encoding="utf-8")
    section = page[page.index("<h2>What to offer</h2>"):page.index("<h2>Fairness audit</h2>")]
    for text in ("<strong>Offer</strong>: offer savings: ", "<strong>Held back</strong>: credit card: not offered",
                 "<strong>What they buy</strong>: ", "travel: ", "<strong>Who they are</strong>: "):
        assert text in section, text


def test_what_to_offer_reads_as_an_analyst_would():
    from custseg.report.offers import segment_offers

    rows = [{"aspect": "spend_category", "value": "travel", "share": 0.21, "population_share": 0.15, "lift": 1.4},
            {"aspect": "spend_category", "value": "fuel", "share": 0.05, "population_share": 0.10, "lift": 0.5},
            {"aspect": "spend_category", "value": "key rings", "share": 0.004, "population_share": 0.0005,
             "lift": 8.0},  # a sliver of the segment's spend: not what it buys
            {"aspect": "channel", "value": "digital", "share": 0.34, "population_share": 0.56, "lift": 0.61},
            {"aspect": "region", "value": "west", "share": 0.31, "population_share": 0.18, "lift": 1.72},
            {"aspect": "region", "value": "north", "share": 0.69, "population_share": 0.82, "lift": 0.84},
            {"aspect": "employment_status", "value": "employed", "share": 0.5, "population_share": 0.48,
             "lift": 1.04},
            # 1 % of the segment, however over-represented, does not say who its customers are.
            {"aspect": "employment_status", "value": "retired", "share": 0.01, "population_share": 0.002,
             "lift": 5.0}]
    offers = [{"segment_id": 0, "product": "savings", "is_recommended": True, "rank": 1, "recommendation": "offer A"},
              {"segment_id": 0, "product": "credit_card", "is_recommended": False, "rank": None,
               "recommendation": "not offered: a credit product and the segment is high risk"},
              {"segment_id": 0, "product": "mortgage", "is_recommended": False, "rank": None,
               "recommendation": "no gap: ..."}]
    view, = segment_offers([{"segment_id": 0, "segment_name": "Steady", "risk_tier": "high"}], offers,
                           [{**r, "segment_id": 0} for r in rows], top=3)
    assert view.offers == ["offer A"]
    assert view.held_back == ["credit card: not offered: a credit product and the segment is high risk"]
    assert view.buys == ["travel: 21 % of spend against 15 % for all customers (1.4x)",
                         "digital channels: 34 % of purchases against 56 % for all customers (0.6x)"]
    assert view.who == ["employment status: like all customers (no value of 5% or more of them over 1.2x)",
                        "region west: 31 % of customers against 18 % for all customers (1.7x)"]
    lapsed = [{"aspect": "spend_category", "value": "travel", "customers": 2, "share": 0.8, "population_share": 0.15,
               "lift": None},
              {"aspect": "spend_category", "value": "fuel", "customers": 1, "share": 0.2, "population_share": 0.1,
               "lift": None},
              {"aspect": "channel", "value": "digital", "customers": 3, "share": 0.9, "population_share": 0.56,
               "lift": None},
              {"aspect": "region", "value": "west", "customers": 3, "share": 1.0, "population_share": 0.18,
               "lift": None}]
    view, = segment_offers([{"segment_id": 1, "segment_name": "Lapsed", "risk_tier": "unrated"}], [],
                           [{**r, "segment_id": 1} for r in lapsed], top=3)
    assert view.buys == ["too few buyers to tell (at most 2 in a category)"]
    assert view.who == ["region: too few customers to tell"]
