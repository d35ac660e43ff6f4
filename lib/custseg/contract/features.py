"""The customer_features table: every feature's definition and unit, its column comments.

docs/features.md is written from FEATURES (scripts/write_feature_docs.py).
"""
from __future__ import annotations

# name -> (definition, unit). The order is the column order of customer_features.
FEATURES: dict[str, tuple[str, str]] = {
    "tenure_days": ("days from signup_date to the as-of date", "days"),
    "recency_days": ("days since the last purchase before the as-of date; tenure_days if none", "days"),
    "frequency": ("purchases (amount > 0) in the lookback window", "count"),
    "monetary": ("net spend in the lookback window: purchases minus refunds", "currency"),
    "avg_ticket": ("mean purchase amount in the lookback window; null without purchases", "currency"),
    "spend_30d": ("purchase amount in the 30 days before the as-of date", "currency"),
    "spend_90d": ("purchase amount in the 90 days before the as-of date", "currency"),
    "spend_365d": ("purchase amount in the 365 days before the as-of date", "currency"),
    "spend_trend": ("(last trend window spend - prior window spend) / (their sum), in [-1, 1]; 0 if both 0",
                    "ratio"),
    "refund_rate": ("refunds / (purchases + refunds) in the lookback window; null without transactions",
                    "ratio"),
    "gap_mean_days": ("mean time between consecutive purchases in the lookback window; null if < 2", "days"),
    "gap_std_days": ("sample standard deviation of those gaps; null if < 3 purchases", "days"),
    "active_months": ("distinct calendar months with a purchase in the lookback window", "count"),
    "n_categories": ("distinct purchase categories in the lookback window", "count"),
    "top_category_share": ("share of purchase amount in the customer's largest category; null without purchases",
                           "ratio"),
    "digital_share": ("share of purchases made online or on mobile; null without purchases", "ratio"),
    "n_loans": ("loans originated before the as-of date", "count"),
    "total_principal": ("principal of those loans", "currency"),
    "utilisation": ("principal not yet repaid (principal - amounts paid before the as-of date) / principal;"
                    " null without loans", "ratio"),
    "on_time_rate": ("payments due before the as-of date that were paid by their due date / payments due;"
                     " null without payments due", "ratio"),
    "max_dpd": ("largest days past due over payments due before the as-of date (unpaid ones count to the"
                " as-of date); 0 without payments", "days"),
    "current_dpd": ("days past due of the oldest payment still unpaid at the as-of date; 0 if none", "days"),
    "late_payments_12m": ("payments due in the late-payment window before the as-of date paid late or unpaid",
                          "count"),
    "has_default": ("1 if any payment reached the default threshold of days past due before the as-of date, or"
                    " a loan originated before it has status default or charged_off",
                    "flag"),
    "annual_income": ("annual income from the customers table", "currency"),
    "credit_score": ("credit score from the customers table (300-850)", "points"),
}
DESCRIPTIVE_COLUMNS = {
    "region": "region from the customers table (descriptive, not a clustering feature)",
    "employment_status": "employment status from the customers table (descriptive)",
}
FEATURE_TABLE_COMMENT = "Per-customer features as of a date (only events strictly before it); one row per customer"


def feature_comments() -> dict[str, str]:
    """Column comments for customer_features."""
    comments = {name: f"{definition} [{unit}]" for name, (definition, unit) in FEATURES.items()}
    comments["customer_id"] = "customer identifier (contract customer_id)"
    comments["as_of_date"] = "features use only events strictly before this date"
    return {**comments, **DESCRIPTIVE_COLUMNS}
