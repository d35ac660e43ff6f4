"""The report page: one self-contained HTML file rendered from templates/report.html.j2, every text autoescaped."""
from __future__ import annotations

import base64
import datetime as dt
import functools
import math
from typing import Any, NamedTuple

from jinja2 import Environment, PackageLoader

from custseg.report.data import RunData
from custseg.report.figures import FIGURES
from custseg.report.offers import segment_offers
from custseg.transforms.characteristics import SPEND_CATEGORY

TEMPLATE = "report.html.j2"
MISSING = "–"

CAPTIONS = {
    "segment_sizes.png": (
        "Segment sizes",
        "Customers in each segment and their share of all customers scored. Very small segments are less "
        "reliable to act on; the K rule requires a minimum share."),
    "profile_heatmap.png": (
        "What distinguishes the segments",
        "Each cell is the segment's average of one clustering feature, expressed in standard deviations from "
        "the average customer (0 = typical, +1 = one standard deviation above, red above, blue below). "
        "Read a row to describe a segment; the segment names and the distinguishing features in the table above "
        "come from these values."),
    "risk_by_segment.png": (
        "Credit risk by segment",
        "Among each segment's borrowers (customers with a loan): the share with a late or missed payment in the "
        "late-payment window, and the share ever in default before the as-of date (both windows given in the "
        "chart title); whiskers are 95 % Wilson intervals. Dashed lines are "
        "the rates over all borrowers; bars to the right of them mark riskier segments. Segments with few "
        "borrowers (count and risk tier under each name) give wide intervals and are unrated; segments without "
        "borrowers have no rates."),
    "segments_scatter.png": (
        "Segments in two dimensions",
        "A seeded sample of customers projected on the two principal components of the standardised "
        "clustering features; axis titles give the share of variance shown and the features that drive each "
        "axis. Large outlined markers are the segment centres. Segments that overlap here may still be "
        "separate in the full feature space, which the axes only partly show."),
    "k_selection.png": (
        "How the number of segments was chosen",
        "Quality measures of the candidate numbers of segments K on the selection sample. Filled points passed "
        "the minimum segment share and stability thresholds; the star and dashed line mark the chosen K, "
        "picked by the rule stated in the title."),
    "segment_migration.png": (
        "Migration between dates",
        "Where the customers of each segment on the earlier date are on the later one (the latest date this "
        "model assigned, against the date before it): each cell is the share of the row's segment and its "
        "customer count; rows sum to 100 %. '(appeared)' are customers new since the earlier date, '(left)' those "
        "no longer scored. Segment ids are stable across retrains, so a move is a real change of behaviour."),
    "spend_mix.png": (
        "What each segment buys",
        "Each cell is the share of the segment's purchase spend in the lookback window that went to one "
        "transaction category (purchases without a category left out); the colour is the lift against all "
        "customers' share (red: the segment spends relatively more there, blue: less). The top row is all "
        "customers."),
}


class InputCounts(NamedTuple):
    table: str
    read: int | None
    accepted: int | None
    rejected: int | None
    share: float | None          # rejected / read


class FigureView(NamedTuple):
    title: str
    caption: str
    uri: str                     # the PNG as a data: URI, so the page needs no other file


