"""The train_segments flow: customer_features -> preprocessing -> K selection -> final fit -> segment outputs.

Reads top to bottom like the diagram in docs/architecture.md: fit imputation and scaling on all customers,
choose K on a bounded sample, fit K-means on all customers, describe the segments, write every table.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.ml.clustering import KMeansModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from custseg.config import Config
from custseg.contract import outputs
from custseg.contract.features import FEATURES
from custseg.contract.inputs import CONTRACTS
from custseg.contract.outputs import CENTROID_SCHEMA, K_SELECTION_SCHEMA, PROFILE_KEY_STATS, PROFILE_SCHEMA
from custseg.ml.describe import NAME_FEATURES, describe_segments
from custseg.ml.explain import score
from custseg.ml.export import applicant_document, to_json
from custseg.ml.kselect import KChoice, KResult, sample_for_selection, sample_sse, select_k
from custseg.ml.lineage import LINEAGE_SCHEMA, lineage_links, lineage_rows, stable_ids
from custseg.ml.opportunities import OPPORTUNITY_COLUMNS, OPPORTUNITY_SCHEMA, product_opportunities
from custseg.ml.pipeline import (
    PREDICTION,
    SCALED,
    PipelineParams,
    centers_of,
    centroid_rows,
    compose,
    fit_best_of,
    fit_preprocessing,
    fitted_kmeans,
    fixed_layout,
    kmeans_stage,
    learned_medians,
    outlier_cap_report,
    scaled_features,
)
from custseg.platform.ledger import Ledger, assignments_before, features_for_date
from custseg.platform.locations import applicant_model_location, model_location
from custseg.platform.runs import RunRecord, recorded_run
from custseg.platform.session import Cache, cache_scope
from custseg.platform.storage import (
    read_input,
    save_model,
    stamped,
    write_bytes,
    write_output,
    write_outputs,
)
from custseg.platform.tracking import log_training
from custseg.report.data import SAMPLE_CAP, HeldReport, held_rows, scatter_data
from custseg.transforms.attributes import attribute_groups
from custseg.transforms.characteristics import segment_characteristics
from custseg.transforms.fairness import AUDIT_SCHEMA, audited_attributes, fairness_audit
from custseg.transforms.migration import migration
from custseg.transforms.products import product_holders
from custseg.transforms.statistics import (
    check_population,
    feature_stats,
    population_quartiles,
    segment_risk,
    usable_features,
)
from custseg.transforms.validation import normalised, one_source_row_per_customer, source_columns

log = logging.getLogger(__name__)

# The K sweep fits each K on the selection sample with several scikit-learn starts. A Spark start whose
# centres score within this of that SSE on the same sample needs no further start (docs/model.md).
START_TOLERANCE = 0.01


def run_train_segments(spark: SparkSession, conf: Config, hold_report: bool = False,
                       ledger: Ledger | None = None) -> RunRecord:
    """Choose K, fit on all customers of conf.as_of_date, and write every segment output. With hold_report the
    record also keeps what the report shows of them (run_pipeline's report: nothing read back). `ledger`: the
    runs table as the build_features run just before it in this process left it (read now if not given)."""
    as_of = conf.as_of_date
    m = conf.model
    with (recorded_run(spark, conf, "train_segments", as_of, start=False, ledger=ledger) as record,
          cache_scope(spark) as persist):
        record.start_beside(spark, conf.output_path)  # while the model is fitted, which writes nothing
        features_df = persist(fixed_layout(features_for_date(spark, conf.output_path, as_of, record.ledger),
                                           m.fit_partitions))
        warnings = check_population(features_df, as_of, conf.features.lookback_days,
                                    conf.features.trend_window_days)
        for warning in warnings:
            log.warning("%s", warning)
        used, dropped = usable_features(features_df, m.features)
        if not used and any(why == "constant" for why in dropped.values()):
            # Every customer alike: one segment (the K rule's degenerate case), on the constant features.
            used = tuple(f for f in m.features if dropped.get(f) == "constant")
        if not used:
            raise ValueError(f"no usable clustering feature: every one is empty for {as_of} ({', '.join(dropped)})")
        caps = m.outlier_caps
        params = PipelineParams(features=used, log1p_features=tuple(f for f in m.log1p_features if f in used),
                                k=2, seed=conf.seed, max_iter=m.max_iter, lookback_days=conf.features.lookback_days,
                                outlier_caps=(caps.lower_quantile, caps.upper_quantile) if caps.enabled else None)
        preprocessing = fit_preprocessing(features_df, params)
        scaled_df = persist(scaled_features(preprocessing, features_df))
        cap_report = outlier_cap_report(preprocessing, features_df, params)
        record.stage_done("preprocess")
        sample = sample_for_selection(scaled_df, m.sample_size, conf.seed)
        choice = select_k(sample, m.k_min, m.k_max, conf.seed, m.max_iter, m.stability_runs,
                          m.min_segment_share, m.min_stability, m.k, m.sweep_n_init)
        sample_rows = len(sample)
        record.stage_done("k_selection")

        # A projection of the cached scaled_df is not cached itself, so KMeans caches its own vectors, built
        # from scaled_df without transforming the features again (benchmarks/README.md).
        fit_df = scaled_df.select(SCALED)
        # KMeans needs k >= 2; on identical customers it returns a single centre anyway.
        k = max(choice.k, 2)
        sweep_fit = choice.result_for(k)
        kmeans_model, starts = fit_best_of(kmeans_stage(replace(params, k=k)), fit_df, m.n_init,
                                           None if sweep_fit is None else close_to_sweep(sample, sweep_fit.sse))
        model = compose(preprocessing, kmeans_model)
        record.recorded()
        save_model(spark, model, model_location(conf.output_path, record.run_id))
        fit_ratio = sse_ratio(sample, kmeans_model, sweep_fit)
        fit_warning = final_fit_warning(fit_ratio, starts, k)
        if fit_warning:
            log.warning("%s", fit_warning)
            warnings.append(fit_warning)
        record.stage_done("final_fit")

        clusters_df = fitted_kmeans(model).transform(scaled_df).select(
            "customer_id", F.col(PREDICTION).cast("int").alias("segment_id"))
        links, previous = lineage_links(spark, conf.output_path, as_of, record.ledger, clusters_df,
                                        len(kmeans_model.clusterCenters()), m.lineage_min_overlap)
        ids = stable_ids(links)
        scored_df = persist(score(model, scaled_df, ids))
        results = segment_outputs(features_df, scored_df, model, ids, params, conf, persist)
        results["lineage"] = lineage_rows(links, previous)
        final_sse = sample_sse(sample, kmeans_model.clusterCenters()) if len(sample) else None
        tables = segment_tables(results, choice, sample_rows, final_sse)
        # The largest first and alone: a run killed while writing the others has its assignments written.
        write_output(tables.pop(outputs.SEGMENT_ASSIGNMENTS), outputs.SEGMENT_ASSIGNMENTS, conf.output_path,
                     record.run_id, as_of, record.new_tables)
        # Held for the report's rows when asked (small results of large inputs: computed once).
        held = persist.persisted if hold_report else (lambda df: df)
        before = assignments_before(spark, conf.output_path, as_of, record.ledger)
        tables[outputs.SEGMENT_MIGRATION] = held(migration(before, scored_df))
        customers_df = read_input(spark, conf.inputs["customers"])  # as given: the attributes validation left out
        if conf.inputs["customers"].rows_per_customer == "many":
            customers_df = one_source_row_per_customer(customers_df, conf.inputs["customers"], conf.pii_columns, as_of)
        tables[outputs.FAIRNESS_AUDIT] = held(audit_fairness(spark, conf, results, customers_df))
        names = F.broadcast(names_df(spark, results["described"]))
        tables[outputs.SEGMENT_CHARACTERISTICS] = held(segment_characteristics(
            features_df, scored_df, descriptive_groups(conf, customers_df)).join(names, on="segment_id", how="left"))
        offers, skipped = opportunities(features_df, scored_df, model, ids, results["described"], conf)
        tables[outputs.SEGMENT_PRODUCT_OPPORTUNITIES] = spark.createDataFrame(offers, OPPORTUNITY_SCHEMA).join(
            names, on="segment_id", how="left")
        write_outputs(tables, conf.output_path, record.run_id, as_of, record.new_tables)
        if hold_report:
            record.report = HeldReport(
                rows=held_rows(lambda table: stamped(tables[table], record.run_id, as_of), as_of),
                scatter=scatter_data(model, ids, features_df, SAMPLE_CAP, conf.seed,
                                     sum(r["size"] for r in results["described"])))
        document = applicant_document(model, params, ids, results["described"], record.run_id, as_of)
        write_bytes(spark, applicant_model_location(conf.output_path, record.run_id), to_json(document))
        record.model_run_id, record.model = record.run_id, model
        record.outputs.update(dict.fromkeys(outputs.SEGMENT_TABLES, record.run_id))
        record.stage_done("profiles_and_writes")
        record.metrics = {
            "chosen_k": choice.k, "segments": len(results["described"]), "reason": choice.reason,
            "features_used": list(used), "features_dropped": dropped,
            "k_results": [r.as_row() for r in choice.results],
            "final_fit_starts": starts,
            "final_fit_sample_sse_ratio": fit_ratio,
            "imputation_medians": learned_medians(preprocessing, params),
            "outlier_caps": cap_report,
            "skipped": skipped,
            "warnings": warnings,
        }
        record.counts = {"customers": scored_df.count(), "k_selection_sample": sample_rows}
        log_training(conf.tracking, record.run_id, as_of.isoformat(), conf.raw, record.metrics,
                     {r["segment_id"]: r["size"] for r in results["described"]}, document)
    return record


def close_to_sweep(sample: np.ndarray, sweep_sse: float) -> Callable[[KMeansModel], bool]:
    """Accept a model whose centres score within START_TOLERANCE of the sweep's SSE for the same K on the
    selection sample: as good as the best of the sweep's starts there, so another Spark start is not made."""
    return lambda model: sample_sse(sample, model.clusterCenters()) <= sweep_sse * (1 + START_TOLERANCE)


def sse_ratio(sample: np.ndarray, model: KMeansModel, sweep_fit: KResult | None) -> float | None:
    """The final centres' SSE on the selection sample / the sweep's for that K (1.0: as good; None: not swept)."""
    if sweep_fit is None or sweep_fit.sse <= 0:
        return None
    return sample_sse(sample, model.clusterCenters()) / sweep_fit.sse


def final_fit_warning(ratio: float | None, starts: int, k: int) -> str | None:
    """A warning when the final fit's centres are worse on the selection sample than the sweep's for the same K:
    the K-selection scores (silhouette, stability, shares) then describe other segments than those delivered."""
    if ratio is None or ratio <= 1 + START_TOLERANCE:
        return None
    return (f"the final fit's {k} segments are not those the K sweep scored: after {starts} Spark start(s) their "
            f"SSE on the selection sample is {ratio - 1:.0%} above the sweep's, so k_selection's silhouette, "
            "stability and smallest share for this K describe other segments; raise model.n_init")


def segment_outputs(features_df: DataFrame, scored_df: DataFrame, model: PipelineModel, ids: list[int],
                    params: PipelineParams, conf: Config, persist: Cache) -> dict:
    """Profiles, feature statistics and centroids for a fitted model (small results, k x features)."""
    joined_df = features_df.join(scored_df, on="customer_id", how="inner")
    # Without a loans table the loan features are null for everyone: no evidence, not good repayment.
    risk_rows = [r.asDict() for r in segment_risk(joined_df, has_loan_data="loans" in conf.inputs).collect()]
    sizes = {r["segment_id"]: r["size"] for r in risk_rows}
    stats_df = persist(feature_stats(joined_df, list(FEATURES), sizes, conf.seed))
    stat_rows = stats_df.select("segment_id", "feature", "z_score", "mean", "median").collect()  # k x features rows
    z_rows = [(r["segment_id"], r["feature"], r["z_score"]) for r in stat_rows]
    medians: dict[int, dict[str, float | None]] = {}
    for r in stat_rows:
        if r["feature"] in NAME_FEATURES:
            medians.setdefault(r["segment_id"], {})[r["feature"]] = r["median"]
    population = population_quartiles(features_df, NAME_FEATURES)  # the names' yardstick: all customers
    described = describe_segments(risk_rows, z_rows, list(params.features), conf.segment_rules, conf.pricing,
                                  medians, population)
    means = {(r["segment_id"], r["feature"]): r["mean"] for r in stat_rows if r["feature"] in PROFILE_KEY_STATS}
    for row in described:
        for feature in PROFILE_KEY_STATS:
            row[f"mean_{feature}"] = means.get((row["segment_id"], feature))
    return {"described": described, "stats_df": stats_df, "scored_df": scored_df,
            "centroids": centroid_rows(model, ids)}


def names_df(spark: SparkSession, described: list[dict]) -> DataFrame:
    return spark.createDataFrame([(r["segment_id"], r["segment_name"]) for r in described],
                                 "segment_id int, segment_name string")


def audit_fairness(spark: SparkSession, conf: Config, results: dict, customers_df: DataFrame) -> DataFrame:
    """The fairness_audit rows: the protected attributes read from the customers table for this audit only."""
    mapped = source_columns(customers_df, CONTRACTS["customers"], conf.inputs["customers"])
    attributes = audited_attributes(customers_df.columns, conf.protected_attributes, mapped)
    decisions_df = spark.createDataFrame([(r["segment_id"], r["segment_name"], r["risk_tier"])
                                          for r in results["described"]],
                                         "segment_id int, segment_name string, risk_tier string")
    assignments_df = results["scored_df"].select("customer_id", "segment_id").join(F.broadcast(decisions_df),
                                                                                    on="segment_id")
    if not attributes:
        log.warning("fairness audit: no protected attribute (config protected_attributes) in the customers table")
        return spark.createDataFrame([], AUDIT_SCHEMA)
    groups_df = attribute_groups(customers_df, mapped["customer_id"], attributes, conf.as_of_date,
                                 conf.inputs["customers"].date_format)
    return fairness_audit(groups_df, assignments_df, conf.fairness.min_group_size)


def descriptive_groups(conf: Config, customers_df: DataFrame) -> DataFrame | None:
    """customer_id, attribute, group for the configured descriptive attributes the customers table has: a
    contract column through its mapping, any other by name; None when it has none of them."""
    contract = CONTRACTS["customers"]
    mapped = source_columns(customers_df, contract, conf.inputs["customers"])
    by_name = {normalised(c): c for c in customers_df.columns}
    hidden = {normalised(c) for c in (*conf.protected_attributes, *conf.pii_columns)}
    attributes = {}
    for attribute in conf.descriptive_attributes:
        column = mapped.get(attribute) or by_name.get(normalised(attribute))
        if column is None:
            log.warning("descriptive attribute %s: not in the customers table, not described", attribute)
            continue
        if normalised(column) in hidden:
            log.warning("descriptive attribute %s: held in protected or PII column %s, not described", attribute,
                        column)
            continue
        attributes[attribute] = column
    if not attributes:
        return None
    return attribute_groups(customers_df, mapped["customer_id"], attributes, conf.as_of_date,
                            conf.inputs["customers"].date_format)


def opportunities(features_df: DataFrame, scored_df: DataFrame, model: PipelineModel, ids: list[int],
                  described: list[dict], conf: Config) -> tuple[list[dict], dict[str, str]]:
    """The segment_product_opportunities rows, and what was skipped and why (for the report)."""
    if "products" not in conf.inputs:
        return [], {"product_opportunities": "no products table in the inputs"}
    if "products_held" not in features_df.columns:
        return [], {"product_opportunities": f"the features of {conf.as_of_date} were built without products"}
    holders = product_holders(features_df, scored_df)
    if not holders:
        return [], {"product_opportunities": f"no customer held a product at {conf.as_of_date}"}
    centers = {ids[i]: center for i, center in enumerate(centers_of(model))}
    rows = product_opportunities(holders, {r["segment_id"]: r["size"] for r in described}, centers,
                                 {r["segment_id"]: r["risk_tier"] for r in described}, conf.products,
                                 {r["segment_id"]: r["segment_name"] for r in described})
    return [tuple(row[c] for c in OPPORTUNITY_COLUMNS) for row in rows], {}


def segment_tables(results: dict, choice: KChoice, sample_rows: int, final_sse: float | None) -> dict[str, DataFrame]:
    """The model's tables: assignments, profiles, feature statistics, centroids, K selection and lineage."""
    spark = results["stats_df"].sparkSession
    described = results["described"]
    profiles_df = spark.createDataFrame(
        [tuple(row.get(f.name) for f in PROFILE_SCHEMA.fields) for row in described], PROFILE_SCHEMA)
    assignments_df = results["scored_df"].join(F.broadcast(names_df(spark, described)), on="segment_id",
                                                how="left")
    return {
        outputs.SEGMENT_ASSIGNMENTS: assignments_df.select(*outputs.ASSIGNMENT_COLUMNS),
        outputs.SEGMENT_PROFILES: profiles_df,
        outputs.SEGMENT_FEATURE_STATS: results["stats_df"],
        outputs.SEGMENT_CENTROIDS: spark.createDataFrame(results["centroids"], CENTROID_SCHEMA),
        outputs.K_SELECTION: k_selection_df(spark, choice, sample_rows, final_sse),
        outputs.SEGMENT_LINEAGE: spark.createDataFrame(results["lineage"], LINEAGE_SCHEMA),
    }


def k_selection_df(spark: SparkSession, choice: KChoice, sample_rows: int, final_sse: float | None) -> DataFrame:
    """One row per swept K; the chosen one also carries the final Spark fit's SSE on the same sample."""
    rows = [(r.k, r.segments, r.silhouette, r.sse, r.davies_bouldin, r.calinski_harabasz, r.min_share,
             r.stability, r.is_eligible, r.k == choice.k, choice.reason if r.k == choice.k else None, sample_rows,
             final_sse if r.k == choice.k else None)
            for r in choice.results]
    if not rows:  # degenerate data: no sweep was possible
        rows = [(choice.k, choice.k, None, 0.0, None, None, 1.0, 1.0, True, True, choice.reason, sample_rows,
                 final_sse)]
    return spark.createDataFrame(rows, K_SELECTION_SCHEMA)


