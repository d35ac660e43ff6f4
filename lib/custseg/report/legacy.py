"""The segment report of a training run: five figures and one self-contained HTML page.

Why: before a segmentation is used, risk and marketing reviewers need on one page how K was chosen,
how big the segments are, what distinguishes them and how risky they are, in a file they can open and
forward without Spark, a notebook or network access (images are embedded, nothing is linked).

Everything is read from the run's Delta outputs and its saved PipelineModel, so the report shows
exactly what the run wrote and can be rebuilt later for any run still in the tables. Only small,
bounded results reach the driver: profiles, feature statistics, the K sweep, grouped rejection counts
and a capped, seeded sample of customers for the scatter plot.
"""
from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
import math
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: never open a window, also on a headless driver

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import MaxNLocator, PercentFormatter, StrMethodFormatter  # noqa: E402
from pyspark.ml import PipelineModel  # noqa: E402
from pyspark.ml.feature import VectorAssembler  # noqa: E402
from pyspark.ml.functions import vector_to_array  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from custseg.config import Config  # noqa: E402
from custseg.contract import outputs as tables  # noqa: E402
from custseg.contract.outputs import REJECTED_TABLE, RUNS_TABLE  # noqa: E402
from custseg.ml.pipeline import PREDICTION, SCALED, fitted_kmeans  # noqa: E402
from custseg.platform.locations import model_location  # noqa: E402
from custseg.platform.runs import latest_run_id  # noqa: E402
from custseg.platform.storage import (
    features_for_date,  # noqa: E402
    read_delta,  # noqa: E402
)
from custseg.transforms.sampling import bounded_sample  # noqa: E402

log = logging.getLogger(__name__)

REPORTS_DIR = "reports"
REPORT_FILE = "report.html"
SAMPLE_CAP = 10_000          # customers brought to the driver for the scatter plot, at most
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
           "k_selection.png")


# ---------------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class RunData:
    """The small, driver-side results of one training run that the report shows."""
    run_id: str
    as_of: dt.date
    run: dict[str, Any]                 # the train_segments row of the runs table ({} if no longer there)
    metrics: dict[str, Any]             # its metrics_json
    params: dict[str, Any]              # its params_json
    inputs: dict[str, dict[str, int]]   # build_features counts_json["inputs"] for the same date
    rejected: list[dict[str, Any]]      # source_table, reason, rows
    profiles: list[dict[str, Any]]      # segment_profiles rows, by segment_id
    k_rows: list[dict[str, Any]]        # k_selection rows, by k
    features: list[str]                 # clustering features (those in segment_centroids), in model order
    z: dict[tuple[int, str], float]     # (segment_id, feature) -> z-score of the segment mean

    @property
    def customers(self) -> int:
        return sum(int(p["size"]) for p in self.profiles)


def _rows(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.collect()]


def _json(value: str | None) -> dict[str, Any]:
    return json.loads(value) if value else {}


