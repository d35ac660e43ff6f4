"""Single-machine peer of the custseg pipeline in pandas + numpy + scikit-learn, for side-by-side timing.

Same rules and feature definitions as lib/custseg (validation.py, features.py, model.py, kselect.py),
written as a pandas user would: vectorised column operations, groupby and merge, no loops over rows.
Known, deliberate differences from the Spark pipeline:

- duplicate keys: the kept row is the first after sorting the duplicates by all contract columns
  (Spark keeps the first by the row's JSON text; both are deterministic, they may pick different rows);
- inputs are Parquet in the contract's types, so there is no parsing step (no unparseable_value);
- K selection skips the stability refits (ARI); silhouette is scikit-learn's on at most
  SILHOUETTE_SAMPLE rows of the K-selection sample, squared Euclidean like Spark's ClusteringEvaluator;
- the scaler uses the population standard deviation (Spark: sample); it does not change the clusters materially.

Preprocessing follows lib/custseg/ml/pipeline.py: not-applicable values get their defined value
(custseg.contract.features.NOT_APPLICABLE, restated in pandas here), the rest exact medians, then signed log1p
and outlier caps at exact quantiles (linear interpolation, as Spark's `percentile`).
"""
from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from custseg.config import Config, FeatureConf, ModelConf  # noqa: E402
from custseg.contract.features import UNKNOWN  # noqa: E402
from custseg.contract.inputs import (  # noqa: E402
    CONTRACTS,
    CREDIT_SCORE_RANGE,
    DEFAULTED_STATUSES,
    LOAN_STATUSES,
    REASON_CODES,  # noqa: E402
    TableContract,
)
from custseg.transforms.features import DIGITAL_CHANNELS, FEATURES, ZERO_WHEN_NO_ACTIVITY  # noqa: E402

TABLES = ("customers", "transactions", "loans", "loan_payments")
OPTIONAL_TABLES = ("loans", "loan_payments")
# Checked in this order, only on rows that passed the rules (as the references in custseg.contract.inputs).
REFERENCES = {
    "transactions": [("customer_id", "customers", "unknown_customer")],
    "loans": [("customer_id", "customers", "unknown_customer")],
    "loan_payments": [("loan_id", "loans", "unknown_loan"), ("customer_id", "customers", "unknown_customer")],
}
REASONS = ("", *REASON_CODES)  # "" = passed every rule
NON_NEGATIVE = ("annual_income", "principal", "amount_due", "amount_paid", "outstanding_balance")
INTEGER_FEATURES = ("tenure_days", "recency_days", "frequency", "active_months", "n_categories", "is_repeat_buyer",
                    "n_loans", "max_dpd", "current_dpd", "late_payments_12m", "has_default")  # Spark longs
# custseg.contract.features.NOT_APPLICABLE in pandas: the defined value of a structurally undefined feature
# ("lookback": features.lookback_days); digital_share and top_category_share get 0 only without purchases (else
# they are unknown).
NOT_APPLICABLE_FILLS = {"avg_ticket": 0.0, "refund_rate": 0.0, "gap_mean_days": "lookback", "gap_std_days": 0.0,
                        "top_category_share": 0.0, "digital_share": 0.0, "utilisation": 0.0, "on_time_rate": 1.0}
SILHOUETTE_SAMPLE = 10_000  # silhouette is O(n^2): scored on at most this many rows of the sample
PANDAS_TYPES = {"string": "object", "double": "float64", "int": "float64", "date": "datetime64[ns]",
                "timestamp": "datetime64[ns]"}


# ---------------------------------------------------------------- read and validate


def _empty(contract: TableContract) -> pd.DataFrame:
    return pd.DataFrame({c.name: pd.Series(dtype=PANDAS_TYPES[c.type]) for c in contract.columns})


def read_inputs(paths: dict[str, str]) -> dict[str, pd.DataFrame]:
    """Read each table's Parquet directory; a missing optional table is an empty frame."""
    frames = {}
    for table in TABLES:
        if paths.get(table):
            # Strings as Arrow-backed columns (pandas 3's default): a Python object per value would take
            # about 5 times the memory and make every string operation a Python loop.
            with pd.option_context("future.infer_string", True):
                frames[table] = pd.read_parquet(paths[table], engine="pyarrow")
        elif table in OPTIONAL_TABLES:
            frames[table] = _empty(CONTRACTS[table])
        else:
            raise ValueError(f"input table '{table}' is required")
    return frames


