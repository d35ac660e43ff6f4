"""What the segment report reads: a run's small Delta results and a seeded, capped sample for the scatter plot."""
from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from custseg.config import Config
from custseg.contract import outputs as tables
from custseg.contract.outputs import REJECTED_TABLE, RUNS_TABLE
from custseg.ml.pipeline import PREDICTION, SCALED, fitted_kmeans, model_features
from custseg.platform.storage import in_parallel, read_delta
from custseg.transforms.sampling import bounded_sample

log = logging.getLogger(__name__)

SAMPLE_CAP = 10_000          # customers brought to the driver for the scatter plot, at most


# ---------------------------------------------------------------------------------------------- the run


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
    fairness: list[dict[str, Any]]      # fairness_audit rows over all customers, by attribute and group
    min_group_size: int                 # below it a fairness group is suppressed
    migration: list[dict[str, Any]]     # segment_migration rows of the model's latest date that has them
    opportunities: list[dict[str, Any]]  # segment_product_opportunities rows, by segment and product
    characteristics: list[dict[str, Any]]  # segment_characteristics rows, by aspect, segment and value
    top_offers: int                     # recommendations shown per segment

    @property
    def customers(self) -> int:
        return sum(int(p["size"]) for p in self.profiles)

    @property
    def versions(self) -> dict[str, str]:
        """Library versions the run recorded (its versions_json)."""
        return _json(self.run.get("versions_json"))


def _rows(df: DataFrame) -> list[dict[str, Any]]:
    return [r.asDict() for r in df.collect()]


def _json(value: str | None) -> dict[str, Any]:
    return json.loads(value) if value else {}


RunTables = Callable[[str], DataFrame]  # an output table -> the run's rows of it, as written


def read_run(spark: SparkSession, conf: Config, run_id: str) -> RunData:
    """Collect what the report needs from the run's Delta outputs (all k x features sized).

    The queries after the profiles are independent and run a few at a time: a small Delta read spends its
    time in the driver's bookkeeping more than on the cores, and Spark runs jobs from several threads.
    """
    def of_run(table: str) -> DataFrame:
        return read_delta(spark, conf.table_path(table)).filter(F.col("run_id") == F.lit(run_id))

    profiles = profile_rows(of_run)
    if not profiles:
        raise LookupError(f"segment_profiles has no rows for run {run_id}: unknown run, or its as-of date was "
                          "trained again with another configuration")
    as_of = profiles[0]["as_of_date"]
    of_date = F.col("as_of_date") == F.lit(as_of)
    is_this_run = (F.col("run_id") == F.lit(run_id)) & (F.col("job") == "train_segments")
    is_build = (F.col("job") == "build_features") & (F.col("status") == "succeeded")
    got = segment_rows(of_run, as_of, {
        "runs": lambda: _rows(read_delta(spark, conf.table_path(RUNS_TABLE)).filter(of_date & (is_this_run | is_build))
                              .orderBy(F.col("finished_at").desc())),
        "rejected": lambda: rejected_summary(spark, conf, as_of),
    })
    run = next((r for r in got["runs"] if r["job"] == "train_segments"), {})
    build = next((r for r in got["runs"] if r["job"] == "build_features"), None)
    if not run:
        log.warning("run %s is not in the runs table any more: the report has no run metadata", run_id)
    rejected = [{k: v for k, v in r.items() if k != "run_id"} for r in got["rejected"]
                if build and r["run_id"] == build["run_id"]]
    return run_data(conf, run_id, as_of, profiles, got, run, build, rejected)


def held_rows(of_run: RunTables, as_of: dt.date) -> dict[str, list]:
    """read_run's queries of a run's segment tables over the tables the run still holds, right after writing
    them (run_pipeline's report): the same rows, without reading them back from Delta."""
    return segment_rows(of_run, as_of, {"profiles": lambda: profile_rows(of_run)})


def held_run(conf: Config, held: HeldReport, train_run: dict[str, Any],
             build_run: dict[str, Any] | None) -> RunData:
    """The RunData read_run would give for a run that held its report's rows: its runs rows are those the flows
    wrote to the runs table, the rejected rows per table and reason the build run's counts."""
    rows = held.rows
    counts = _json(build_run["counts_json"]).get("inputs", {}) if build_run else {}
    rejected = sorted(({"source_table": table, "reason": key.removeprefix("rejected_"), "rows": n}
                       for table, by_reason in counts.items() for key, n in by_reason.items()
                       if key.startswith("rejected_") and n),
                      key=lambda r: (r["source_table"], -r["rows"], r["reason"]))
    profiles = rows["profiles"]
    return run_data(conf, train_run["run_id"], profiles[0]["as_of_date"], profiles, rows, train_run, build_run,
                    rejected)


def profile_rows(of_run: RunTables) -> list[dict[str, Any]]:
    return _rows(of_run(tables.SEGMENT_PROFILES).drop("run_id").orderBy("segment_id"))


