"""Output table names and the comments BI users see on tables and columns."""
from __future__ import annotations

from pyspark.sql import types as T

from custseg.contract.features import FEATURE_TABLE_COMMENT, feature_comments

FEATURES_TABLE = "customer_features"
REJECTED_TABLE = "rejected_records"
RUNS_TABLE = "runs"
SEGMENT_ASSIGNMENTS = "segment_assignments"
SEGMENT_PROFILES = "segment_profiles"
SEGMENT_FEATURE_STATS = "segment_feature_stats"
SEGMENT_CENTROIDS = "segment_centroids"
K_SELECTION = "k_selection"
MODELS_DIR = "models"
SEGMENT_DRIFT = "segment_drift"
FAIRNESS_AUDIT = "fairness_audit"
SEGMENT_LINEAGE = "segment_lineage"
SEGMENT_MIGRATION = "segment_migration"
SEGMENT_PRODUCT_OPPORTUNITIES = "segment_product_opportunities"
SEGMENT_CHARACTERISTICS = "segment_characteristics"
# What train_segments writes per run and date.
SEGMENT_TABLES = (SEGMENT_ASSIGNMENTS, SEGMENT_PROFILES, SEGMENT_FEATURE_STATS, SEGMENT_CENTROIDS, K_SELECTION,
                  SEGMENT_LINEAGE, SEGMENT_MIGRATION, SEGMENT_CHARACTERISTICS, SEGMENT_PRODUCT_OPPORTUNITIES,
                  FAIRNESS_AUDIT)
SCORE_TABLES = (SEGMENT_ASSIGNMENTS, SEGMENT_MIGRATION, SEGMENT_DRIFT)
# The tables each job writes rows of its date to: a table can hold a date's rows only from the jobs listed for it.
JOB_OUTPUTS = {"build_features": (FEATURES_TABLE, REJECTED_TABLE), "train_segments": SEGMENT_TABLES,
               "score_customers": SCORE_TABLES}
# Every Delta output, in the order a BI user meets them.
OUTPUT_TABLES = (FEATURES_TABLE, REJECTED_TABLE, RUNS_TABLE, SEGMENT_ASSIGNMENTS, SEGMENT_PROFILES,
                 SEGMENT_FEATURE_STATS, SEGMENT_CENTROIDS, K_SELECTION, SEGMENT_LINEAGE, SEGMENT_MIGRATION,
                 SEGMENT_CHARACTERISTICS, SEGMENT_PRODUCT_OPPORTUNITIES, SEGMENT_DRIFT, FAIRNESS_AUDIT)

# Means shown on the profile row (credit score is there already as mean_credit_score).
PROFILE_KEY_STATS = ("recency_days", "frequency", "monetary", "avg_ticket", "tenure_days", "annual_income")
# Medians shown on the profile row: those the segment name is read from (ml/describe.py NAME_FEATURES).
PROFILE_MEDIANS = ("monetary", "frequency", "tenure_days")

# The reason codes of an assignment (ml/explain.py), by rank.
REASON_RANKS = {1: "largest", 2: "second largest", 3: "third largest"}

COMMON = {
    "run_id": "training run that produced the model (runs.run_id)",
    "as_of_date": "date the features describe (events strictly before it)",
    "segment_id": "stable segment id: kept across retrains while the membership overlaps (segment_lineage); a "
                  "new segment gets an id never used before",
    "segment_name": "readable segment name from the naming rule in docs/model.md",
    "feature": "feature name (see docs/features.md)",
}

TABLE_COMMENTS = {
    SEGMENT_PRODUCT_OPPORTUNITIES: "One row per segment and product of a training run: penetration against all "
                                   "customers and the nearest segments, opportunity score and recommendation",
    SEGMENT_CHARACTERISTICS: "One row per aspect, value and segment of a training run: spend mix by category, "
                             "digital share and descriptive attributes, each against all customers",
    SEGMENT_MIGRATION: "One row per (earlier segment, later segment) between an as-of date and the latest earlier "
                       "date with assignments: customers who moved, stayed, appeared or left",
    SEGMENT_LINEAGE: "One row per segment of a training run (and per previous segment it retired): the previous "
                     "run's segment it continues, their overlap, kept, new or retired",
    FAIRNESS_AUDIT: "One row per protected attribute, group and segment (and overall) of a training run: counts, "
                    "favourable and adverse credit actions, the four-fifths disparity ratio; small groups suppressed",
    SEGMENT_DRIFT: "One row per drift measure of a scoring run against its model's training run; "
                   "retrain_recommended with its reason",
    FEATURES_TABLE: FEATURE_TABLE_COMMENT,
    SEGMENT_ASSIGNMENTS: "One row per customer and as-of date: the customer's segment",
    SEGMENT_PROFILES: "One row per segment and run: size, key statistics, risk, name and suggested actions",
    SEGMENT_FEATURE_STATS: "One row per segment, feature and run: distribution in original units, z-score, lift",
    SEGMENT_CENTROIDS: "One row per segment, feature and run: centroid in scaled and original units",
    K_SELECTION: "One row per candidate K and run: quality metrics and which K was chosen",
}