def conform(df: pd.DataFrame, contract: TableContract) -> pd.DataFrame:
    """Contract columns only (PII and extras dropped), strings trimmed with blanks as null, naive UTC times."""
    missing = [name for name in contract.required if name not in df.columns]
    if missing:
        raise ValueError(f"input table '{contract.name}': required column(s) {missing} missing")
    out = {}
    for column in contract.columns:
        if column.name not in df.columns:
            out[column.name] = pd.Series(np.nan, index=df.index, dtype=PANDAS_TYPES[column.type])
            continue
        values = df[column.name]
        if column.type == "string":
            values = values.str.strip(" ")  # Spark's trim removes spaces only
            values = values.mask(values == "")
        elif column.type in ("double", "int"):
            values = values.astype("float64", copy=False)  # float: nullable ints read as float anyway
        else:
            values = pd.to_datetime(values)
            if values.dt.tz is not None:
                values = values.dt.tz_convert("UTC").dt.tz_localize(None)
        out[column.name] = values
    return pd.DataFrame(out, index=df.index)


def row_reasons(df: pd.DataFrame, contract: TableContract) -> pd.Series:
    """The first row rule each row breaks ('' if none), in the order of docs/validation.md."""
    rules = [(df[name].isna(), "missing_required_value") for name in contract.required]
    if contract.name == "customers":
        score = df["credit_score"]
        rules.append((score.notna() & ~score.between(*CREDIT_SCORE_RANGE), "out_of_range"))
    rules += [(df[name] < 0, "out_of_range") for name in NON_NEGATIVE if name in df.columns]
    if contract.name == "loans":
        rules.append((~df["status"].str.lower().isin(LOAN_STATUSES), "invalid_value"))
    if contract.name == "transactions":
        rules.append((df["amount"] == 0, "zero_amount"))
    # Small integer codes, not a string per row: a categorical takes 1 byte a row.
    codes = np.select([mask.to_numpy() for mask, _ in rules], [REASONS.index(code) for _, code in rules], default=0)
    return pd.Series(pd.Categorical.from_codes(codes.astype("int8"), categories=REASONS), index=df.index)


def mark_duplicates(df: pd.DataFrame, reasons: pd.Series, key: list[str]) -> pd.Series:
    """Among rows that passed, keep the first of each key after sorting by all columns; reject the others."""
    keys = df.loc[reasons == "", key]
    shared = keys.duplicated(keep=False)
    candidates = df.loc[shared[shared].index]  # sort only the rows of the few duplicated keys
    losers = candidates.sort_values(list(candidates.columns)).duplicated(key, keep="first")
    return reasons.mask(reasons.index.isin(losers[losers].index), "duplicate_key")


def validate(inputs: dict[str, pd.DataFrame]) -> tuple[dict[str, pd.DataFrame], dict[str, int]]:
    """Accepted rows per table and rejected row counts keyed '<table>.<reason>'."""
    accepted: dict[str, pd.DataFrame] = {}
    rejected_counts: dict[str, int] = {}
    for table in TABLES:  # parents first, for the reference checks
        contract = CONTRACTS[table]
        df = conform(inputs[table], contract)
        reasons = row_reasons(df, contract)
        reasons = mark_duplicates(df, reasons, list(contract.key))
        for column, parent, code in REFERENCES.get(table, []):
            unknown = (reasons == "") & ~df[column].isin(accepted[parent][column])
            reasons[unknown] = code
        if table == "loans":
            df["status"] = df["status"].str.lower()
        accepted[table] = df[reasons == ""].reset_index(drop=True)
        for reason, n in reasons[reasons != ""].value_counts().items():
            if n:  # a categorical counts every category, those without rows too
                rejected_counts[f"{table}.{reason}"] = int(n)
    return accepted, rejected_counts


