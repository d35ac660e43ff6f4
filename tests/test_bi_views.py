"""The BI views in sql/ on the golden run's outputs (trained on JAN, views created, FEB scored): their columns, and
rows checked against the tables."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from chispa import assert_df_equality

from custseg.bi import views as bi
from custseg.contract import outputs as tables
from custseg.platform.storage import read_delta
from golden import AS_OF as JAN
from golden import DATABASE
from golden import LATER as FEB

ROOT = Path(__file__).resolve().parents[1]

COLUMNS = {
    "segment_overview": [
        "as_of_date", "run_id", "is_latest", "segment_id", "segment_name", "size", "share", "risk_tier",
        "tier_reason", "credit_action", "apr_low", "apr_high", "credit_limit_multiplier", "marketing_strategy",
        "distinguishing_features", "mean_recency_days", "mean_frequency", "mean_monetary", "mean_avg_ticket",
        "mean_tenure_days", "mean_annual_income", "median_monetary", "median_frequency", "median_tenure_days",
        "lapsed_share", "mean_credit_score", "borrower_share", "borrowers", "defaulted_borrowers",
        "default_rate_ever", "default_rate_ever_ci_low", "default_rate_ever_ci_high", "late_borrowers_12m",
        "late_payment_rate_12m", "late_payment_rate_12m_ci_low", "late_payment_rate_12m_ci_high", "max_dpd",
        "mean_distance_to_centroid"],
    "customer_lookup": [
        "customer_id", "as_of_date", "segment_id", "segment_name", "distance_to_centroid", "model_run_id",
        "risk_tier", "credit_action", "marketing_strategy", "distinguishing_features"],
    "segment_history": [
        "customer_id", "as_of_date", "segment_id", "segment_name", "distance_to_centroid", "model_run_id",
        "previous_as_of_date", "previous_segment_id", "previous_segment_name", "has_changed_segment"],
    "k_selection_record": [
        "as_of_date", "run_id", "k", "segments", "silhouette", "sse", "davies_bouldin", "calinski_harabasz",
        "min_share", "stability", "is_eligible", "is_chosen", "chosen_k", "chosen_reason", "sample_rows",
        "run_finished_at", "features_used"],
}



@pytest.fixture(scope="module")
def run(golden):
    """The golden run trained on January, created the views, then scored February: the views must show both dates."""
    return {"conf": golden.conf, "record": golden.train, "created": golden.views,
            "dates_before_scoring": golden.view_dates_before_scoring}


def view(spark, name: str) -> pd.DataFrame:
    return spark.table(name).toPandas()


def table(spark, run, name: str) -> pd.DataFrame:
    return read_delta(spark, run["conf"].table_path(name)).toPandas()


def test_every_view_has_its_documented_columns(spark, run):
    assert run["created"] == list(bi.VIEWS) == list(COLUMNS)
    for name, columns in COLUMNS.items():
        assert spark.table(name).columns == columns, name


def test_views_follow_new_delta_versions_without_being_recreated(spark, run):
    assert run["dates_before_scoring"] == 1
    dates = {r["as_of_date"] for r in spark.table("segment_history").select("as_of_date").distinct().collect()}
    assert dates == {JAN, FEB}


def test_segment_overview_has_one_row_per_segment_with_assignment_sizes(spark, run):
    overview = view(spark, "segment_overview")
    assignments = table(spark, run, tables.SEGMENT_ASSIGNMENTS)
    jan_sizes = assignments[assignments["as_of_date"] == JAN].groupby("segment_id").size()
    assert len(overview) == run["record"].metrics["chosen_k"] == len(jan_sizes)
    assert overview["is_latest"].all() and set(overview["run_id"]) == {run["record"].run_id}
    for _, row in overview.iterrows():
        assert row["size"] == jan_sizes[row["segment_id"]]
        assert row["risk_tier"] in {"low", "medium", "high", "unrated"} and row["segment_name"]
    assert overview["share"].sum() == pytest.approx(1.0)


def test_customer_lookup_gives_each_customers_newest_segment_and_its_profile(spark, run):
    lookup = view(spark, "customer_lookup")
    assignments = table(spark, run, tables.SEGMENT_ASSIGNMENTS)
    profiles = table(spark, run, tables.SEGMENT_PROFILES).set_index("segment_id")
    assert lookup["customer_id"].is_unique
    assert set(lookup["customer_id"]) == set(assignments["customer_id"])
    newest = assignments.loc[assignments.groupby("customer_id")["as_of_date"].idxmax()].set_index("customer_id")
    assert (lookup["as_of_date"] == FEB).all()  # every January customer was scored again in February
    for _, row in lookup.iterrows():
        expected = newest.loc[row["customer_id"]]
        assert (row["segment_id"], row["segment_name"], row["model_run_id"]) == (
            expected["segment_id"], expected["segment_name"], expected["run_id"])
        assert row["risk_tier"] == profiles.loc[row["segment_id"], "risk_tier"]
        assert row["credit_action"] == profiles.loc[row["segment_id"], "credit_action"]


def test_segment_history_links_each_date_to_the_previous_one(spark, run):
    history = view(spark, "segment_history")
    assignments = table(spark, run, tables.SEGMENT_ASSIGNMENTS)
    assert len(history) == len(assignments)
    jan = history[history["as_of_date"] == JAN]
    assert jan["previous_as_of_date"].isna().all() and not jan["has_changed_segment"].any()
    jan_rows = assignments[assignments["as_of_date"] == JAN].set_index("customer_id")
    jan_names, jan_ids = jan_rows["segment_name"], jan_rows["segment_id"]
    feb = history[history["as_of_date"] == FEB]
    assert len(feb) == len(jan_names)
    for _, row in feb.iterrows():
        assert row["previous_as_of_date"] == JAN
        assert row["previous_segment_name"] == jan_names[row["customer_id"]]
        assert row["previous_segment_id"] == jan_ids[row["customer_id"]]
        assert row["has_changed_segment"] == (row["segment_id"] != jan_ids[row["customer_id"]])
    # "Which segment was customer X in on date D": the newest row on or before D.
    customer = feb["customer_id"].iloc[0]
    on_date = spark.sql(f"""
        SELECT segment_name FROM segment_history
        WHERE customer_id = '{customer}' AND as_of_date = (
          SELECT MAX(as_of_date) FROM segment_history
          WHERE customer_id = '{customer}' AND as_of_date <= DATE'2026-01-15')
    """).collect()
    assert [r["segment_name"] for r in on_date] == [jan_names[customer]]


def test_k_selection_record_repeats_the_choice_on_every_candidate(spark, run):
    record_df = view(spark, "k_selection_record")
    chosen_k = run["record"].metrics["chosen_k"]
    assert sorted(record_df["k"]) == [4, 5, 6]  # every candidate of the golden run's sweep, K in 4..6
    assert record_df["is_chosen"].sum() == 1
    assert record_df.loc[record_df["is_chosen"], "k"].item() == chosen_k
    assert (record_df["chosen_k"] == chosen_k).all()
    assert (record_df["chosen_reason"] == run["record"].metrics["reason"]).all()
    assert record_df["run_finished_at"].notna().all()
    assert json.loads(record_df["features_used"].iloc[0]) == run["record"].metrics["features_used"]


def test_render_sql_fills_the_output_path_and_rejects_what_it_cannot_quote():
    sql = bi.render_sql("segment_overview", "s3a://bank-lake/custseg/")
    assert "delta.`s3a://bank-lake/custseg/segment_profiles`" in sql and "${" not in sql
    with pytest.raises(ValueError, match="backtick"):
        bi.render_sql("segment_overview", "/tmp/odd`path")
    with pytest.raises(ValueError, match="unknown BI view 'nope'"):
        bi.render_sql("nope", "/tmp/out")


def test_render_sql_works_from_the_packaged_zip(tmp_path):
    subprocess.run(["bash", str(ROOT / "scripts" / "package.sh")], check=True, capture_output=True)
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from custseg.bi import views as bi; "
            "print(bi.__file__); print(bi.render_sql('customer_lookup', '/data/out'))")
    # -I: no PYTHONPATH, no user site; the zip comes before the checkout's editable install on sys.path.
    result = subprocess.run([sys.executable, "-I", "-c", code, str(ROOT / "dist" / "custseg_lib.zip")],
                            check=True, capture_output=True, text=True, cwd=tmp_path)
    assert result.stdout.splitlines()[0].endswith("custseg_lib.zip/custseg/bi/views.py")
    assert "delta.`/data/out/segment_assignments`" in result.stdout


def test_every_output_is_registered_in_the_configured_database_with_its_comments(spark, run):
    shown = spark.sql(f"SHOW TABLES IN {DATABASE}").collect()
    registered = {r["tableName"] for r in shown if not r["isTemporary"]}  # the BI views are temporary
    assert registered == set(tables.OUTPUT_TABLES)
    conf = run["conf"]
    for name in (tables.SEGMENT_ASSIGNMENTS, tables.SEGMENT_PROFILES, "customer_features"):
        # The catalog table is the path-based table under a name: same rows, both dates included.
        assert_df_equality(spark.table(f"{DATABASE}.{name}"), read_delta(spark, conf.table_path(name)),
                           ignore_row_order=True, ignore_nullable=True)
    described = {r["col_name"]: r["data_type"] for r in
                 spark.sql(f"DESCRIBE TABLE EXTENDED {DATABASE}.{tables.SEGMENT_PROFILES}").collect()}
    assert described["Comment"] == tables.TABLE_COMMENTS[tables.SEGMENT_PROFILES]
    profile_columns = spark.sql(f"DESCRIBE {DATABASE}.{tables.SEGMENT_PROFILES}").collect()
    columns = {r["col_name"]: r["comment"] for r in profile_columns}
    assert columns["risk_tier"] == tables.COLUMN_COMMENTS[tables.SEGMENT_PROFILES]["risk_tier"]
