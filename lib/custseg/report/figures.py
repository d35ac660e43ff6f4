"""The report's matplotlib figures, drawn in one colour-blind-safe house style and returned as PNG bytes."""
from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, also on a headless driver

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator, PercentFormatter, StrMethodFormatter  # noqa: E402

from custseg.report.data import RunData, ScatterData  # noqa: E402

DPI = 110
NAME_WIDTH = 30              # characters per line of a wrapped segment name

# Okabe & Ito (2008), ordered so that neighbouring segments never get the two blues or orange and vermillion,
# yellow and black last (weak on white / like the centroid edges); then four colours of Paul Tol's
# colour-blind-safe "muted" scheme: 12 distinguishable colours.
OKABE_ITO = ("#E69F00", "#0072B2", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000")
TOL_MUTED = ("#332288", "#882255", "#44AA99", "#999933")
PALETTE = OKABE_ITO + TOL_MUTED
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")
CHOSEN_COLOUR = "#D55E00"
LATE_COLOUR = "#E69F00"
DEFAULT_COLOUR = "#0072B2"

STYLE = {
    "font.size": 10, "axes.titlesize": 12, "axes.labelsize": 10, "xtick.labelsize": 9.5,
    "ytick.labelsize": 9.5, "legend.fontsize": 9.5, "legend.title_fontsize": 10, "figure.titlesize": 13,
    "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": DPI, "savefig.dpi": DPI,
}

FIGURES = ("segment_sizes.png", "profile_heatmap.png", "risk_by_segment.png", "segments_scatter.png",
           "k_selection.png", "segment_migration.png", "spend_mix.png")
MIX_CATEGORIES = 12          # spend categories in the spend-mix heatmap: the largest over all customers


def colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def marker(index: int) -> str:
    return MARKERS[index % len(MARKERS)]


def wrap(text: str, width: int = NAME_WIDTH) -> str:
    return "\n".join(textwrap.wrap(text, width)) or text


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _row_heights(labels: Sequence[str], per_line: float = 0.24, minimum: float = 0.42) -> float:
    return sum(max(minimum, per_line * (label.count("\n") + 1) + 0.14) for label in labels)


K_PANELS = (
    ("silhouette", "Silhouette: higher is better", "mean silhouette (−1 to 1)"),
    ("sse", "SSE (elbow): look for the bend", "within-segment sum of squares\n(standardised units²)"),
    ("davies_bouldin", "Davies-Bouldin: lower is better", "Davies-Bouldin index (unitless)"),
    ("stability", "Stability across refits: higher is better", "mean adjusted Rand index (0 to 1)"),
)


def plot_k_selection(k_rows: list[dict[str, Any]], chosen_k: int | None, reason: str,
                     min_stability: float | None = None) -> Figure:
    """2 x 2: silhouette, SSE, Davies-Bouldin and stability against K; the chosen K and the rule."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.4), layout="constrained")
    ks = [int(r["k"]) for r in k_rows]
    eligible = np.array([bool(r.get("is_eligible")) for r in k_rows], dtype=bool)
    for ax, (column, title, ylabel) in zip(axes.flat, K_PANELS, strict=True):
        values = np.array([_number(r.get(column)) for r in k_rows])
        ax.plot(ks, values, color="#555555", linewidth=1.2, zorder=1)
        ax.scatter(np.array(ks)[eligible], values[eligible], s=46, color="#0072B2", zorder=2)
        ax.scatter(np.array(ks)[~eligible], values[~eligible], s=46, facecolors="white", edgecolors="#0072B2",
                   linewidths=1.5, zorder=2)
        if chosen_k is not None:
            ax.axvline(chosen_k, color=CHOSEN_COLOUR, linestyle="--", linewidth=1.2, zorder=0)
            chosen = [v for k, v in zip(ks, values, strict=True) if k == chosen_k]
            if chosen:
                ax.scatter([chosen_k], chosen, s=190, marker="*", color=CHOSEN_COLOUR, edgecolors="black",
                           linewidths=0.6, zorder=3)
        if column == "stability" and min_stability is not None:
            ax.axhline(min_stability, color="#333333", linestyle=":", linewidth=1.2)
            ax.annotate(f"minimum {min_stability:.2f}", (1.0, min_stability), xycoords=("axes fraction", "data"),
                        xytext=(-4, 3), textcoords="offset points", ha="right", va="bottom", fontsize=9)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("number of segments K")
        ax.set_xticks(ks)
        if column == "sse":
            ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.grid(axis="y", alpha=0.3)
    handles = [
        Line2D([], [], linestyle="", marker="o", markersize=7, color="#0072B2", label="eligible K"),
        Line2D([], [], linestyle="", marker="o", markersize=7, markerfacecolor="white", markeredgecolor="#0072B2",
               markeredgewidth=1.5, label="not eligible (smallest segment too small or unstable)"),
        Line2D([], [], linestyle="--", marker="*", markersize=12, color=CHOSEN_COLOUR, markeredgecolor="black",
               label=f"chosen K = {chosen_k}"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    fig.suptitle(f"Choice of the number of segments: K = {chosen_k}\n"
                 + wrap(f"Rule applied: {reason}", 110), fontsize=11.5)
    return fig


def plot_segments_scatter(data: ScatterData, profiles: list[dict[str, Any]], total: int) -> Figure:
    """Customers on the first two principal components, coloured by segment, centroids marked."""
    fig, ax = plt.subplots(figsize=(10.5, 6.8), layout="constrained")
    n = len(data.segments)
    size = 14 if n <= 2000 else 7
    for i, profile in enumerate(profiles):
        segment = profile["segment_id"]
        mask = data.segments == segment
        ax.scatter(data.points[mask, 0], data.points[mask, 1], s=size, alpha=0.5, color=colour(i),
                   marker=marker(i), linewidths=0, label=wrap(profile["segment_name"]), rasterized=True)
    for i, profile in enumerate(profiles):
        center = data.centers.get(profile["segment_id"])
        if center is not None:
            ax.scatter([center[0]], [center[1]], s=260, marker=marker(i), color=colour(i), edgecolors="black",
                       linewidths=1.8, zorder=5)
    centre_handle = Line2D([], [], linestyle="", marker="o", markersize=12, markerfacecolor="white",
                           markeredgecolor="black", markeredgewidth=1.8, label="segment centre\n(K-means centroid)")
    handles, _ = ax.get_legend_handles_labels()
    legend = ax.legend(handles=[*handles, centre_handle], title="Segment", loc="upper left",
                       bbox_to_anchor=(1.01, 1.0), frameon=False, markerscale=2.0, labelspacing=0.9)
    for handle in legend.legend_handles[:-1]:
        handle.set_alpha(1.0)
    ax.set_xlabel(f"PC1 ({data.explained[0]:.0%} of variance): mainly {data.drivers[0]}")
    ax.set_ylabel(wrap(f"PC2 ({data.explained[1]:.0%} of variance): mainly {data.drivers[1]}", 48))
    shown = f"all {n:,} customers" if n >= total else f"a seeded sample of {n:,} of {total:,} customers"
    ax.set_title(f"Customers projected on two principal components of the standardised features\n"
                 f"{shown}; together the axes show "
                 f"{sum(data.explained):.0%} of the variance", fontsize=11)
    ax.grid(alpha=0.25)
    return fig


def plot_profile_heatmap(z: dict[tuple[int, str], float], profiles: list[dict[str, Any]],
                         features: list[str]) -> Figure:
    """Segments x clustering features: z-score of the segment mean, diverging around 0."""
    labels = [wrap(p["segment_name"]) for p in profiles]
    values = np.array([[_number(z.get((p["segment_id"], f))) for f in features] for p in profiles])
    finite = np.abs(values[np.isfinite(values)])
    limit = max(1.0, float(finite.max()) if finite.size else 1.0)
    width = 3.2 + 0.62 * len(features) + 0.075 * max((len(line) for lb in labels for line in lb.split("\n")),
                                                      default=10)
    height = 2.4 + _row_heights(labels, per_line=0.26, minimum=0.5)
    fig, ax = plt.subplots(figsize=(width, height), layout="constrained")
    image = ax.imshow(values, cmap="RdBu_r", norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit),
                      aspect="auto")
    for (row, col), value in np.ndenumerate(values):
        text = "n/a" if not math.isfinite(value) else f"{value:+.1f}"
        ink = "white" if math.isfinite(value) and abs(value) > 0.6 * limit else "black"
        ax.text(col, row, text, ha="center", va="center", fontsize=9, color=ink)
    ax.set_xticks(range(len(features)), features, rotation=40, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(profiles)), labels)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    bar = fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02)
    bar.set_label("z-score: (segment mean − all customers' mean)\n/ all customers' standard deviation")
    ax.set_title("What distinguishes the segments: clustering features, in standard deviations\n"
                 "red = above the average customer, blue = below", fontsize=11)
    ax.set_xlabel("clustering feature (see docs/features.md)")
    return fig


def plot_migration(moves: list[dict[str, Any]], names: dict[int, str]) -> Figure:
    """From-segment x to-segment: the share of each earlier segment found in each later one, with counts."""
    if not moves:
        return _message("No migration yet: no other date has been assigned next to this model's dates.")

    def label(segment: int | None, missing: str) -> str:
        return missing if segment is None else wrap(names.get(segment, f"segment {segment}"))
    froms = sorted({m["from_segment_id"] for m in moves}, key=lambda s: (s is None, s))
    tos = sorted({m["to_segment_id"] for m in moves}, key=lambda s: (s is None, s))
    shares = np.full((len(froms), len(tos)), np.nan)
    counts = np.zeros((len(froms), len(tos)), dtype=int)
    for m in moves:
        i, j = froms.index(m["from_segment_id"]), tos.index(m["to_segment_id"])
        shares[i, j], counts[i, j] = _number(m["from_share"]), int(m["customers"])
    ylabels = [label(s, "(appeared)") for s in froms]
    fig, ax = plt.subplots(figsize=(3.5 + 1.3 * len(tos), 2.0 + _row_heights(ylabels, minimum=0.55)),
                           layout="constrained")
    image = ax.imshow(np.nan_to_num(shares), cmap="Blues", vmin=0.0, vmax=1.0, aspect="auto")
    for (row, col), share in np.ndenumerate(shares):
        if math.isfinite(share):
            ax.text(col, row, f"{share:.0%}\n{counts[row, col]:,}", ha="center", va="center", fontsize=8.5,
                    color="white" if share > 0.6 else "black")
    ax.set_xticks(range(len(tos)), [label(s, "(left)") for s in tos], rotation=30, ha="right",
                  rotation_mode="anchor")
    ax.set_yticks(range(len(froms)), ylabels)
    ax.tick_params(length=0)
    fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02).set_label("share of the earlier segment")
    first = moves[0]
    ax.set_title(f"Migration from {first['from_as_of_date']} to {first['as_of_date']}: where each segment's "
                 "customers went\n(cell: share of the row's segment, and customers)", fontsize=11)
    ax.set_xlabel(f"segment on {first['as_of_date']}")
    ax.set_ylabel(f"segment on {first['from_as_of_date']}")
    return fig


def _message(text: str) -> Figure:
    fig, ax = plt.subplots(figsize=(8, 1.6), layout="constrained")
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center")
    return fig


def plot_spend_mix(characteristics: list[dict[str, Any]], profiles: list[dict[str, Any]]) -> Figure:
    """Segments x spend categories: share of the segment's spend (text), coloured by lift against all customers."""
    rows = [r for r in characteristics if r["aspect"] == "spend_category"]
    if not rows:
        return _message("No spend mix: the transactions have no category.")
    population: dict[str, float] = {}
    for r in rows:
        population[r["value"]] = _number(r["population_share"])
    categories = sorted(population, key=lambda c: (-population[c], c))[:MIX_CATEGORIES]
    cells = {(r["segment_id"], r["value"]): r for r in rows}
    labels = ["all customers", *[wrap(p["segment_name"]) for p in profiles]]
    shares = np.array([[population[c] for c in categories]]
                      + [[_number(cells[(p["segment_id"], c)]["share"]) if (p["segment_id"], c) in cells else 0.0
                          for c in categories] for p in profiles])
    with np.errstate(divide="ignore", invalid="ignore"):
        lifts = np.log2(np.where(shares > 0, shares / shares[0], np.nan))
    limit = max(1.0, float(np.nanmax(np.abs(lifts))) if np.isfinite(lifts).any() else 1.0)
    fig, ax = plt.subplots(figsize=(3.5 + 0.9 * len(categories), 2.0 + _row_heights(labels, minimum=0.5)),
                           layout="constrained")
    image = ax.imshow(np.nan_to_num(lifts), cmap="RdBu_r", norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit),
                      aspect="auto")
    for (row, col), share in np.ndenumerate(shares):
        ax.text(col, row, f"{share:.0%}", ha="center", va="center", fontsize=8.5)
    ax.set_xticks(range(len(categories)), categories, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_yticks(range(len(labels)), labels)
    ax.axhline(0.5, color="black", linewidth=1.2)
    ax.tick_params(length=0)
    fig.colorbar(image, ax=ax, shrink=0.85, pad=0.02).set_label("log2 lift: segment share / all customers' share")
    ax.set_title("What each segment buys: share of purchase spend by category\n"
                 "(colour: more than all customers in red, less in blue)", fontsize=11)
    ax.set_xlabel("transaction category")
    return fig


def plot_segment_sizes(profiles: list[dict[str, Any]]) -> Figure:
    """Horizontal bars: customers per segment, labelled with count and share."""
    labels = [wrap(p["segment_name"]) for p in profiles]
    sizes = [int(p["size"]) for p in profiles]
    fig, ax = plt.subplots(figsize=(9, 1.6 + _row_heights(labels)), layout="constrained")
    y = np.arange(len(profiles))
    ax.barh(y, sizes, color=[colour(i) for i in range(len(profiles))], edgecolor="black", linewidth=0.6)
    for i, profile in enumerate(profiles):
        ax.annotate(f"{sizes[i]:,}  ({_number(profile.get('share')):.1%})", (sizes[i], y[i]), xytext=(4, 0),
                    textcoords="offset points", va="center", fontsize=9.5)
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlim(0, max(sizes, default=1) * 1.28)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.set_xlabel("customers (count)")
    ax.set_title(f"Segment sizes: {sum(sizes):,} customers (label: count and share of all)")
    ax.grid(axis="x", alpha=0.3)
    return fig


def borrowers(profile: dict[str, Any]) -> float:
    """The segment's borrowers: its borrowers column, else size x borrower_share; 0 without loan data."""
    if profile.get("borrowers") is not None:
        return float(profile["borrowers"])
    share = profile.get("borrower_share")
    return 0.0 if share is None or not math.isfinite(share) else float(profile["size"]) * float(share)


def population_rate(profiles: list[dict[str, Any]], column: str) -> float | None:
    """The rate over all borrowers: segment rates weighted by their borrowers (no borrowers: no weight)."""
    weighted = [(p[column], borrowers(p)) for p in profiles
                if p.get(column) is not None and math.isfinite(p[column]) and borrowers(p) > 0]
    total = sum(w for _, w in weighted)
    return sum(r * w for r, w in weighted) / total if total > 0 else None


RISK_BARS = (("late_payment_rate_12m", "late-payment rate (window)", LATE_COLOUR, "//"),
             ("default_rate_ever", "default rate (ever)", DEFAULT_COLOUR, ""))


def upper_end(profile: dict[str, Any], column: str) -> float:
    """The upper end of the rate's 95 % interval, the rate itself where the profile has no interval."""
    high = profile.get(f"{column}_ci_high")
    return float(profile[column] if high is None else high)


def plot_risk_by_segment(profiles: list[dict[str, Any]], late_window_days: int | None = None,
                         default_dpd: int | None = None) -> Figure:
    """Late-payment (in the window) and ever-default rates among each segment's borrowers, with their 95 %
    intervals, the segment's risk tier and the all-borrower rates."""
    def row_label(p: dict[str, Any]) -> str:
        tier = f", {p['risk_tier']}" if p.get("risk_tier") else ""
        return wrap(p["segment_name"]) + (f"\n({borrowers(p):,.0f} borrowers{tier})" if borrowers(p) > 0 else "")

    window = f"late-payment rate ({late_window_days} days)" if late_window_days else RISK_BARS[0][1]
    bars = ((RISK_BARS[0][0], window, *RISK_BARS[0][2:]), RISK_BARS[1])
    labels = [row_label(p) for p in profiles]
    fig, ax = plt.subplots(figsize=(9.5, 1.9 + _row_heights(labels, minimum=0.7)), layout="constrained")
    y = np.arange(len(profiles))
    height = 0.38
    rates = [upper_end(p, c) for p in profiles for c, *_ in bars if p.get(c) is not None and borrowers(p) > 0]
    populations = {c: population_rate(profiles, c) for c, *_ in bars}
    top = max([*rates, *[v for v in populations.values() if v is not None], 0.05])
    for j, (column, label, bar_colour, hatch) in enumerate(bars):
        offset = (j - 0.5) * height
        for i, profile in enumerate(profiles):
            rate = profile.get(column)
            if borrowers(profile) <= 0:
                continue
            if rate is None or not math.isfinite(rate):  # e.g. late payments without a loan_payments table
                ax.annotate(f"{label}: unknown (not in the inputs)", (0, y[i] + offset), xytext=(4, 0),
                            textcoords="offset points", va="center", fontsize=8, style="italic", color="#444444",
                            zorder=4, bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none"})
                continue
            low, high = profile.get(f"{column}_ci_low"), profile.get(f"{column}_ci_high")
            has_interval = low is not None and high is not None
            ax.barh(y[i] + offset, rate, height=height, color=bar_colour, hatch=hatch, edgecolor="black",
                    linewidth=0.6, xerr=[[rate - low], [high - rate]] if has_interval else None,
                    error_kw={"ecolor": "#444444", "capsize": 3, "linewidth": 1})
            ax.annotate(f"{rate:.1%}", (high if has_interval else rate, y[i] + offset), xytext=(3, 0),
                        textcoords="offset points", va="center", fontsize=9)
        population = populations[column]
        if population is not None:
            ax.axvline(population, color=bar_colour, linestyle="--", linewidth=1.6)
    for i, profile in enumerate(profiles):
        if borrowers(profile) <= 0:
            has_loan_data = profile.get("borrowers") is not None or profile.get("borrower_share") is not None
            missing = "no borrowers" if has_loan_data else "no loan data"
            ax.annotate(f"{missing}: rates not defined", (0, y[i]), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=9, style="italic", color="#444444", zorder=4,
                        bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    handles = [*[plt.Rectangle((0, 0), 1, 1, facecolor=c, hatch=h, edgecolor="black", linewidth=0.6,
                               label=f"{label} of the segment's borrowers (whiskers: 95 % interval)")
                 for _, label, c, h in bars],
               *[Line2D([], [], color=c, linestyle="--", linewidth=1.6,
                        label=f"all borrowers: {label} {populations[col]:.1%}")
                 for col, label, c, _ in bars if populations[col] is not None]]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(profiles) - 0.5, -0.5)     # top to bottom, with room for rows without bars
    ax.set_xlim(0, top * 1.22)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xticks([t for t in MaxNLocator(nbins=6).tick_values(0, min(top, 1.0)) if 0 <= t <= 1.0])
    ax.set_xlabel("share of the segment's borrowers (%)")
    late = f"late in the {late_window_days} days before the as-of date" if late_window_days else "late in the window"
    default = (f"ever in default ({default_dpd}+ days past due or a defaulted loan)" if default_dpd
               else "ever in default")
    ax.set_title(wrap(f"Credit risk by segment: share of borrowers {late} or {default}", 80)
                 + "\ndashed lines: rate over all borrowers", fontsize=11)
    ax.grid(axis="x", alpha=0.3)
    return fig


def render(plot: Callable[..., Figure], *args: Any) -> bytes:
    """Draw one figure in the house style and return it as PNG bytes; the figure is closed."""
    with plt.rc_context(STYLE):
        fig = plot(*args)
        try:
            buffer = io.BytesIO()
            fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", facecolor="white",
                        metadata={"Software": None})
            return buffer.getvalue()
        finally:
            plt.close(fig)


def make_figures(data: RunData, scatter: ScatterData) -> dict[str, bytes]:
    """Every figure of the report as PNG bytes, by file name (in FIGURES order)."""
    chosen = [r for r in data.k_rows if r.get("is_chosen")]
    chosen_k = chosen[0]["k"] if chosen else data.metrics.get("chosen_k")
    reason = (chosen[0].get("reason") if chosen else None) or data.metrics.get("reason") or "not recorded"
    min_stability = data.params.get("model", {}).get("min_stability")
    feature_params = data.params.get("features", {})
    return {
        "segment_sizes.png": render(plot_segment_sizes, data.profiles),
        "profile_heatmap.png": render(plot_profile_heatmap, data.z, data.profiles, data.features),
        "risk_by_segment.png": render(plot_risk_by_segment, data.profiles,
                                      feature_params.get("late_payment_window_days"),
                                      feature_params.get("default_dpd")),
        "segments_scatter.png": render(plot_segments_scatter, scatter, data.profiles, data.customers),
        "k_selection.png": render(plot_k_selection, data.k_rows, chosen_k, reason, min_stability),
        "segment_migration.png": render(plot_migration, data.migration,
                                        {p["segment_id"]: p["segment_name"] for p in data.profiles}),
        "spend_mix.png": render(plot_spend_mix, data.characteristics, data.profiles),
    }