SEGMENT_DRIFT_SCHEMA = ("measure string, name string, value double, threshold double, is_drifted boolean, "
                        "training_as_of_date date, retrain_recommended boolean, reason string")
COLUMN_COMMENTS = {
    SEGMENT_PRODUCT_OPPORTUNITIES: {
        "product": "product name from the products input (lower-case)",
        "is_credit_product": "a credit product: its name contains one of products.credit_product_terms",
        "customers": "customers in the segment",
        "holders": "customers of the segment holding the product at the as-of date (opened before it, not closed "
                   "before it)",
        "penetration": "holders / customers",
        "population_penetration": "share of all customers holding the product",
        "lift": "penetration / population_penetration",
        "neighbour_segments": "the nearest segments by centroid distance (standardised space), ids",
        "neighbour_penetration": "share of the nearest segments' customers holding the product; null with one "
                                 "segment",
        "gap": "neighbour_penetration - penetration",
        "opportunity_score": "max(gap, 0) x customers: holders the segment would gain at its neighbours' rate",
        "is_recommended": "offered: a gap of at least products.min_gap and, for a credit product, a segment "
                          "not high risk",
        "rank": "rank of the recommended products within the segment by opportunity_score (null: not recommended)",
        "recommendation": "the recommendation with its evidence, or why the product is not offered",
    },
    SEGMENT_CHARACTERISTICS: {
        "aspect": "spend_category (spend by transaction category in the lookback window), channel (digital share "
                  "of purchases) or a descriptive customer attribute (config descriptive_attributes)",
        "value": "the category, 'digital', or the attribute's value (unknown when missing)",
        "customers": "customers of the segment with this value (spend: who bought in the category; channel: "
                     "with a known channel)",
        "amount": "the segment's spend in the category; null for other aspects",
        "share": "spend: amount / the segment's categorised spend; channel: mean digital share of purchases; "
                 "attribute: customers / the segment's customers",
        "population_share": "the same share over all customers",
        "lift": "share / population_share; null when fewer than 30 customers are behind the share (too few to "
                "describe the segment)",
    },
    SEGMENT_MIGRATION: {
        "run_id": "training run whose model assigned the later date (as in segment_assignments)",
        "as_of_date": "the later date (the customers' segment in to_segment_id)",
        "from_as_of_date": "the earlier date: the latest before as_of_date with assignments",
        "from_segment_id": "segment on the earlier date; null for customers who appeared since",
        "to_segment_id": "segment on the later date; null for customers who left",
        "customers": "customers who made this move",
        "from_share": "customers / the from-segment's customers on the earlier date (appeared: / all who appeared)",
    },
    SEGMENT_LINEAGE: {
        "cluster": "the K-means cluster index of the run's saved model (what its PipelineModel predicts); null on "
                   "a retired segment's row",
        "segment_id": "the stable segment id the cluster gets (null on a retired segment's row)",
        "previous_run_id": "the training run matched against: the latest of the latest earlier date (null: none)",
        "previous_as_of_date": "that run's as-of date",
        "previous_segment_id": "the previous run's segment this one continues (kept) or that ended (retired)",
        "overlap": "Jaccard overlap of the two memberships on the customers both runs assigned; for a new segment "
                   "its best overlap with any previous one, below model.lineage_min_overlap",
        "status": "kept (the previous id continues), new (an id never given before) or retired",
    },
    FAIRNESS_AUDIT: {
        "attribute": "protected attribute from the customers table (config protected_attributes; a birth date or "
                     "age as age_band); never a clustering feature",
        "group": "the attribute's value (unknown when missing)",
        "segment_id": "the segment; null on the rows over all customers",
        "segment_name": "the segment's name, or 'all customers'",
        "customers": "customers of the group (in the segment); null when suppressed",
        "share": "customers / all customers with a value of this attribute (in the segment)",
        "favourable_share": "share of the group in a segment whose credit action is favourable (risk tier low: "
                            "pre-approval, best rate band)",
        "adverse_share": "share of the group in a segment whose credit action is adverse (risk tier high: manual "
                         "review, tighter limits, no credit offers)",
        "disparity_ratio": "favourable_share / the highest favourable_share of a shown group of the attribute "
                           "(same scope); null when no group has a favourable action",
        "adverse_disparity_ratio": "(1 - adverse_share) / the highest (1 - adverse_share) of a shown group of the "
                                   "attribute (same scope): how often the group is spared an adverse action",
        "is_flagged": "disparity_ratio or adverse_disparity_ratio below 0.8 (the four-fifths rule)",
        "is_suppressed": "the group has fewer customers than fairness.min_group_size: no figure shown",
    },
    SEGMENT_DRIFT: {
        "run_id": "training run whose model scored the date (runs.model_run_id of the scoring run)",
        "measure": "segment_shares (PSI of segment sizes), feature (PSI of one clustering feature over the training "
                   "deciles) or far_from_centroids (share beyond the training 99th percentile distance)",
        "name": "the feature, or the measure",
        "value": "the PSI, or the share of customers",
        "threshold": "the configured limit (config drift)",
        "is_drifted": "value above the threshold",
        "training_as_of_date": "the date the model was trained on",
        "retrain_recommended": "any measure of this scoring run drifted",
        "reason": "the drifted measures with their values, when retraining is recommended",
        "as_of_date": "the scored date",
    },
    SEGMENT_ASSIGNMENTS: {
        "customer_id": "customer identifier",
        "distance_to_centroid": "Euclidean distance to the segment centroid in standardised feature space",
        "capped_features": "how many of the customer's clustering features were beyond the training outlier caps "
                           "and clamped to them before scoring (0: none; docs/model.md)",
        "second_segment_id": "the nearest other segment: where the customer would go if its own did not exist "
                             "(null with one segment)",
        "distance_to_second": "Euclidean distance to the second segment's centroid (standardised space)",
        "distance_ratio": "distance_to_centroid / distance_to_second: near 0 a clear member, near 1 on the border "
                          "between the two segments (docs/model.md, Reading an assignment)",
        **{f"reason_{n}": f"reason code {n}: the feature with the {rank} pull towards the customer's own "
                          "segment rather than the second (docs/model.md)" for n, rank in REASON_RANKS.items()},
        **{f"reason_{n}_value": f"the customer's value of reason_{n} as the model used it (after the not-applicable "
                                "and imputation rules), original units" for n in REASON_RANKS},
        **{f"reason_{n}_segment_value": f"the segment centroid's value of reason_{n}, original units"
           for n in REASON_RANKS},
    },
    SEGMENT_PROFILES: {
        "size": "customers in the segment",
        "share": "size / all customers scored",
        **{f"mean_{f}": f"mean {f} over the segment's customers (docs/features.md)" for f in PROFILE_KEY_STATS},
        **{f"median_{f}": f"median {f} of the segment (approximate, as segment_feature_stats.median); the name "
                          "compares it with all customers' quartiles" for f in PROFILE_MEDIANS},
        "lapsed_share": "share of the segment's customers without a purchase in the lookback window (frequency 0)",
        "borrower_share": "share of the segment's customers with a loan; null without loan data",
        "borrowers": "customers with a loan (n_loans > 0); null when the inputs had no loans table",
        "defaulted_borrowers": "borrowers who ever defaulted before the as-of date (has_default)",
        "default_rate_ever": "defaulted_borrowers / borrowers: share of borrowers ever in default (default days past "
                             "due reached, or a default / charged-off loan) before the as-of date",
        "default_rate_ever_ci_low": "lower end of the 95 % Wilson score interval of default_rate_ever",
        "default_rate_ever_ci_high": "upper end of the 95 % Wilson score interval of default_rate_ever",
        "late_borrowers_12m": "borrowers with a payment paid late or unpaid in the late-payment window "
                              "(features.late_payment_window_days, 365 by default) before the as-of date",
        "late_payment_rate_12m": "late_borrowers_12m / borrowers: share of borrowers late in the late-payment window",
        "late_payment_rate_12m_ci_low": "lower end of the 95 % Wilson score interval of late_payment_rate_12m",
        "late_payment_rate_12m_ci_high": "upper end of the 95 % Wilson score interval of late_payment_rate_12m",
        "max_dpd": "largest days past due in the segment; null without loan data",
        "mean_credit_score": "mean credit score (reported only: it never decides the risk tier)",
        "mean_distance_to_centroid": "mean distance to the centroid (cohesion)",
        "risk_tier": "low / medium / high from the borrower rates and their intervals, unrated without enough "
                     "borrowers (docs/model.md)",
        "tier_reason": "the evidence behind risk_tier: borrowers, rates with their 95 % intervals and the threshold, "
                       "or why the segment is unrated",
        "credit_action": "suggested lending action for the risk tier",
        "apr_low": "lower end of the suggested APR band, centred on base APR + upper end of default_rate_ever's "
                   "interval x LGD (on the base APR when unrated), within the floor and cap (docs/model.md)",
        "apr_high": "upper end of the suggested APR band",
        "credit_limit_multiplier": "suggested credit limit multiplier of the risk tier (below 1 for high risk, at "
                                   "most 1 when unrated)",
        "marketing_strategy": "suggested marketing strategy from the value x risk table in docs/model.md; never a "
                              "credit offer to a high-risk segment",
        "distinguishing_features": "features whose segment mean is furthest from all customers', in standard "
                                   "deviations (those at least 30 and 10 % of its customers have a value of)",
    },
    SEGMENT_FEATURE_STATS: {
        "n": "customers with a non-null value",
        "mean": "mean in original units", "stddev": "sample standard deviation", "min": "minimum",
        "q1": "25th percentile (approximate; over about 20,000 of the segment's customers at most)",
        "median": "median (approximate, as q1)", "q3": "75th percentile (approximate, as q1)",
        "max": "maximum", "population_mean": "mean over all customers", "population_stddev": "stddev, all customers",
        "z_score": "(segment mean - population mean) / population stddev; 0 for a constant feature, null when "
                   "fewer than 30 of the segment's customers, or 10 % of them, have a value (unknown, not typical)",
        "lift": "segment mean / population mean; null as z_score",
    },
    SEGMENT_CENTROIDS: {
        "centroid_scaled": "centroid coordinate in standardised units (after imputation and log1p)",
        "centroid_original": "the centroid mapped back to the feature's original units",
        "is_log1p": "whether the feature was log-transformed before scaling",
    },
    K_SELECTION: {
        "k": "candidate number of segments",
        "segments": "non-empty segments found",
        "silhouette": "mean silhouette (squared Euclidean, Spark ClusteringEvaluator); higher is better",
        "sse": "within-cluster sum of squared distances on the selection sample, best of the sweep's starts",
        "davies_bouldin": "Davies-Bouldin index; lower is better",
        "calinski_harabasz": "Calinski-Harabasz index; higher is better",
        "min_share": "smallest segment's share of the sample (0 if a segment came out empty)",
        "stability": "mean adjusted Rand index against refits on resamples with other seeds",
        "is_eligible": "passes the minimum share and stability thresholds",
        "is_chosen": "the K that was chosen",
        "reason": "why the chosen K was chosen",
        "sample_rows": "rows in the selection sample",
        "final_fit_sse": "SSE of the final Spark fit's centres on the same sample, chosen K only; compare with sse "
                         "(the sweep's best of model.sweep_n_init scikit-learn starts)",
    },
}


