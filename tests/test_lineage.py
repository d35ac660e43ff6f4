"""Stable segment ids across retrains (ml/lineage.py) and migration between dates (transforms/migration.py): the
matching by hand, then two months trained as a bank would, with a new group of customers in the second."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from custseg.applicant import ApplicantScorer
from custseg.contract import outputs
from custseg.contract.features import FEATURES
from custseg.flows.train_segments import run_train_segments
from custseg.ml.lineage import Link, jaccard, match_segments, stable_ids
from custseg.platform.locations import applicant_model_location
from custseg.platform.storage import read_delta
from custseg.transforms.migration import migration
from helpers import make_conf, write_features


def test_the_first_run_numbers_its_segments_from_zero():
    links = match_segments(3, {}, [], None, 0.5)
    assert stable_ids(links) == [0, 1, 2] and {link.status for link in links} == {"new"}


def test_clusters_keep_the_ids_of_the_segments_they_continue_and_a_new_one_gets_a_new_id():
    # previous segments 0, 1, 2 (ids up to 2 given); new clusters: 0 ~ old 2, 1 ~ old 0, 2 ~ old 1, 3 unseen
    common = {(0, 2): 48, (0, 1): 2, (1, 0): 50, (2, 1): 45, (2, 0): 5, (3, 2): 1}
    links = match_segments(4, common, [0, 1, 2], 2, 0.5)
    assert stable_ids(links) == [2, 0, 1, 3]
    assert [link.status for link in links] == ["kept", "kept", "kept", "new"]
    # Jaccard of cluster 0 and old 2: 48 in common, 50 in cluster 0, 49 in old 2 -> 48 / 51
    assert links[0].overlap == pytest.approx(48 / 51)
    assert links[3].previous_segment_id is None and links[3].overlap == pytest.approx(1 / 49)


def test_a_weak_match_gets_a_new_id_and_retired_ids_are_never_reused():
    # ids up to 7 were given before (5 is the previous run's, 6 and 7 retired earlier)
    common = {(0, 0): 40, (1, 5): 8, (1, 0): 12}
    links = match_segments(2, common, [0, 5], 7, 0.5)
    assert stable_ids(links) == [0, 8]  # cluster 1 overlaps 5 by 8 / (20 + 8 - 8) = 0.4: below 0.5
    assert links[1].overlap == pytest.approx(0.4)
    assert links[-1] == Link(-1, None, 5, None, "retired")


def test_jaccard_of_disjoint_and_identical_memberships():
    np.testing.assert_allclose(jaccard(np.array([[10.0, 0.0], [0.0, 4.0]])), [[1.0, 0.0], [0.0, 1.0]])


def test_migration_counts_moves_arrivals_and_departures(spark):
    earlier = spark.createDataFrame([("a", 0), ("b", 0), ("c", 1), ("d", 1)], "customer_id string, segment_id int")
    later = spark.createDataFrame([("a", 0), ("b", 1), ("c", 1), ("e", 2)], "customer_id string, segment_id int")
    rows = {(r["from_segment_id"], r["to_segment_id"]): (r["customers"], r["from_share"])
            for r in migration((dt.date(2026, 1, 1), earlier), later).collect()}
    assert rows == {(0, 0): (1, 0.5), (0, 1): (1, 0.5), (1, 1): (1, 0.5), (1, None): (1, 0.5), (None, 2): (1, 1.0)}


# Three groups of 60 customers, far apart in spend, frequency and tenure; the second month adds a fourth.
GROUPS = {"A": (100.0, 2.0, 150.0), "B": (1_000.0, 12.0, 1_200.0), "C": (6_000.0, 40.0, 3_000.0),
          "D": (40_000.0, 90.0, 60.0)}
MONTHS = (dt.date(2026, 1, 1), dt.date(2026, 2, 1))


def features(month: int, groups: str) -> pd.DataFrame:
    rng = np.random.default_rng(month)
    rows = []
    for g in groups:
        monetary, frequency, tenure = GROUPS[g]
        for i in range(60):
            wobble = rng.normal(1.0, 0.05, 3)  # the second month shifts every customer a little
            row = dict.fromkeys(FEATURES, 0.0)
            row.update(customer_id=f"{g}{i:03d}", monetary=monetary * wobble[0], frequency=round(frequency * wobble[1]),
                       tenure_days=tenure * wobble[2] + 31 * month, on_time_rate=1.0)
            rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def months(spark, tmp_path_factory):
    """Month 1 trained on groups A-C, month 2 on A-D (its features written as a build_features run writes them)."""
    base = tmp_path_factory.mktemp("lineage")
    spark.createDataFrame([(f"{g}{i:03d}",) for g in GROUPS for i in range(60)], "customer_id string") \
        .write.format("delta").save(str(base / "data" / "customers"))
    runs = []
    for month, (as_of, groups, k) in enumerate(zip(MONTHS, ("ABC", "ABCD"), (3, 4), strict=True), start=1):
        conf = make_conf(base / "data", base / "out", [f"as_of_date={as_of}", f"model.k={k}", "inputs.loans=null",
                                                       "inputs.loan_payments=null", "inputs.products=null",
                                                       f"tracking.uri={(base / 'mlruns').as_uri()}"])
        write_features(spark, conf, features(month, groups))
        runs.append((conf, run_train_segments(spark, conf)))
    return runs


def group_ids(spark, conf, record) -> dict[str, set[int]]:
    rows = (read_delta(spark, conf.table_path(outputs.SEGMENT_ASSIGNMENTS))
            .filter(F.col("run_id") == record.run_id).collect())
    ids: dict[str, set[int]] = {}
    for r in rows:
        ids.setdefault(r["customer_id"][0], set()).add(r["segment_id"])
    return ids


def test_a_retrain_keeps_the_ids_of_the_groups_and_gives_a_new_group_a_new_id(spark, months):
    (first_conf, first), (second_conf, second) = months
    before, after = group_ids(spark, first_conf, first), group_ids(spark, second_conf, second)
    assert all(len(ids) == 1 for ids in [*before.values(), *after.values()])  # each group is one segment
    assert {g: after[g] for g in "ABC"} == before
    assert after["D"] == {3}  # above every id given before
    lineage = {r["segment_id"]: r for r in read_delta(spark, second_conf.table_path(outputs.SEGMENT_LINEAGE))
               .filter(F.col("run_id") == second.run_id).collect()}
    assert {s: r["status"] for s, r in lineage.items()} == {0: "kept", 1: "kept", 2: "kept", 3: "new"}
    assert all(lineage[s]["previous_segment_id"] == s and lineage[s]["overlap"] == 1.0 for s in (0, 1, 2))
    assert {r["previous_run_id"] for r in lineage.values()} == {first.run_id}
    # profiles, centroids and the applicant model carry the same ids
    profiles = read_delta(spark, second_conf.table_path(outputs.SEGMENT_PROFILES)).filter(
        F.col("run_id") == second.run_id)
    assert sorted(r["segment_id"] for r in profiles.collect()) == [0, 1, 2, 3]
    scorer = ApplicantScorer.load(applicant_model_location(second_conf.output_path, second.run_id))
    newcomer = features(2, "D").iloc[0].to_dict()
    assert scorer.score({k: v for k, v in newcomer.items() if k in FEATURES})["segment_id"] == 3


def test_each_training_run_is_tracked_in_mlflow_when_a_uri_is_configured(months):
    mlflow = pytest.importorskip("mlflow")
    conf = months[0][0].tracking
    client = mlflow.MlflowClient(tracking_uri=conf.uri)
    runs = client.search_runs([client.get_experiment_by_name(conf.experiment).experiment_id])
    assert sorted(r.data.tags["custseg.run_id"] for r in runs) == sorted(record.run_id for _, record in months)
    assert sorted(r.data.params["chosen_k"] for r in runs) == ["3", "4"]


def test_migration_rows_sum_to_the_earlier_segment_sizes(spark, months):
    (first_conf, first), (second_conf, second) = months
    moves = read_delta(spark, second_conf.table_path(outputs.SEGMENT_MIGRATION)).filter(
        F.col("as_of_date") == F.lit(MONTHS[1])).collect()
    sizes = {r["segment_id"]: r["size"] for r in read_delta(spark, first_conf.table_path(outputs.SEGMENT_PROFILES))
             .filter(F.col("run_id") == first.run_id).collect()}
    for segment, size in sizes.items():
        assert sum(r["customers"] for r in moves if r["from_segment_id"] == segment) == size
    (a,), (b,), (c,) = (group_ids(spark, first_conf, first)[g] for g in "ABC")
    assert {(r["from_segment_id"], r["to_segment_id"], r["customers"]) for r in moves} == {
        (a, a, 60), (b, b, 60), (c, c, 60), (None, 3, 60)}
    assert all(r["from_as_of_date"] == MONTHS[0] and r["run_id"] == second.run_id for r in moves)
    first_moves = read_delta(spark, first_conf.table_path(outputs.SEGMENT_MIGRATION)).filter(
        F.col("as_of_date") == F.lit(MONTHS[0]))
    assert first_moves.count() == 0  # nothing earlier to compare with


def test_without_products_categories_or_attributes_the_run_says_what_it_skipped(spark, months):
    conf, record = months[0]  # features without spend categories or products, customers without attributes
    assert record.metrics["skipped"] == {"product_opportunities": "no products table in the inputs"}
    of_run = F.col("run_id") == record.run_id
    assert read_delta(spark, conf.table_path(outputs.SEGMENT_PRODUCT_OPPORTUNITIES)).filter(of_run).count() == 0
    aspects = {r["aspect"] for r in read_delta(spark, conf.table_path(outputs.SEGMENT_CHARACTERISTICS))
               .filter(of_run).collect()}
    assert aspects == {"channel"}  # the digital share of purchases, which the features have