def read_run(spark: SparkSession, conf: Config, run_id: str) -> RunData:
    """Collect what the report needs from the run's Delta outputs (all k x features sized)."""
    def of_run(table: str) -> DataFrame:
        return read_delta(spark, conf.table_path(table)).filter(F.col("run_id") == F.lit(run_id))

    profiles = _rows(of_run(tables.SEGMENT_PROFILES).drop("run_id").orderBy("segment_id"))
    if not profiles:
        raise LookupError(f"segment_profiles has no rows for run {run_id}: unknown run, or its as-of date was "
                          "trained again with another configuration")
    as_of = profiles[0]["as_of_date"]
    is_this_run = (F.col("run_id") == F.lit(run_id)) & (F.col("job") == "train_segments")
    is_build = (F.col("job") == "build_features") & (F.col("status") == "succeeded")
    runs = _rows(read_delta(spark, conf.table_path(RUNS_TABLE))
                 .filter((F.col("as_of_date") == F.lit(as_of)) & (is_this_run | is_build))
                 .orderBy(F.col("finished_at").desc()))
    run = next((r for r in runs if r["job"] == "train_segments"), {})
    build = next((r for r in runs if r["job"] == "build_features"), None)
    if not run:
        log.warning("run %s is not in the runs table any more: the report has no run metadata", run_id)
    metrics = _json(run.get("metrics_json"))

    in_model = {r["feature"] for r in of_run(tables.SEGMENT_CENTROIDS).select("feature").collect()}  # k x f rows
    z_rows = (of_run(tables.SEGMENT_FEATURE_STATS)
              .filter((F.col("as_of_date") == F.lit(as_of)) & F.col("feature").isin(*sorted(in_model)))
              .select("segment_id", "feature", "z_score").collect())
    ordered = [f for f in metrics.get("features_used", []) if f in in_model]
    return RunData(
        run_id=run_id, as_of=as_of, run=run, metrics=metrics, params=_json(run.get("params_json")),
        inputs=_json(build["counts_json"]).get("inputs", {}) if build else {},
        rejected=rejected_summary(spark, conf, as_of) if build else [],
        profiles=profiles,
        k_rows=_rows(of_run(tables.K_SELECTION).filter(F.col("as_of_date") == F.lit(as_of)).orderBy("k")),
        features=ordered + sorted(in_model - set(ordered)),
        z={(r["segment_id"], r["feature"]): r["z_score"] for r in z_rows},
    )


def rejected_summary(spark: SparkSession, conf: Config, as_of: dt.date) -> list[dict[str, Any]]:
    """Rejected input rows of the date by source table and reason (a handful of groups)."""
    return _rows(read_delta(spark, conf.table_path(REJECTED_TABLE)).filter(F.col("as_of_date") == F.lit(as_of))
                 .groupBy("source_table", "reason").agg(F.count("*").alias("rows"))
                 .orderBy("source_table", F.col("rows").desc(), "reason"))


# ------------------------------------------------------------------------------------- scatter sample


@dataclass(frozen=True)
class ScatterData:
    """A bounded sample of customers on the first two principal components of the scaled features."""
    points: np.ndarray                  # n x 2
    segments: np.ndarray                # n segment ids
    centers: dict[int, np.ndarray]      # segment id -> centroid projected to 2D
    explained: tuple[float, float]      # share of the total variance per component
    drivers: tuple[str, str]            # the features loading most on each component, e.g. "+monetary"


def _feature_names(model: PipelineModel) -> list[str]:
    assembler = next(s for s in model.stages if isinstance(s, VectorAssembler))
    return [c.split("__")[0] for c in assembler.getInputCols()]


def _drivers(loadings: np.ndarray, names: list[str], top: int = 3) -> str:
    if not np.any(loadings):
        return "nothing (a single clustering feature)"
    order = np.argsort(-np.abs(loadings), kind="stable")[:top]
    return ", ".join(f"{'+' if loadings[i] >= 0 else '−'}{names[i]}" for i in order)


def principal_axes(x: np.ndarray, components: int) -> tuple[np.ndarray, np.ndarray]:
    """The first principal axes of the rows of x (features x components) and each one's share of the variance."""
    _, singular, vt = np.linalg.svd(x - x.mean(axis=0), full_matrices=False)
    variance = singular ** 2
    share = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
    axes = np.zeros((x.shape[1], components))
    axes[:, :min(components, len(vt))] = vt[:components].T
    return axes, np.pad(share[:components], (0, max(0, components - len(share))))