def comments_for(table: str) -> dict[str, str]:
    if table == FEATURES_TABLE:
        return {**feature_comments(), "run_id": "build_features run that wrote the row (runs.run_id)"}
    return {**COMMON, **COLUMN_COMMENTS.get(table, {})}

REJECTED_TABLE_COMMENT = "Every input row that failed validation, with its reason; one row per bad row and run"
REJECTED_COMMENTS = {
    "run_id": "run that read the row",
    "source_table": "input table the row came from",
    "reason": "machine-readable reason code (see docs/validation.md)",
    "detail": "the column (or key) the reason is about",
    "record_json": "the source row as JSON, PII columns removed",
    "as_of_date": "as-of date of the run",
}

RUNS_TABLE_COMMENT = "One row per job and as-of date: parameters, counts, metrics, timings, status"
RUNS_SCHEMA = T.StructType([
    T.StructField("run_id", T.StringType()),
    T.StructField("job", T.StringType()),
    T.StructField("status", T.StringType()),
    T.StructField("error", T.StringType()),
    T.StructField("started_at", T.TimestampType()),
    T.StructField("finished_at", T.TimestampType()),
    T.StructField("params_json", T.StringType()),
    T.StructField("counts_json", T.StringType()),
    T.StructField("metrics_json", T.StringType()),
    T.StructField("timings_json", T.StringType()),
    T.StructField("versions_json", T.StringType()),
    T.StructField("model_run_id", T.StringType()),
    T.StructField("spark_jobs_json", T.StringType()),
    T.StructField("spark_stages_json", T.StringType()),
    T.StructField("as_of_date", T.DateType()),
])
RUNS_COMMENTS = {
    "run_id": "deterministic id: as-of date + hash of the configuration",
    "job": "which job wrote this row (build_features, train_segments, score_customers)",
    "status": "started (written before its outputs; stays so if the run was killed), succeeded or failed. "
              "A date's current outputs are those of its latest succeeded run",
    "started_at": "when the run started (UTC)",
    "finished_at": "when the run ended (UTC); null while started",
    "model_run_id": "the training run whose model made this run's segment_assignments (train_segments: itself; "
                    "score_customers: the model it used; build_features: null)",
    "as_of_date": "the as-of date the run was for",
    "error": "the error message when status is failed",
    "params_json": "the configuration used, as JSON",
    "counts_json": "rows read / accepted / rejected per input table and rows written, as JSON",
    "metrics_json": "model metrics and the chosen K with its reason, as JSON",
    "timings_json": "seconds per stage, as JSON",
    "spark_jobs_json": "Spark jobs started per stage, as JSON (from the status tracker: jobs of other work in the "
                       "same session at the same time count too)",
    "spark_stages_json": "Spark stages those jobs ran per stage, as JSON (stages skipped because their shuffle "
                         "output was already there are not counted)",
    "versions_json": "versions of Python, Spark, Delta and this library",
}


