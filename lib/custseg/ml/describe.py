"""Describe each segment from its small per-segment results: risk tier, name, strategies, what sets it apart.

Pure Python on k x features rows collected by the flow; the rules are documented in docs/model.md and
their thresholds come from the config's segment_rules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from custseg.config import RiskThresholds, SegmentRules


@dataclass(frozen=True)
class SegmentSummary:
    segment_id: int
    z: dict[str, float]           # z-score of the segment mean per feature
    risk: dict[str, Any]


def risk_tier(risk: dict[str, Any], rules: SegmentRules) -> str:
    """low / medium / high from default rate, late-payment rate and mean credit score."""
    def breaches(level: RiskThresholds) -> bool:
        score = risk.get("mean_credit_score")
        return ((risk.get("default_rate") or 0.0) >= level.default_rate
                or (risk.get("late_payment_rate") or 0.0) >= level.late_payment_rate
                or (score is not None and score < level.credit_score_below))

    if breaches(rules.high_risk):
        return "high"
    if breaches(rules.medium_risk):
        return "medium"
    return "low"


def segment_name(z: dict[str, float], tier: str, rules: SegmentRules) -> str:
    """A readable name from the segment's z-scores: value, activity, tenure and risk."""
    high = rules.z_high
    monetary = z.get("monetary", 0.0)
    value = "High value" if monetary >= high else "Low value" if monetary <= -high else "Mid value"
    if z.get("recency_days", 0.0) >= rules.z_dormant:
        activity = "dormant"
    elif z.get("frequency", 0.0) >= high:
        activity = "frequent"
    else:
        activity = "occasional"
    parts = [value, activity]
    if z.get("tenure_days", 0.0) <= rules.z_new:
        parts.append("new")
    parts.append(f"{tier} risk")
    return ", ".join(parts)


def marketing_strategy(name: str, z: dict[str, float]) -> str:
    if "dormant" in name:
        return "reactivation: win-back offer and a reason to return"
    if ", new" in name:
        return "onboarding: welcome journey, first product cross-sell"
    if name.startswith("High value"):
        return "retention and upsell: premium products, relationship manager"
    if "frequent" in name:
        return "cross-sell: rewards card, savings round-ups"
    return "nurture: targeted offers to grow engagement"


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
            feature, gap = sorted(gaps.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[0]
            result[segment] = f"{name} ({'higher' if gap > 0 else 'lower'} {feature})"
        if len({result[s] for s in clashing}) < len(clashing):
            for segment in clashing:
                result[segment] = f"{result[segment]} #{segment}"
    return result


def describe_segments(risk_rows: list[dict[str, Any]], z_rows: list[tuple[int, str, float]],
                      clustering_features: list[str], rules: SegmentRules | None = None) -> list[dict[str, Any]]:
    """Names, tiers, strategies and distinguishing features for the (small) per-segment results."""
    rules = rules if rules is not None else SegmentRules()  # the config's defaults
    z_all: dict[int, dict[str, float]] = {}
    for segment, feature, z in z_rows:
        z_all.setdefault(segment, {})[feature] = z
    z_clustering = {s: {f: v for f, v in zs.items() if f in clustering_features} for s, zs in z_all.items()}
    tiers = {r["segment_id"]: risk_tier(r, rules) for r in risk_rows}
    names = unique_names({s: segment_name(z_all.get(s, {}), tiers[s], rules) for s in tiers}, z_clustering)
    described = []
    for r in sorted(risk_rows, key=lambda row: row["segment_id"]):
        s = r["segment_id"]
        described.append({
            **r,
            "segment_name": names[s],
            "risk_tier": tiers[s],
            "credit_action": getattr(rules.credit_action, tiers[s]),
            "marketing_strategy": marketing_strategy(names[s], z_all.get(s, {})),
            "distinguishing_features": distinguishing(z_clustering.get(s, {})),
        })
    return described