def scatter_data(model: PipelineModel, features_df: DataFrame, cap: int, seed: int,
                 total: int | None = None) -> ScatterData:
    """A bounded sample of customers and the centroids on the sample's first two principal components.

    The axes come from the points drawn, not from all customers: at 20M transactions a PCA over all
    398K customers took 7.9 s more and explained 33.6 % and 26.7 % of the variance, the sample's 34.0 %
    and 26.6 %.
    """
    preprocessing = PipelineModel(stages=model.stages[:-1])
    kmeans_model = fitted_kmeans(model)
    names = _feature_names(model)
    sample_df = bounded_sample(features_df, cap, seed, total)
    rows = kmeans_model.transform(preprocessing.transform(sample_df)).select(
        F.col(PREDICTION).cast("int").alias("segment_id"), vector_to_array(F.col(SCALED)).alias("x")).collect()
    x = np.array([r["x"] for r in rows], dtype=float).reshape(len(rows), len(names))
    pc, explained = principal_axes(x, 2)   # features x 2; a one-feature model has a zero second axis
    # A component's sign is arbitrary: point it to where its largest loading is positive, for stable plots.
    signs = np.array([1.0 if pc[np.argmax(np.abs(pc[:, j])), j] >= 0 else -1.0 for j in range(2)])
    centers = np.array([list(map(float, c)) for c in kmeans_model.clusterCenters()]) @ pc * signs
    return ScatterData(
        points=x @ pc * signs, segments=np.array([r["segment_id"] for r in rows], dtype=int),
        centers={i: c for i, c in enumerate(centers)},
        explained=(float(explained[0]), float(explained[1])),
        drivers=(_drivers(pc[:, 0] * signs[0], names), _drivers(pc[:, 1] * signs[1], names)),
    )


# --------------------------------------------------------------------------------------------- figures


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
    share = profile.get("borrower_share")
    return 0.0 if share is None or not math.isfinite(share) else float(profile["size"]) * float(share)


def population_rate(profiles: list[dict[str, Any]], column: str) -> float | None:
    """The rate over all borrowers: segment rates weighted by their borrowers (no borrowers: no weight)."""
    weighted = [(p[column], borrowers(p)) for p in profiles
                if p.get(column) is not None and math.isfinite(p[column]) and borrowers(p) > 0]
    total = sum(w for _, w in weighted)
    return sum(r * w for r, w in weighted) / total if total > 0 else None


RISK_BARS = (("late_payment_rate", "late-payment rate", LATE_COLOUR, "//"),
             ("default_rate", "default rate", DEFAULT_COLOUR, ""))


def plot_risk_by_segment(profiles: list[dict[str, Any]], late_window_days: int | None = None,
                         default_dpd: int | None = None) -> Figure:
    """Late-payment and default rates among each segment's borrowers, with the all-borrower rates."""
    labels = [wrap(p["segment_name"]) + (f"\n({borrowers(p):,.0f} borrowers)" if borrowers(p) > 0 else "")
              for p in profiles]
    fig, ax = plt.subplots(figsize=(9.5, 1.9 + _row_heights(labels, minimum=0.7)), layout="constrained")
    y = np.arange(len(profiles))
    height = 0.38
    rates = [p.get(c) for p in profiles for c, *_ in RISK_BARS if p.get(c) is not None and borrowers(p) > 0]
    populations = {c: population_rate(profiles, c) for c, *_ in RISK_BARS}
    top = max([*rates, *[v for v in populations.values() if v is not None], 0.05])
    for j, (column, _, bar_colour, hatch) in enumerate(RISK_BARS):
        offset = (j - 0.5) * height
        for i, profile in enumerate(profiles):
            rate = profile.get(column)
            if borrowers(profile) <= 0 or rate is None or not math.isfinite(rate):
                continue
            ax.barh(y[i] + offset, rate, height=height, color=bar_colour, hatch=hatch, edgecolor="black",
                    linewidth=0.6)
            ax.annotate(f"{rate:.1%}", (rate, y[i] + offset), xytext=(3, 0), textcoords="offset points",
                        va="center", fontsize=9)
        population = populations[column]
        if population is not None:
            ax.axvline(population, color=bar_colour, linestyle="--", linewidth=1.6)
    for i, profile in enumerate(profiles):
        if borrowers(profile) <= 0:
            ax.annotate("no borrowers: rates not defined", (0, y[i]), xytext=(4, 0), textcoords="offset points",
                        va="center", fontsize=9, style="italic", color="#444444", zorder=4,
                        bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    handles = [*[plt.Rectangle((0, 0), 1, 1, facecolor=c, hatch=h, edgecolor="black", linewidth=0.6,
                               label=f"{label} of the segment's borrowers") for _, label, c, h in RISK_BARS],
               *[Line2D([], [], color=c, linestyle="--", linewidth=1.6,
                        label=f"all borrowers: {label} {populations[col]:.1%}")
                 for col, label, c, _ in RISK_BARS if populations[col] is not None]]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(profiles) - 0.5, -0.5)     # top to bottom, with room for rows without bars
    ax.set_xlim(0, top * 1.22)
    ax.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
    ax.set_xticks([t for t in MaxNLocator(nbins=6).tick_values(0, min(top, 1.0)) if 0 <= t <= 1.0])
    ax.set_xlabel("share of the segment's borrowers (%)")
    late = f"late in the {late_window_days} days before the as-of date" if late_window_days else "late"
    default = f"in default ({default_dpd}+ days past due)" if default_dpd else "in default"
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
    }


