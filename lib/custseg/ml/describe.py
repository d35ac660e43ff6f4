"""Describe each segment from its small per-segment results: risk tier and its evidence, price band, name,
marketing strategy, what sets it apart.

Pure Python on k-sized rows collected by the flow, so that every rule can be checked by hand without Spark.
The rules are documented in docs/model.md; their thresholds come from the config's segment_rules and pricing.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

from custseg.config import PricingConf, SegmentRules

# Two-sided 95 % normal quantile of the Wilson score intervals.
WILSON_Z = 1.959963984540054
TIERS = ("low", "medium", "high", "unrated")
# Features whose segment median names a segment: its value, activity and tenure.
NAME_FEATURES = ("monetary", "frequency", "tenure_days")
# Behaviour classes of the strategy table, in the order a segment is checked for them (after new and lapsed).
BEHAVIOURS = ("new", "lapsed", "high", "mid", "low")


class Strategy(NamedTuple):
    text: str
    offers_credit: bool  # a credit-growth or credit cross-sell offer (new credit, higher limits, card)


NO_CREDIT = "no credit offers"
# Marketing strategy by behaviour (from the name) x risk tier (docs/model.md, "Marketing strategy"). Only a
# low-risk tier may carry a credit-growth offer; high risk never does, unrated and medium only after underwriting.
STRATEGIES: dict[tuple[str, str], Strategy] = {
    ("high", "low"): Strategy("retention and upsell: premium products, relationship manager, pre-approved credit",
                              True),
    ("high", "medium"): Strategy("retention: premium non-credit products; credit offers after underwriting", False),
    ("high", "unrated"): Strategy("retention: premium service and deposit products; credit offers after "
                                  "underwriting", False),
    ("high", "high"): Strategy(f"retention of deposits only, {NO_CREDIT}", False),
    ("mid", "low"): Strategy("cross-sell: rewards card, savings round-ups", True),
    ("mid", "medium"): Strategy("cross-sell of non-credit products (savings, rewards); credit offers after "
                                "underwriting", False),
    ("mid", "unrated"): Strategy("non-credit engagement: savings and rewards; credit offers after underwriting",
                                 False),
    ("mid", "high"): Strategy(f"collections support: payment plans and financial-health outreach, {NO_CREDIT}",
                              False),
    ("low", "low"): Strategy("nurture: targeted offers to grow engagement", False),
    ("low", "medium"): Strategy("nurture with non-credit offers; credit offers after underwriting", False),
    ("low", "unrated"): Strategy("non-credit engagement: digital tools and savings; credit offers after "
                                 "underwriting", False),
    ("low", "high"): Strategy(f"collections support: payment plans and financial-health outreach, {NO_CREDIT}",
                              False),
    ("lapsed", "low"): Strategy("reactivation: win-back offer and a reason to return", False),
    ("lapsed", "medium"): Strategy("reactivation with non-credit offers; credit offers after underwriting", False),
    ("lapsed", "unrated"): Strategy("reactivation with non-credit offers; credit offers after underwriting", False),
    ("lapsed", "high"): Strategy(f"reactivation of deposits and payments, {NO_CREDIT}", False),
    ("new", "low"): Strategy("onboarding: welcome journey, first product cross-sell", True),
    ("new", "medium"): Strategy("onboarding: welcome journey, non-credit products first", False),
    ("new", "unrated"): Strategy("onboarding: welcome journey, non-credit products; credit offers after "
                                 "underwriting", False),
    ("new", "high"): Strategy(f"onboarding: account and savings set-up, {NO_CREDIT}", False),
}


COLLECTIONS = "collections support"
MOSTLY_BORROWERS = 0.5  # a segment with a smaller share of borrowers is not a collections segment as a whole


def strategy_text(kind: str, tier: str, borrower_share: float | None) -> str:
    """The segment's strategy (STRATEGIES); collections support is meant for its borrowers only when they are
    fewer than MOSTLY_BORROWERS of it: the tier rests on them, the others never borrowed."""
    text = STRATEGIES[(kind, tier)].text
    if not text.startswith(COLLECTIONS) or borrower_share is None or borrower_share >= MOSTLY_BORROWERS:
        return text
    return (f"{COLLECTIONS} for its borrowers ({borrower_share:.0%} of the segment): payment plans and "
            f"financial-health outreach; non-credit engagement for the others; {NO_CREDIT}")


# ---------------------------------------------------------------------------------------------- risk


def wilson_interval(successes: int, n: int, z: float = WILSON_Z) -> tuple[float, float]:
    """Wilson score interval of a proportion: sound for small n and for 0 or n successes, where p +- z*se is not."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError(f"a proportion needs 0 <= successes <= n and n > 0, got {successes} of {n}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # The interval holds p; at 0 or n successes rounding would put an end a hair past it (p = 0 < 5.6e-17).
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


class Rate(NamedTuple):
    """A borrower rate with its evidence: events among n borrowers, its 95 % interval, its tier thresholds."""
    label: str
    events: int
    n: int
    medium: float
    high: float

    @property
    def rate(self) -> float:
        return self.events / self.n

    @property
    def interval(self) -> tuple[float, float]:
        return wilson_interval(self.events, self.n)

    def text(self) -> str:
        low, high = self.interval
        return f"{self.label} {_pct(self.rate)} (95 % CI {_pct(low, False)}-{_pct(high)})"


