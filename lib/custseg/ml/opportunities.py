"""Product white space per segment (docs/model.md, What to offer): which products a segment holds much less
often than the segments nearest to it, and whether the bank should offer them, given the segment's risk tier.

Pure Python on k x products rows, so every score can be checked by hand. For a segment and a product:
penetration = holders / customers; lift = penetration / the population's; the nearest segments are the
`neighbour_segments` closest centroids (standardised space) and their penetration is over their customers
together; gap = their penetration - the segment's; opportunity_score = max(gap, 0) x the segment's customers,
the holders it would gain at its neighbours' rate. A credit product is never recommended to a high-risk
segment and only after underwriting to an unrated or medium-risk one.
"""
from __future__ import annotations

import math
from typing import Any

from custseg.config import ProductsConf

OPPORTUNITY_SCHEMA = ("segment_id int, product string, is_credit_product boolean, customers long, holders long, "
                      "penetration double, population_penetration double, lift double, neighbour_segments string, "
                      "neighbour_penetration double, gap double, opportunity_score double, is_recommended boolean, "
                      "rank int, recommendation string")
OPPORTUNITY_COLUMNS = tuple(part.split()[0] for part in OPPORTUNITY_SCHEMA.split(", "))
UNDERWRITTEN_TIERS = ("unrated", "medium")  # credit only after underwriting
NOT_OFFERED = "not offered"  # how the recommendation of a gap held back for risk starts


def is_credit_product(product: str, terms: tuple[str, ...]) -> bool:
    name = product.strip().lower()
    return any(term.strip().lower() in name for term in terms)


def nearest_segments(centers: dict[int, list[float]], count: int) -> dict[int, list[int]]:
    """segment -> the `count` other segments with the closest centroids (ties by id)."""
    return {s: sorted((o for o in centers if o != s), key=lambda o: (math.dist(centers[s], centers[o]), o))[:count]
            for s in centers}


def _pct(value: float) -> str:
    return f"{100 * value:.0f} %"


def recommendation(product: str, credit: bool, tier: str, penetration: float, neighbour: float | None,
                   neighbours: str, gain: float, min_gap: float) -> tuple[bool, str]:
    """(is_recommended, the sentence an analyst reads)."""
    if neighbour is None:
        return False, "no other segment to compare with"
    evidence = f"{_pct(penetration)} hold it against {_pct(neighbour)} in the nearest segments ({neighbours})"
    if neighbour - penetration < min_gap:
        return False, f"no gap: {evidence}"
    if credit and tier == "high":
        return False, f"{NOT_OFFERED}: a credit product and the segment is high risk (no credit offers); {evidence}"
    offer = f"offer {product.replace('_', ' ')}: {evidence}; about {gain:,.0f} more customers at their rate"
    if credit and tier in UNDERWRITTEN_TIERS:
        return True, f"{offer}; only after underwriting (risk {tier})"
    return True, offer


def product_opportunities(holders: list[tuple[int, str, int]], sizes: dict[int, int],
                          centers: dict[int, list[float]], tiers: dict[int, str], conf: ProductsConf,
                          names: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """OPPORTUNITY_COLUMNS rows (segment_id, product order) for every segment and every product held by anyone;
    `holders` from transforms.products.product_holders, centers in the standardised space, by segment id."""
    names = names or {}
    held = {(s, p): n for s, p, n in holders}
    products = sorted({p for _, p, _ in holders})
    total = sum(sizes.values())
    neighbours = nearest_segments({s: centers[s] for s in sizes}, conf.neighbour_segments)
    rows = []
    for s in sorted(sizes):
        near_customers = sum(sizes[o] for o in neighbours[s])
        for product in products:
            holders_n = held.get((s, product), 0)
            penetration = holders_n / sizes[s] if sizes[s] else 0.0
            population = sum(held.get((o, product), 0) for o in sizes) / total
            neighbour = (sum(held.get((o, product), 0) for o in neighbours[s]) / near_customers
                         if near_customers else None)
            gap = None if neighbour is None else neighbour - penetration
            score = 0.0 if gap is None else max(gap, 0.0) * sizes[s]
            credit = is_credit_product(product, conf.credit_product_terms)
            near_names = "; ".join(names.get(o, f"segment {o}") for o in neighbours[s])  # names hold commas
            recommended, text = recommendation(product, credit, tiers[s], penetration, neighbour, near_names, score,
                                               conf.min_gap)
            rows.append({"segment_id": s, "product": product, "is_credit_product": credit, "customers": sizes[s],
                         "holders": holders_n, "penetration": penetration, "population_penetration": population,
                         "lift": penetration / population if population else None,
                         "neighbour_segments": ", ".join(map(str, neighbours[s])), "neighbour_penetration": neighbour,
                         "gap": gap, "opportunity_score": score, "is_recommended": recommended, "rank": None,
                         "recommendation": text})
    for s in sizes:
        offered = sorted((r for r in rows if r["segment_id"] == s and r["is_recommended"]),
                         key=lambda r: (-r["opportunity_score"], r["product"]))
        for rank, row in enumerate(offered, start=1):
            row["rank"] = rank
    return rows
