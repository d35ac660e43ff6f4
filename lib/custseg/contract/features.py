"""The customer_features table: every feature's definition and unit, its column comments.

docs/features.md is written from FEATURES (scripts/write_feature_docs.py).
"""
from __future__ import annotations

from typing import NamedTuple

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
    "is_repeat_buyer": ("1 if the customer made 2 or more purchases in the lookback window (gap_mean_days is"
                        " defined), else 0", "flag"),
    "active_months": ("distinct calendar months with a purchase in the lookback window", "count"),
    "n_categories": ("distinct categories of the purchases in the lookback window; 0 without purchases; null"
                     " when none of the customer's purchases has a category (every buyer's when the transactions"
                     " have no category column)", "count"),
    "top_category_share": ("share of purchase amount in the customer's largest category; null without purchases,"
                           " or when none has a category", "ratio"),
    "digital_share": ("share of the purchases with a known channel made online or on mobile; null without such"
                      " purchases (all null when the transactions have no channel column)", "ratio"),
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
# Features whose null means "not applicable" (undefined by construction), not "unknown". The model gives such a
# customer the defined value here, never a median of the customers for whom the feature is defined, which would
# make them look like those customers. The Spark pipeline (ml/pipeline.py) and the applicant scorer
# (custseg/applicant.py, through the exported model) both apply these rules.
class DefinedValue(NamedTuple):
    value: float | None  # None: features.lookback_days
    when: str  # when the feature is null
    meaning: str  # what the value means
    only_when_zero: str | None = None  # the value applies only when this other feature is 0; else the null is unknown


NOT_APPLICABLE: dict[str, DefinedValue] = {
    "avg_ticket": DefinedValue(0.0, "no purchase in the window", "0: nothing spent per purchase, as monetary is 0"),
    "refund_rate": DefinedValue(0.0, "no transaction in the window", "0: no refund"),
    "gap_mean_days": DefinedValue(None, "fewer than 2 purchases in the window",
                                  "the window length (features.lookback_days): no repeat purchase within it, as"
                                  " is_repeat_buyer = 0 says"),
    "gap_std_days": DefinedValue(0.0, "fewer than 3 purchases in the window", "0: no spread observed"),
    "top_category_share": DefinedValue(0.0, "no purchase in the window", "0: no category holds any spend",
                                       only_when_zero="frequency"),
    "digital_share": DefinedValue(0.0, "no purchase in the window", "0: no digital purchase",
                                  only_when_zero="frequency"),
    "utilisation": DefinedValue(0.0, "no loan", "0: nothing outstanding"),
    "on_time_rate": DefinedValue(1.0, "no payment due: a non-borrower, or a loan without a due payment yet",
                                 "1: nothing was late, as max_dpd = 0 says; n_loans tells borrowers apart"),
}


def defined_value(feature: str, lookback_days: int) -> float:
    """The number a not-applicable feature is given."""
    value = NOT_APPLICABLE[feature].value
    return float(lookback_days) if value is None else value


# Features that can be null because the inputs did not give a value: the model imputes the exact median of the
# training customers. A feature null for every customer is left out of the clustering instead.
UNKNOWN: dict[str, str] = {
    "annual_income": "not in the customers table",
    "credit_score": "not in the customers table",
    "digital_share": "purchases, but none with a known channel",
    "n_categories": "purchases, but none with a category",
    "top_category_share": "purchases, but none with a category",
}
# Null for every customer without a loans table (then left out of the clustering): no evidence is not good
# repayment. The repayment features are null as well with loans but no loan_payments table.
NULL_WITHOUT_PAYMENTS = ("utilisation", "on_time_rate", "max_dpd", "current_dpd", "late_payments_12m")
NULL_WITHOUT_LOANS = ("n_loans", "total_principal", *NULL_WITHOUT_PAYMENTS, "has_default")


def null_rule(name: str) -> str:
    """What a null of the feature means and what the clustering model does with it (docs/features.md)."""
    rules = []
    if name in NOT_APPLICABLE:
        rule = NOT_APPLICABLE[name]
        rules.append(f"not applicable ({rule.when}) -> {rule.meaning}")
    if name in UNKNOWN:
        rules.append(f"unknown ({UNKNOWN[name]}) -> the exact training median")
    if name in NULL_WITHOUT_PAYMENTS:
        rules.append("null for every customer without a loans or a loan_payments table -> left out")
    elif name in NULL_WITHOUT_LOANS:
        rules.append("null for every customer without a loans table -> left out")
    return "; ".join(rules) or "never null"


DESCRIPTIVE_COLUMNS = {
    "region": "region from the customers table (descriptive, not a clustering feature)",
    "employment_status": "employment status from the customers table (descriptive)",
    "spend_by_category": "purchase spend in the lookback window per transaction category: (category, amount) pairs "
                         "sorted by category; purchases without a category left out, empty without any [currency]",
    "products_held": "the products the customer held at the as-of date: opened before it and not closed before it "
                     "(lower-case, sorted); null when the inputs had no products table",
    "same_moment_purchases": "purchases in the lookback window at the same moment as the customer's previous one "
                             "(a data check: many mean lines of one invoice, or timestamps without a time of day) "
                             "[count]",
}
FEATURE_TABLE_COMMENT = "Per-customer features as of a date (only events strictly before it); one row per customer"


def feature_comments() -> dict[str, str]:
    """Column comments for customer_features."""
    comments = {name: f"{definition} [{unit}]" for name, (definition, unit) in FEATURES.items()}
    comments["customer_id"] = "customer identifier (contract customer_id)"
    comments["as_of_date"] = "features use only events strictly before this date"
    return {**comments, **DESCRIPTIVE_COLUMNS}