class Assessment(NamedTuple):
    tier: str
    reason: str


def _pct(value: float, unit: bool = True) -> str:
    return f"{100 * value:.1f}" + (" %" if unit else "")


def _threshold(value: float) -> str:
    return f"{100 * value:g} %"


def borrower_rates(risk: dict[str, Any], rules: SegmentRules) -> list[Rate]:
    """The segment's default rate (ever) and late-payment rate (12 months), over its borrowers; a rate whose
    events are unknown (late payments without a loan_payments table) is left out."""
    n = risk["borrowers"]
    rates = [Rate("default rate (ever)", risk["defaulted_borrowers"], n, rules.medium_risk.default_rate,
                  rules.high_risk.default_rate),
             Rate("late-payment rate (12m)", risk["late_borrowers_12m"], n, rules.medium_risk.late_payment_rate,
                  rules.high_risk.late_payment_rate)]
    return [rate for rate in rates if rate.events is not None]


def assess_risk(risk: dict[str, Any], rules: SegmentRules) -> Assessment:
    """Tier from the borrowers' rates, only with enough borrowers; credit score never decides (docs/model.md).

    high: a rate reaches its high threshold; low: the upper ends of both 95 % intervals are below the medium
    thresholds (evidence that the rates are low); medium otherwise; unrated without loan data, with fewer
    than rules.min_borrowers borrowers, or when a rate is unknown and the known one is not enough for high or
    medium (low needs both).
    """
    borrowers = risk.get("borrowers")
    if borrowers is None:
        return Assessment("unrated", "no loan data in the inputs")
    if borrowers < rules.min_borrowers:
        return Assessment("unrated", f"{borrowers:,} borrowers, fewer than the {rules.min_borrowers:,} required")
    rates = borrower_rates(risk, rules)
    evidence = f"{borrowers:,} borrowers: "
    # A tier from the default rate alone says so: the late payments it could not weigh are unknown, not none.
    unknown = "; late-payment rate unknown (no loan payments in the inputs)" if len(rates) < 2 else ""
    high = [f"{r.text()} >= {_threshold(r.high)}" for r in rates if r.rate >= r.high]
    if high:
        return Assessment("high", evidence + "; ".join(high) + unknown)
    not_low = [f"{r.text()}, interval reaches {_threshold(r.medium)}" for r in rates if r.interval[1] >= r.medium]
    if not_low:
        return Assessment("medium", evidence + "; ".join(not_low) + unknown)
    below = evidence + "; ".join(f"{r.text()}, interval below {_threshold(r.medium)}" for r in rates)
    return Assessment("unrated", below + unknown) if unknown else Assessment("low", below)


def rate_intervals(risk: dict[str, Any]) -> dict[str, float | None]:
    """The 95 % Wilson intervals of the profile's two borrower rates (None without borrowers)."""
    n = risk.get("borrowers") or 0
    columns: dict[str, float | None] = {}
    for rate, events in (("default_rate_ever", "defaulted_borrowers"), ("late_payment_rate_12m", "late_borrowers_12m")):
        low, high = wilson_interval(risk[events], n) if n and risk[events] is not None else (None, None)
        columns[f"{rate}_ci_low"], columns[f"{rate}_ci_high"] = low, high
    return columns


class PriceBand(NamedTuple):
    apr_low: float | None
    apr_high: float | None
    credit_limit_multiplier: float | None


def price_band(tier: str, default_rate_ci_high: float | None, pricing: PricingConf) -> PriceBand:
    """APR band around base + (upper end of the default rate's interval) x LGD, clamped to [floor, cap].

    Unrated segments get the band around the base APR; every tier its limit multiplier (docs/model.md).
    """
    def clamp(apr: float) -> float:
        return round(min(pricing.cap_apr, max(pricing.floor_apr, apr)), 4)  # whole basis points

    loss = 0.0 if tier == "unrated" or default_rate_ci_high is None else default_rate_ci_high
    centre = clamp(pricing.base_apr + loss * pricing.loss_given_default)
    return PriceBand(clamp(centre - pricing.band_half_width), clamp(centre + pricing.band_half_width),
                     getattr(pricing.limit_multiplier, tier))


# ---------------------------------------------------------------------------------------------- names


def level(median: float | None, quartiles: tuple[float | None, ...] | None) -> str:
    """high / mid / low: the segment's median against the population's quartiles (ties at q2 are mid)."""
    q1, q2, q3 = quartiles if quartiles else (None, None, None)
    if median is None or q1 is None or q2 is None or q3 is None:
        return "mid"
    if median >= q3 and median > q2:
        return "high"
    if median <= q1 and median < q2:
        return "low"
    return "mid"