# ---------------------------------------------------------------- features


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, null where the denominator is 0 (Spark's try_divide)."""
    return numerator / denominator.where(denominator != 0)


def transaction_features(txn: pd.DataFrame, as_of: pd.Timestamp, lookback_days: int,
                         trend_days: int) -> pd.DataFrame:
    """One row per customer with a transaction before the as-of date, indexed by customer_id."""
    txn = txn[txn["transaction_ts"] < as_of]
    ts, amount = txn["transaction_ts"], txn["amount"]

    def since(days: int) -> pd.Series:
        return ts >= as_of - pd.Timedelta(days=days)

    is_purchase = amount > 0
    in_lookback = since(lookback_days)
    counted = is_purchase & in_lookback
    is_refund = (amount < 0) & in_lookback
    prior_trend = since(2 * trend_days) & ~since(trend_days)
    flags = pd.DataFrame({
        "customer_id": txn["customer_id"],
        "last_purchase_ts": ts.where(is_purchase),
        "frequency": counted,
        "purchase_amount": amount.where(counted, 0.0),
        "refund_amount": -amount.where(is_refund, 0.0),
        "refunds": is_refund,
        "spend_30d": amount.where(is_purchase & since(30), 0.0),
        "spend_90d": amount.where(is_purchase & since(90), 0.0),
        "spend_365d": amount.where(is_purchase & since(365), 0.0),
        "spend_recent": amount.where(is_purchase & since(trend_days), 0.0),
        "spend_prior": amount.where(is_purchase & prior_trend, 0.0),
        "digital": counted & txn["channel"].str.lower().isin(DIGITAL_CHANNELS),
        "channel_known": counted & txn["channel"].notna(),
    })
    t = flags.groupby("customer_id").agg(
        last_purchase_ts=("last_purchase_ts", "max"),
        **{name: (name, "sum") for name in flags.columns if name not in ("customer_id", "last_purchase_ts")},
    )

    purchases = txn[counted]
    # Purchases without a category are no category of their own: without another one the mix is unknown.
    by_category = purchases.groupby(["customer_id", "category"], dropna=True)["amount"].sum()
    mix = by_category.groupby(level="customer_id").agg(top_category_amount="max", n_categories="size")
    months = purchases["transaction_ts"].dt.to_period("M").groupby(purchases["customer_id"]).nunique()
    # Gaps between consecutive purchases; equal timestamps give 0 whatever their order.
    ordered = purchases[["customer_id", "transaction_ts"]].sort_values(["customer_id", "transaction_ts"])
    gaps = ordered.groupby("customer_id")["transaction_ts"].diff().dt.total_seconds() / 86400.0
    gap_stats = gaps.groupby(ordered["customer_id"]).agg(["mean", "std"])  # std: ddof=1, null if < 2 gaps
    t = t.join(mix).join(months.rename("active_months")).join(gap_stats)

    trend_total = t["spend_recent"] + t["spend_prior"]
    return pd.DataFrame({
        "last_purchase_ts": t["last_purchase_ts"],
        "frequency": t["frequency"],
        "monetary": t["purchase_amount"] - t["refund_amount"],
        "avg_ticket": _ratio(t["purchase_amount"], t["frequency"]),
        "spend_30d": t["spend_30d"],
        "spend_90d": t["spend_90d"],
        "spend_365d": t["spend_365d"],
        "spend_trend": ((t["spend_recent"] - t["spend_prior"]) / trend_total.where(trend_total > 0)).fillna(0.0),
        "refund_rate": _ratio(t["refunds"], t["frequency"] + t["refunds"]),
        "gap_mean_days": t["mean"],
        "gap_std_days": t["std"],
        "is_repeat_buyer": (t["frequency"] >= 2).astype("int64"),
        "active_months": t["active_months"].fillna(0),
        "n_categories": t["n_categories"].fillna(0).where(t["n_categories"].notna() | (t["frequency"] == 0)),
        "top_category_share": _ratio(t["top_category_amount"], t["purchase_amount"]),
        "digital_share": _ratio(t["digital"], t["channel_known"]),  # an unknown channel is not an offline one
    })


def loan_features(loans: pd.DataFrame, payments: pd.DataFrame, as_of: pd.Timestamp, late_window_days: int,
                  default_dpd: int) -> pd.DataFrame:
    """One row per customer with a loan originated before the as-of date, indexed by customer_id."""
    loans = loans[loans["origination_date"] < as_of]
    due = payments[payments["due_date"] < as_of]
    paid_then = due["paid_date"] < as_of  # NaT compares False: unpaid
    dpd = (due["paid_date"] - due["due_date"]).dt.days.clip(lower=0).where(paid_then, (as_of - due["due_date"]).dt.days)
    per_payment = pd.DataFrame({
        "loan_id": due["loan_id"],
        "paid": due["amount_paid"].fillna(due["amount_due"]).where(paid_then, 0.0),
        "on_time": paid_then & (due["paid_date"] <= due["due_date"]),
        "dpd": dpd,
        "unpaid_dpd": dpd.where(~paid_then),
        "late": (due["due_date"] >= as_of - pd.Timedelta(days=late_window_days)) & (dpd > 0),
    })
    per_loan = per_payment.groupby("loan_id").agg(
        paid=("paid", "sum"), payments_due=("dpd", "size"), on_time=("on_time", "sum"), max_dpd=("dpd", "max"),
        current_dpd=("unpaid_dpd", "max"), late=("late", "sum"))
    per_loan = loans.merge(per_loan, left_on="loan_id", right_index=True, how="left")
    per_loan["outstanding"] = (per_loan["principal"] - per_loan["paid"].fillna(0.0)).clip(lower=0.0)
    per_loan["defaulted"] = per_loan["status"].isin(DEFAULTED_STATUSES)
    c = per_loan.groupby("customer_id").agg(
        n_loans=("loan_id", "size"), total_principal=("principal", "sum"), outstanding=("outstanding", "sum"),
        payments_due=("payments_due", "sum"), on_time=("on_time", "sum"), max_dpd=("max_dpd", "max"),
        current_dpd=("current_dpd", "max"), late=("late", "sum"), defaulted=("defaulted", "any"))
    max_dpd = c["max_dpd"].fillna(0)
    return pd.DataFrame({
        "n_loans": c["n_loans"],
        "total_principal": c["total_principal"],
        "utilisation": _ratio(c["outstanding"], c["total_principal"]),
        "on_time_rate": _ratio(c["on_time"], c["payments_due"]),
        "max_dpd": max_dpd,
        "current_dpd": c["current_dpd"].fillna(0),
        "late_payments_12m": c["late"],
        "has_default": ((max_dpd >= default_dpd) | c["defaulted"]).astype("int64"),
    })


def compute_features(accepted: dict[str, pd.DataFrame], as_of: dt.date, features_conf: FeatureConf) -> pd.DataFrame:
    """customer_id + FEATURES for every customer signed up before the as-of date (events strictly before it)."""
    as_of_ts = pd.Timestamp(as_of)
    f = features_conf
    customers = accepted["customers"]
    base = customers[customers["signup_date"] < as_of_ts].set_index("customer_id")
    txn = transaction_features(accepted["transactions"], as_of_ts, f.lookback_days, f.trend_window_days)
    loans = loan_features(accepted["loans"], accepted["loan_payments"], as_of_ts, f.late_payment_window_days,
                          f.default_dpd)
    out = base[["signup_date", "annual_income", "credit_score"]].join(txn).join(loans)
    out["tenure_days"] = (as_of_ts - out["signup_date"]).dt.days
    out["recency_days"] = (as_of_ts - out["last_purchase_ts"].dt.normalize()).dt.days.fillna(out["tenure_days"])
    # 0 without any transaction; a null in a customer's transaction row is unknown (n_categories).
    out["n_categories"] = out["n_categories"].mask(out["frequency"].isna(), 0)
    zero_fills = [name for name in ZERO_WHEN_NO_ACTIVITY if name not in UNKNOWN]
    out[zero_fills] = out[zero_fills].fillna(0)
    out = out.astype({**dict.fromkeys(INTEGER_FEATURES, "int64"), **dict.fromkeys(UNKNOWN.keys() & INTEGER_FEATURES,
                                                                                  "Int64")})
    return out[list(FEATURES)].reset_index()


# ---------------------------------------------------------------- segmentation


def prepare(features_df: pd.DataFrame, model_conf: ModelConf, lookback_days: int = 365) -> np.ndarray:
    """Defined values for not-applicable nulls, exact median for the rest, signed log1p, outlier caps, standardise;
    features all null or constant are left out (as in Spark)."""
    used = [name for name in model_conf.features if features_df[name].nunique() > 1]
    x = features_df[used].astype("float64")
    for name in used:
        fill = NOT_APPLICABLE_FILLS.get(name)
        if fill is not None:
            not_applicable = features_df["frequency"] == 0 if name in UNKNOWN else x[name].isna()
            x[name] = x[name].mask(x[name].isna() & not_applicable, lookback_days if fill == "lookback" else fill)
    x = x.fillna(x.median())
    logged = [name for name in model_conf.log1p_features if name in used]
    x[logged] = np.sign(x[logged]) * np.log1p(x[logged].abs())
    caps = model_conf.outlier_caps
    if caps.enabled:
        low, high = x.quantile(caps.lower_quantile), x.quantile(caps.upper_quantile)  # linear, as Spark percentile
        capped = [name for name in used if low[name] < high[name]]  # caps that would make a feature constant: none
        x[capped] = x[capped].clip(low[capped], high[capped], axis=1)
    return StandardScaler().fit_transform(x.to_numpy())


def _kmeans(k: int, model_conf: ModelConf, seed: int) -> KMeans:
    return KMeans(n_clusters=k, n_init=model_conf.n_init, max_iter=model_conf.max_iter, random_state=seed)


def select_k(x: np.ndarray, model_conf: ModelConf, seed: int) -> tuple[int, pd.DataFrame]:
    """K sweep on a seeded sample: the chosen K and a table of silhouette, SSE and smallest share per K."""
    rng = np.random.default_rng(seed)
    sample = x if len(x) <= model_conf.sample_size else x[rng.choice(len(x), model_conf.sample_size, replace=False)]
    rows = []
    for k in range(model_conf.k_min, min(model_conf.k_max, len(sample) - 1) + 1):
        km = _kmeans(k, model_conf, seed).fit(sample)
        silhouette = silhouette_score(sample, km.labels_, metric="sqeuclidean",
                                      sample_size=min(len(sample), SILHOUETTE_SAMPLE), random_state=seed)
        min_share = np.bincount(km.labels_, minlength=k).min() / len(sample)
        rows.append({"k": k, "silhouette": float(silhouette), "sse": float(km.inertia_),
                     "min_share": float(min_share), "is_eligible": bool(min_share >= model_conf.min_segment_share)})
    table = pd.DataFrame(rows)
    if model_conf.k is not None:
        chosen = model_conf.k
    else:
        candidates = table[table["is_eligible"]] if table["is_eligible"].any() else table
        chosen = int(candidates.sort_values(["silhouette", "k"], ascending=[False, True])["k"].iloc[0])
    table["is_chosen"] = table["k"] == chosen
    return chosen, table


def final_fit(features_df: pd.DataFrame, x: np.ndarray, k: int, model_conf: ModelConf, seed: int) -> pd.DataFrame:
    """K-means on all customers: customer_id, segment_id, distance_to_centroid (scaled space)."""
    km = _kmeans(k, model_conf, seed).fit(x)
    distance = np.linalg.norm(x - km.cluster_centers_[km.labels_], axis=1)
    return pd.DataFrame({"customer_id": features_df["customer_id"].to_numpy(), "segment_id": km.labels_,
                         "distance_to_centroid": distance})


def profile(features_df: pd.DataFrame, assignments: pd.DataFrame) -> pd.DataFrame:
    """Per segment: size, share and the mean of every feature."""
    joined = features_df.merge(assignments[["customer_id", "segment_id"]], on="customer_id")
    means = joined.groupby("segment_id")[list(FEATURES)].mean().add_prefix("mean_")
    size = joined.groupby("segment_id").size()
    return pd.concat([size.rename("size"), (size / len(joined)).rename("share"), means], axis=1).reset_index()


def segment(features_df: pd.DataFrame, model_conf: ModelConf, seed: int,
            lookback_days: int = 365) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Preprocess, choose K on a sample, fit on everyone: (assignments, profiles, k_table)."""
    x = prepare(features_df, model_conf, lookback_days)
    k, k_table = select_k(x, model_conf, seed)
    assignments = final_fit(features_df, x, k, model_conf, seed)
    return assignments, profile(features_df, assignments), k_table


# ---------------------------------------------------------------- whole run


def run_peer(paths: dict[str, str], out_dir: str, as_of: dt.date, conf: Config) -> dict[str, float]:
    """Every step, outputs as Parquet under out_dir; returns seconds per stage and in total."""
    seconds: dict[str, float] = {}
    start = last = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal last
        now = time.perf_counter()
        seconds[stage], last = now - last, now

    inputs = read_inputs(paths)
    lap("read")
    accepted, _ = validate(inputs)
    del inputs  # the raw frames are not needed any more: free them before the features
    lap("validate")
    features_df = compute_features(accepted, as_of, conf.features)
    lap("features")
    x = prepare(features_df, conf.model, conf.features.lookback_days)  # preprocessing counts towards K selection
    k, k_table = select_k(x, conf.model, conf.seed)
    lap("k_selection")
    assignments = final_fit(features_df, x, k, conf.model, conf.seed)
    lap("final_fit")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    features_df.to_parquet(out / "features.parquet", index=False)
    assignments.to_parquet(out / "assignments.parquet", index=False)
    profile(features_df, assignments).to_parquet(out / "profiles.parquet", index=False)  # Spark: with writes
    k_table.to_parquet(out / "k_table.parquet", index=False)
    lap("writes")
    seconds["total"] = time.perf_counter() - start
    return seconds
