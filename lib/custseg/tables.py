"""Output table names and the comments BI users see on tables and columns."""
from __future__ import annotations

FEATURES_TABLE = "customer_features"
REJECTED_TABLE = "rejected_records"
RUNS_TABLE = "runs"
SEGMENT_ASSIGNMENTS = "segment_assignments"
SEGMENT_PROFILES = "segment_profiles"
SEGMENT_FEATURE_STATS = "segment_feature_stats"
SEGMENT_CENTROIDS = "segment_centroids"
K_SELECTION = "k_selection"
MODELS_DIR = "models"
# Every Delta output, in the order a BI user meets them.
OUTPUT_TABLES = (FEATURES_TABLE, REJECTED_TABLE, RUNS_TABLE, SEGMENT_ASSIGNMENTS, SEGMENT_PROFILES,
                 SEGMENT_FEATURE_STATS, SEGMENT_CENTROIDS, K_SELECTION)

COMMON = {
    "run_id": "training run that produced the model (runs.run_id)",
    "as_of_date": "date the features describe (events strictly before it)",
    "segment_id": "segment number from K-means (0-based)",
    "segment_name": "readable segment name from the naming rule in docs/model.md",
    "feature": "feature name (see docs/features.md)",
}

TABLE_COMMENTS = {
    SEGMENT_ASSIGNMENTS: "One row per customer and as-of date: the customer's segment",
    SEGMENT_PROFILES: "One row per segment and run: size, key statistics, risk, name and suggested actions",
    SEGMENT_FEATURE_STATS: "One row per segment, feature and run: distribution in original units, z-score, lift",
    SEGMENT_CENTROIDS: "One row per segment, feature and run: centroid in scaled and original units",
    K_SELECTION: "One row per candidate K and run: quality metrics and which K was chosen",
}

COLUMN_COMMENTS = {
    SEGMENT_ASSIGNMENTS: {
        "customer_id": "customer identifier",
        "distance_to_centroid": "Euclidean distance to the segment centroid in standardised feature space",
    },
    SEGMENT_PROFILES: {
        "size": "customers in the segment",
        "share": "size / all customers scored",
        "borrower_share": "share of the segment's customers with a loan",
        "late_payment_rate": "share of borrowers with a late or missed payment in the last 12 months",
        "default_rate": "share of borrowers who reached the default threshold of days past due",
        "max_dpd": "largest days past due in the segment",
        "mean_credit_score": "mean credit score",
        "mean_distance_to_centroid": "mean distance to the centroid (cohesion)",
        "risk_tier": "low / medium / high by the rules in docs/model.md",
        "credit_action": "suggested lending action for the risk tier",
        "marketing_strategy": "suggested marketing strategy",
        "distinguishing_features": "features whose segment mean is furthest from all customers', in standard "
                                   "deviations",
    },
    SEGMENT_FEATURE_STATS: {
        "n": "customers with a non-null value",
        "mean": "mean in original units", "stddev": "sample standard deviation", "min": "minimum",
        "q1": "25th percentile (approximate; over about 20,000 of the segment's customers at most)",
        "median": "median (approximate, as q1)", "q3": "75th percentile (approximate, as q1)",
        "max": "maximum", "population_mean": "mean over all customers", "population_stddev": "stddev, all customers",
        "z_score": "(segment mean - population mean) / population stddev",
        "lift": "segment mean / population mean",
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
        "sse": "within-cluster sum of squared distances on the selection sample",
        "davies_bouldin": "Davies-Bouldin index; lower is better",
        "calinski_harabasz": "Calinski-Harabasz index; higher is better",
        "min_share": "smallest segment's share of the sample (0 if a segment came out empty)",
        "stability": "mean adjusted Rand index against refits on resamples with other seeds",
        "is_eligible": "passes the minimum share and stability thresholds",
        "is_chosen": "the K that was chosen",
        "reason": "why the chosen K was chosen",
        "sample_rows": "rows in the selection sample",
    },
}


def comments_for(table: str) -> dict[str, str]:
    return {**COMMON, **COLUMN_COMMENTS.get(table, {})}