def segment_rows(of_run: RunTables, as_of: dt.date,
                 more: dict[str, Callable[[], list]] | None = None) -> dict[str, list]:
    """The run's rows of the segment tables the report shows (the profiles apart), and the `more` queries, side by
    side."""
    of_date = F.col("as_of_date") == F.lit(as_of)
    queries: dict[str, Callable[[], list]] = {
        **(more or {}),
        "in_model": lambda: of_run(tables.SEGMENT_CENTROIDS).select("feature").collect(),  # k x f rows
        "z_rows": lambda: of_run(tables.SEGMENT_FEATURE_STATS).filter(of_date)
                          .select("segment_id", "feature", "z_score").collect(),
        "k_rows": lambda: _rows(of_run(tables.K_SELECTION).filter(of_date).orderBy("k")),
        "fairness": lambda: _rows(of_run(tables.FAIRNESS_AUDIT).filter(of_date & F.col("segment_id").isNull())
                                  .orderBy("attribute", "group")),
        "migration": lambda: latest_migration(of_run(tables.SEGMENT_MIGRATION)),
        "opportunities": lambda: _rows(of_run(tables.SEGMENT_PRODUCT_OPPORTUNITIES).filter(of_date)
                                       .orderBy("segment_id", "product")),
        "characteristics": lambda: _rows(of_run(tables.SEGMENT_CHARACTERISTICS).filter(of_date)
                                         .orderBy("aspect", "segment_id", "value")),
    }
    return dict(zip(queries, in_parallel(lambda query: query(), list(queries.values())), strict=True))


def run_data(conf: Config, run_id: str, as_of: dt.date, profiles: list[dict[str, Any]], got: dict[str, list],
             run: dict[str, Any], build: dict[str, Any] | None, rejected: list[dict[str, Any]]) -> RunData:
    metrics = _json(run.get("metrics_json"))
    in_model = {r["feature"] for r in got["in_model"]}
    ordered = [f for f in metrics.get("features_used", []) if f in in_model]
    return RunData(
        run_id=run_id, as_of=as_of, run=run, metrics=metrics, params=_json(run.get("params_json")),
        inputs=_json(build["counts_json"]).get("inputs", {}) if build else {},
        rejected=rejected,
        profiles=profiles,
        k_rows=got["k_rows"],
        features=ordered + sorted(in_model - set(ordered)),
        z={(r["segment_id"], r["feature"]): r["z_score"] for r in got["z_rows"] if r["feature"] in in_model},
        fairness=got["fairness"],
        min_group_size=conf.fairness.min_group_size,
        migration=got["migration"],
        opportunities=got["opportunities"],
        characteristics=got["characteristics"],
        top_offers=conf.products.top,
    )


def latest_migration(moves_df: DataFrame) -> list[dict[str, Any]]:
    """The moves into the latest date this model assigned that has an earlier date to compare with."""
    latest = moves_df.agg(F.max("as_of_date")).first()[0]
    return [] if latest is None else _rows(moves_df.filter(F.col("as_of_date") == F.lit(latest)))


def rejected_summary(spark: SparkSession, conf: Config, as_of: dt.date) -> list[dict[str, Any]]:
    """Rejected input rows of the date by run, source table and reason (a handful of groups)."""
    return _rows(read_delta(spark, conf.table_path(REJECTED_TABLE)).filter(F.col("as_of_date") == F.lit(as_of))
                 .groupBy("run_id", "source_table", "reason").agg(F.count("*").alias("rows"))
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


@dataclass(frozen=True)
class HeldReport:
    """What a training run holds for its report in the same session (run_pipeline): no reading back."""
    rows: dict[str, list]               # held_rows of the tables it wrote
    scatter: ScatterData                # scatter_data of its features, as the report would draw them


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


def scatter_data(model: PipelineModel, ids: list[int], features_df: DataFrame, cap: int, seed: int,
                 total: int | None = None) -> ScatterData:
    """A bounded sample of customers and the centroids on the sample's first two principal components.

    The axes come from the points drawn, not from all customers, so the plot needs no extra pass over the
    data; on a seeded sample they are close to the population's.
    """
    preprocessing = PipelineModel(stages=model.stages[:-1])
    kmeans_model = fitted_kmeans(model)
    names = list(model_features(model))
    sample_df = bounded_sample(features_df, cap, seed, total)
    rows = kmeans_model.transform(preprocessing.transform(sample_df)).select(
        F.col(PREDICTION).cast("int").alias("segment_id"), vector_to_array(F.col(SCALED)).alias("x")).collect()
    x = np.array([r["x"] for r in rows], dtype=float).reshape(len(rows), len(names))
    pc, explained = principal_axes(x, 2)   # features x 2; a one-feature model has a zero second axis
    # A component's sign is arbitrary: point it to where its largest loading is positive, for stable plots.
    signs = np.array([1.0 if pc[np.argmax(np.abs(pc[:, j])), j] >= 0 else -1.0 for j in range(2)])
    centers = np.array([list(map(float, c)) for c in kmeans_model.clusterCenters()]) @ pc * signs
    return ScatterData(
        points=x @ pc * signs, segments=np.array([ids[r["segment_id"]] for r in rows], dtype=int),
        centers={ids[i]: c for i, c in enumerate(centers)},
        explained=(float(explained[0]), float(explained[1])),
        drivers=(_drivers(pc[:, 0] * signs[0], names), _drivers(pc[:, 1] * signs[1], names)),
    )