PROFILE_SCHEMA = T.StructType([
    T.StructField("segment_id", T.IntegerType()),
    T.StructField("segment_name", T.StringType()),
    T.StructField("size", T.LongType()),
    T.StructField("share", T.DoubleType()),
    *[T.StructField(f"mean_{f}", T.DoubleType()) for f in PROFILE_KEY_STATS],
    *[T.StructField(f"median_{f}", T.DoubleType()) for f in PROFILE_MEDIANS],
    T.StructField("lapsed_share", T.DoubleType()),
    T.StructField("borrower_share", T.DoubleType()),
    T.StructField("borrowers", T.LongType()),
    T.StructField("defaulted_borrowers", T.LongType()),
    T.StructField("default_rate_ever", T.DoubleType()),
    T.StructField("default_rate_ever_ci_low", T.DoubleType()),
    T.StructField("default_rate_ever_ci_high", T.DoubleType()),
    T.StructField("late_borrowers_12m", T.LongType()),
    T.StructField("late_payment_rate_12m", T.DoubleType()),
    T.StructField("late_payment_rate_12m_ci_low", T.DoubleType()),
    T.StructField("late_payment_rate_12m_ci_high", T.DoubleType()),
    T.StructField("max_dpd", T.LongType()),
    T.StructField("mean_credit_score", T.DoubleType()),
    T.StructField("mean_distance_to_centroid", T.DoubleType()),
    T.StructField("risk_tier", T.StringType()),
    T.StructField("tier_reason", T.StringType()),
    T.StructField("credit_action", T.StringType()),
    T.StructField("apr_low", T.DoubleType()),
    T.StructField("apr_high", T.DoubleType()),
    T.StructField("credit_limit_multiplier", T.DoubleType()),
    T.StructField("marketing_strategy", T.StringType()),
    T.StructField("distinguishing_features", T.StringType()),
])
CENTROID_SCHEMA = "segment_id int, feature string, centroid_scaled double, centroid_original double, is_log1p boolean"
ASSIGNMENT_COLUMNS = ("customer_id", "segment_id", "segment_name", "distance_to_centroid", "capped_features",
                      "second_segment_id", "distance_to_second", "distance_ratio",
                      *(f"reason_{n}{part}" for n in REASON_RANKS for part in ("", "_value", "_segment_value")))
SCORED_COLUMNS = tuple(c for c in ASSIGNMENT_COLUMNS if c != "segment_name")  # as ml/explain.py gives them
K_SELECTION_SCHEMA = ("k int, segments int, silhouette double, sse double, davies_bouldin double, "
                      "calinski_harabasz double, min_share double, stability double, is_eligible boolean, "
                      "is_chosen boolean, reason string, sample_rows long, final_fit_sse double")
