"""The report's "What to offer" section: per segment its top product opportunities, what it buys and who its
customers are, each as a sentence an analyst can read, from segment_product_opportunities and
segment_characteristics."""
from __future__ import annotations

from typing import Any, NamedTuple

from custseg.ml.opportunities import NOT_OFFERED
from custseg.transforms.characteristics import CHANNEL, SPEND_CATEGORY

SHOWN_CATEGORIES = 3   # categories per segment: the most over-represented
OVER_REPRESENTED = 1.2  # lift from which an attribute value is said to set the segment apart
MIN_VALUE_SHARE = 0.05  # of the segment's customers or spend: a rarer value does not describe it, whatever its lift


class SegmentOffers(NamedTuple):
    name: str
    risk_tier: str | None
    offers: list[str]      # recommended products, best first
    held_back: list[str]   # gaps not offered, with the reason (credit to a high-risk segment)
    buys: list[str]        # spend mix sentences
    who: list[str]         # descriptive attribute sentences


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f} %"


def _versus(row: dict[str, Any], of: str) -> str:
    """e.g. '21 % of spend against 15 % for all customers (1.4x)'."""
    lift = row.get("lift")
    times = f" ({lift:.1f}x)" if lift is not None else ""
    return f"{_pct(row['share'])} of {of} against {_pct(row['population_share'])} for all customers{times}"


def spend_sentences(rows: list[dict[str, Any]]) -> list[str]:
    """The categories the segment spends on more than all customers do (of at least MIN_VALUE_SHARE of its
    spend), and its digital share; where too few of it bought to tell, that."""
    categories = sorted((r for r in rows if r["aspect"] == SPEND_CATEGORY and (r.get("lift") or 0) > 1
                         and (r.get("share") or 0) >= MIN_VALUE_SHARE), key=lambda r: (-r["lift"], r["value"]))
    categories = categories[:SHOWN_CATEGORIES]
    sentences = [f"{r['value']}: {_versus(r, 'spend')}" for r in categories]
    spend = [r for r in rows if r["aspect"] == SPEND_CATEGORY]
    if spend and all(r.get("lift") is None for r in spend):  # a lift is unknown where too few bought
        sentences.append(f"too few buyers to tell (at most {max(r['customers'] for r in spend):,} in a category)")
    digital = [r for r in rows if r["aspect"] == CHANNEL and r.get("lift") is not None]
    sentences += [f"digital channels: {_versus(r, 'purchases')}" for r in digital]
    return sentences


def who_sentences(rows: list[dict[str, Any]]) -> list[str]:
    """Per descriptive attribute, its most over-represented value among those held by at least MIN_VALUE_SHARE of
    the segment (when clearly so)."""
    sentences = []
    for aspect in sorted({r["aspect"] for r in rows} - {SPEND_CATEGORY, CHANNEL}):
        ranked = sorted((r for r in rows if r["aspect"] == aspect and r.get("lift")
                         and (r.get("share") or 0) >= MIN_VALUE_SHARE), key=lambda r: (-r["lift"], r["value"]))
        if ranked and ranked[0]["lift"] >= OVER_REPRESENTED:
            sentences.append(f"{aspect.replace('_', ' ')} {ranked[0]['value']}: {_versus(ranked[0], 'customers')}")
        elif all(r.get("lift") is None for r in rows if r["aspect"] == aspect):
            sentences.append(f"{aspect.replace('_', ' ')}: too few customers to tell")
        else:
            sentences.append(f"{aspect.replace('_', ' ')}: like all customers (no value of {MIN_VALUE_SHARE:.0%} or "
                             f"more of them over {OVER_REPRESENTED:.1f}x)")
    return sentences


def segment_offers(profiles: list[dict[str, Any]], opportunities: list[dict[str, Any]],
                   characteristics: list[dict[str, Any]], top: int) -> list[SegmentOffers]:
    views = []
    for p in profiles:
        s = p["segment_id"]
        mine = [o for o in opportunities if o["segment_id"] == s]
        offered = sorted((o for o in mine if o["is_recommended"]), key=lambda o: o["rank"])[:top]
        held = [o for o in mine if o["recommendation"].startswith(NOT_OFFERED)]
        rows = [r for r in characteristics if r["segment_id"] == s]
        views.append(SegmentOffers(p["segment_name"], p.get("risk_tier"), [o["recommendation"] for o in offered],
                                   [f"{o['product'].replace('_', ' ')}: {o['recommendation']}" for o in held],
                                   spend_sentences(rows), who_sentences(rows)))
    return views