# ------------------------------------------------------------------------------------------------ HTML


CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; font-size: 14px; color: #222;
       max-width: 1200px; margin: 24px auto; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 32px;
     border-bottom: 1px solid #ccc; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } td.num { text-align: right; white-space: nowrap; }
.wide { overflow-x: auto; } .muted { color: #555; }
.tier-high { background: #fde0d9; font-weight: bold; } .tier-medium { background: #fff3cd; }
.tier-low { background: #e3f1e6; }
figure { margin: 16px 0 28px; } figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { max-width: 900px; color: #333; margin-top: 6px; }
"""

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
        "late-payment window, and the share who reached the default threshold of days past due (both given in "
        "the chart title). Dashed lines are "
        "the rates over all borrowers; bars to the right of them mark riskier segments. Segments with few "
        "borrowers (count under each name) give noisy rates; segments without borrowers have none."),
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
}


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any, spec: str = ",.0f", missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value, spec)


def _time(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "–"


def html_table(header: Sequence[str], rows: Sequence[Sequence[tuple[str, str]]]) -> str:
    """A table of escaped text; each cell is (text, css class)."""
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="{_e(cls)}">{_e(text)}</td>' if cls else f"<td>{_e(text)}</td>"
                                    for text, cls in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def metadata_section(data: RunData) -> str:
    run, metrics = data.run, data.metrics
    dropped = metrics.get("features_dropped") or {}
    items = [
        ("Run id", data.run_id), ("As-of date", data.as_of.isoformat()), ("Status", run.get("status", "not recorded")),
        ("Started / finished (UTC)", f"{_time(run.get('started_at'))} / {_time(run.get('finished_at'))}"),
        ("Chosen K", metrics.get("chosen_k", "–")), ("Segments", len(data.profiles)),
        ("Customers", f"{data.customers:,}"), ("Reason for K", metrics.get("reason", "not recorded")),
        ("Clustering features", ", ".join(data.features)),
        ("Features left out", "; ".join(f"{k} ({v})" for k, v in dropped.items()) or "none"),
        ("Versions", ", ".join(f"{k} {v}" for k, v in sorted(_json(run.get("versions_json")).items())) or "–"),
    ]
    return "<h2>Run</h2>" + html_table(["Item", "Value"], [[(k, ""), (v, "")] for k, v in items])


def inputs_section(data: RunData) -> str:
    rows = []
    for table, counts in sorted(data.inputs.items()):
        read = counts.get("read")
        rejected = counts.get("rejected")
        share = rejected / read if read and rejected is not None else None
        rows.append([(table, ""), (_fmt(read), "num"), (_fmt(counts.get("accepted")), "num"),
                     (_fmt(rejected), "num"), (_fmt(share, ".2%"), "num")])
    counts_html = (html_table(["Input table", "Rows read", "Accepted", "Rejected", "Rejected %"], rows) if rows
                   else '<p class="muted">No build_features run recorded for this as-of date.</p>')
    reasons = [[(r["source_table"], ""), (r["reason"], ""), (_fmt(r["rows"]), "num")] for r in data.rejected]
    reasons_html = (html_table(["Input table", "Reason", "Rows"], reasons) if reasons
                    else '<p class="muted">No rejected rows for this as-of date.</p>')
    return ("<h2>Input data</h2><p>Rows read, accepted and rejected by validation (build_features run of the "
            "same as-of date).</p>" + counts_html
            + "<h3>Rejected rows by reason</h3><p>Reason codes are explained in docs/validation.md; the rows are "
              "kept in the rejected_records table.</p>" + reasons_html)


def profiles_section(data: RunData) -> str:
    profile_rows = [[(p["segment_name"], ""), (_fmt(p["size"]), "num"), (_fmt(p.get("share"), ".1%"), "num"),
                     (p.get("risk_tier"), f"tier-{p.get('risk_tier')}"), (p.get("credit_action"), ""),
                     (p.get("marketing_strategy"), ""), (p.get("distinguishing_features"), "")]
                    for p in data.profiles]
    window = data.params.get("features", {}).get("lookback_days")
    within = f" in {window} days" if window else " in the lookback window"
    means = (("mean_recency_days", "Recency (days)", ",.0f"), ("mean_frequency", f"Purchases{within}", ",.1f"),
             ("mean_monetary", f"Net spend{within}", ",.0f"), ("mean_avg_ticket", "Avg ticket", ",.2f"),
             ("mean_tenure_days", "Tenure (days)", ",.0f"), ("mean_annual_income", "Annual income", ",.0f"),
             ("mean_credit_score", "Credit score", ",.0f"), ("borrower_share", "Borrowers", ".1%"),
             ("late_payment_rate", "Late-payment rate", ".1%"), ("default_rate", "Default rate", ".1%"))
    mean_rows = [[(p["segment_name"], ""), *[(_fmt(p.get(c), spec), "num") for c, _, spec in means]]
                 for p in data.profiles]
    return ("<h2>Segment profiles</h2>"
            + html_table(["Segment", "Size", "Share", "Risk tier", "Credit action", "Marketing strategy",
                          "Distinguishing features (segment mean vs all, in sd)"], profile_rows)
            + "<h3>Key means per segment</h3><p>Means in original units over the segment's customers; the "
              "rates are over its borrowers (– where it has none). Money in the currency of the input data.</p>"
            + html_table(["Segment", *[label for _, label, _ in means]], mean_rows))


def figure_html(name: str, png: bytes) -> str:
    title, caption = CAPTIONS[name]
    data_uri = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return (f'<figure><h3>{_e(title)}</h3><img src="{data_uri}" alt="{_e(title)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def render_html(data: RunData, figures: dict[str, bytes]) -> str:
    """One self-contained page: inline CSS, images as data URIs, every text escaped."""
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"Customer segmentation report: run {data.run_id}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{CSS}</style></head><body>"
        f"<h1>Customer segmentation report</h1>"
        f'<p class="muted">Run {_e(data.run_id)}, customers as of {_e(data.as_of.isoformat())}. Generated '
        f"{_e(generated)} from the run's Delta outputs and saved model.</p>"
        + metadata_section(data) + inputs_section(data) + profiles_section(data)
        + "<h2>Figures</h2>" + "".join(figure_html(name, figures[name]) for name in FIGURES if name in figures)
        + "</body></html>\n"
    )


# ------------------------------------------------------------------------------------------------- job


def report_dir(conf: Config, run_id: str) -> Path:
    return Path(conf.output_path) / REPORTS_DIR / run_id


def write_report(spark: SparkSession, conf: Config, run_id: str | None = None,
                 sample_cap: int = SAMPLE_CAP) -> str:
    """Write the figures and report.html of a run (default: the latest successful training run); return its path."""
    run_id = run_id or latest_run_id(spark, conf.output_path)
    data = read_run(spark, conf, run_id)
    model = PipelineModel.load(model_location(conf.output_path, run_id))
    scatter = scatter_data(model, features_for_date(spark, conf.output_path, data.as_of), sample_cap, conf.seed,
                           data.customers)
    figures = make_figures(data, scatter)
    out_dir = report_dir(conf, run_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, png in figures.items():
        (out_dir / name).write_bytes(png)
    path = out_dir / REPORT_FILE
    path.write_text(render_html(data, figures), encoding="utf-8")
    log.info("report for run %s written to %s", run_id, path)
    return str(path)