def number(value: Any, spec: str = ",.0f", missing: str = MISSING) -> str:
    """A number formatted with a format spec; missing and non-finite values as a dash."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value, spec)


def utc_time(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else MISSING


@functools.cache
def environment() -> Environment:
    """The Jinja environment of the report templates (autoescaped; None renders as nothing)."""
    env = Environment(loader=PackageLoader("custseg.report", "templates"), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                      finalize=lambda value: "" if value is None else value)
    env.filters["number"] = number
    return env


def metadata_items(data: RunData) -> list[tuple[str, Any]]:
    run, metrics = data.run, data.metrics
    dropped = metrics.get("features_dropped") or {}
    accepted = data.inputs.get("customers", {}).get("accepted")
    customers = f"{data.customers:,}" + (f" of the {accepted:,} accepted: those signed up before the as-of date"
                                         if accepted is not None and accepted != data.customers else "")
    return [
        ("Run id", data.run_id), ("As-of date", data.as_of.isoformat()), ("Status", run.get("status", "not recorded")),
        ("Started / finished (UTC)", f"{utc_time(run.get('started_at'))} / {utc_time(run.get('finished_at'))}"),
        ("Chosen K", metrics.get("chosen_k", MISSING)), ("Segments", len(data.profiles)),
        ("Customers", customers), ("Reason for K", metrics.get("reason", "not recorded")),
        ("Clustering features", ", ".join(data.features)),
        ("Features left out", "; ".join(f"{k} ({v})" for k, v in dropped.items()) or "none"),
        ("Versions", ", ".join(f"{k} {v}" for k, v in sorted(data.versions.items())) or MISSING),
    ]


def input_counts(data: RunData) -> list[InputCounts]:
    rows = []
    for table, counts in sorted(data.inputs.items()):
        read, rejected = counts.get("read"), counts.get("rejected")
        share = rejected / read if read and rejected is not None else None
        rows.append(InputCounts(table, read, counts.get("accepted"), rejected, share))
    return rows


def mean_columns(data: RunData) -> list[tuple[str, str, str]]:
    """(profile column, header, format spec) of the key-means table."""
    window = data.params.get("features", {}).get("lookback_days")
    within = f" in {window} days" if window else " in the lookback window"
    late_days = data.params.get("features", {}).get("late_payment_window_days")
    late_window = f"{late_days} days" if late_days else "window"
    return [("mean_recency_days", "Recency (days)", ",.0f"), ("mean_frequency", f"Purchases{within}", ",.1f"),
            ("mean_monetary", f"Net spend{within}", ",.0f"), ("mean_avg_ticket", "Avg ticket", ",.2f"),
            ("mean_tenure_days", "Tenure (days)", ",.0f"), ("mean_annual_income", "Annual income", ",.0f"),
            ("mean_credit_score", "Credit score", ",.0f"), ("borrower_share", "Borrowers", ".1%"),
            ("late_payment_rate_12m", f"Late-payment rate ({late_window})", ".1%"),
            ("default_rate_ever", "Default rate (ever)", ".1%")]


def figure_views(figures: dict[str, bytes]) -> list[FigureView]:
    return [FigureView(*CAPTIONS[name], "data:image/png;base64," + base64.b64encode(figures[name]).decode("ascii"))
            for name in FIGURES if name in figures]


def render_html(data: RunData, figures: dict[str, bytes]) -> str:
    """One self-contained page: inline CSS, images as data URIs, every text escaped."""
    return environment().get_template(TEMPLATE).render(
        run_id=data.run_id, as_of=data.as_of.isoformat(),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        metadata=metadata_items(data), inputs=input_counts(data), rejected=data.rejected,
        profiles=data.profiles, means=mean_columns(data), figures=figure_views(figures),
        fairness=data.fairness, min_group=data.min_group_size,
        offers=segment_offers(data.profiles, data.opportunities, data.characteristics, data.top_offers),
        skipped=skipped_parts(data),
        warnings=[*(data.metrics.get("warnings") or []), *fairness_warnings(data.fairness)],
    )


# A bank's customers are adults with few exceptions: most of them under 18 means an age column of band codes.
MINORS_SHARE = 0.5


def fairness_warnings(rows: list[dict]) -> list[str]:
    """Signs that a protected attribute was misread: most customers in the age band under 18."""
    minors = next((r for r in rows if r["attribute"] == "age_band" and r["group"] == "under 18"
                   and r.get("segment_id") is None and (r.get("share") or 0) > MINORS_SHARE), None)
    if minors is None:
        return []
    return [f"{minors['share']:.0%} of the customers are under 18 in the fairness audit's age bands: if the age "
            "column holds band codes rather than years, give the bands as a column of their own (e.g. age_band, "
            "listed in protected_attributes in place of age)"]


def skipped_parts(data: RunData) -> dict[str, str]:
    """What the "What to offer" section could not show, and why: the run's own record, and a spend mix without
    any categorised purchase (transactions without a category column)."""
    skipped = dict(data.metrics.get("skipped") or {})
    if not any(r["aspect"] == SPEND_CATEGORY for r in data.characteristics):
        skipped["spend_mix"] = "no purchase in the lookback window has a transaction category"
    return skipped