class Behaviour(NamedTuple):
    value: str           # high / mid / low
    activity: str        # frequent / regular / infrequent / one-time / lapsed
    is_new: bool

    @property
    def kind(self) -> str:
        """The strategy table's behaviour class: new, then lapsed, then the value level."""
        return "new" if self.is_new else "lapsed" if self.activity == "lapsed" else self.value

    @property
    def name(self) -> str:
        activity = "no purchase yet" if self.is_new and self.activity == "lapsed" else self.activity
        return ", ".join([f"{self.value.capitalize()} value", activity, *(["new"] if self.is_new else [])])


def behaviour(medians: dict[str, float | None], lapsed_share: float | None,
              population: dict[str, tuple[float | None, ...]], rules: SegmentRules) -> Behaviour:
    """Value, activity and tenure from the segment's medians against all customers' quartiles, and its lapsed
    share: a segment mostly without a purchase in the lookback window is lapsed whatever its size."""
    monetary = medians.get("monetary")
    value = "low" if monetary is not None and monetary <= 0 else level(monetary, population.get("monetary"))
    if lapsed_share is not None and lapsed_share >= rules.lapsed_share:
        activity = "lapsed"
    elif medians.get("frequency") == 1:  # one purchase in the lookback window is no pattern, whatever others do
        activity = "one-time"
    else:
        activity = {"high": "frequent", "mid": "regular", "low": "infrequent"}[
            level(medians.get("frequency"), population.get("frequency"))]
    tenure = medians.get("tenure_days")
    return Behaviour(value, activity, tenure is not None and tenure <= rules.new_tenure_days)


def distinguishing(z: dict[str, float], top: int = 3) -> str:
    """The features whose segment mean is furthest from the population's, e.g. 'frequency +1.8 sd'."""
    ranked = sorted(z.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:top]
    return "; ".join(f"{name} {value:+.1f} sd" for name, value in ranked)


def unique_names(names: dict[int, str], z_by_segment: dict[int, dict[str, float]]) -> dict[int, str]:
    """Make names unique, deterministically: add the feature that sets a segment apart from its namesakes."""
    result = dict(names)
    for name in sorted(set(names.values())):
        clashing = sorted(s for s, n in names.items() if n == name)
        if len(clashing) < 2:
            continue
        for segment in clashing:
            others = [z_by_segment[o] for o in clashing if o != segment]
            gaps = {f: v - sum(o.get(f, 0.0) for o in others) / len(others) for f, v in z_by_segment[segment].items()}
            if not gaps:  # nothing measured sets it apart: the id below does
                continue
            feature, gap = sorted(gaps.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[0]
            result[segment] = f"{name} ({'higher' if gap > 0 else 'lower'} {feature})"
        if len({result[s] for s in clashing}) < len(clashing):
            for segment in clashing:
                result[segment] = f"{result[segment]} #{segment}"
    return result


# ---------------------------------------------------------------------------------------------- all together


def describe_segments(risk_rows: list[dict[str, Any]], z_rows: list[tuple[int, str, float]],
                      clustering_features: list[str], rules: SegmentRules | None = None,
                      pricing: PricingConf | None = None, medians: dict[int, dict[str, float | None]] | None = None,
                      population: dict[str, tuple[float | None, ...]] | None = None) -> list[dict[str, Any]]:
    """Profile rows: the risk rows with their intervals, tier and reason, price band, name and strategies.

    risk_rows come from statistics.segment_risk, z_rows from feature_stats, medians per segment and feature
    and the population's quartiles (statistics.population_quartiles) for NAME_FEATURES.
    """
    rules = rules if rules is not None else SegmentRules()  # the config's defaults
    pricing = pricing if pricing is not None else PricingConf()
    medians, population = medians or {}, population or {}
    z_all: dict[int, dict[str, float]] = {}
    for segment, feature, z in z_rows:
        if z is not None:  # no value of the feature in the segment: nothing it is known to differ by
            z_all.setdefault(segment, {})[feature] = z
    z_clustering = {s: {f: v for f, v in zs.items() if f in clustering_features} for s, zs in z_all.items()}
    behaviours = {r["segment_id"]: behaviour(medians.get(r["segment_id"], {}), r.get("lapsed_share"), population,
                                             rules) for r in risk_rows}
    names = unique_names({s: b.name for s, b in behaviours.items()},
                         {s: z_clustering.get(s, {}) for s in behaviours})
    described = []
    for r in sorted(risk_rows, key=lambda row: row["segment_id"]):
        s = r["segment_id"]
        intervals = rate_intervals(r)
        assessment = assess_risk(r, rules)
        band = price_band(assessment.tier, intervals["default_rate_ever_ci_high"], pricing)
        if r.get("borrowers") is None:  # no loan data in the inputs: nothing to price on, no band
            band = PriceBand(None, None, None)
        described.append({
            **r,
            **intervals,
            **{f"median_{f}": medians.get(s, {}).get(f) for f in NAME_FEATURES},
            "segment_name": names[s],
            "risk_tier": assessment.tier,
            "tier_reason": assessment.reason,
            "credit_action": getattr(rules.credit_action, assessment.tier),
            **band._asdict(),
            "marketing_strategy": strategy_text(behaviours[s].kind, assessment.tier, r.get("borrower_share")),
            "distinguishing_features": distinguishing(z_clustering.get(s, {})),
        })
    return described
