"""Segment statistics: moments over every customer, quartiles over a bounded seeded sample per segment."""
from __future__ import annotations

import numpy as np
import pytest
from pyspark.sql import functions as F

from custseg.transforms.sampling import sample_per_group
from custseg.transforms.statistics import feature_stats

SIZES = {0: 4000, 1: 300}
CAP = 1000


@pytest.fixture(scope="module")
def scored(spark):
    rng = np.random.default_rng(7)
    rows = []
    for segment, size in SIZES.items():
        values = rng.lognormal(mean=3 + segment, sigma=1.0, size=size)
        rows += [(f"C{segment}{i:06d}", segment, float(v), None if i % 10 == 0 else float(i % 7))
                 for i, v in enumerate(values)]
    df = spark.createDataFrame(rows, "customer_id string, segment_id int, spend double, visits double")
    return df, df.toPandas()


def rank_error(values: np.ndarray, q: float, p: float) -> float:
    """How far p lies outside [share of values < q, share <= q]: 0 when q is an exact p-quantile."""
    below, at_most = (values < q).mean(), (values <= q).mean()
    return 0.0 if below <= p <= at_most else min(abs(p - below), abs(p - at_most))


def test_moments_are_over_all_customers_and_quartiles_close_to_the_exact_ones(spark, scored):
    df, pdf = scored
    stats = feature_stats(df, ["spend", "visits"], SIZES, seed=42, quartile_cap=CAP).toPandas()
    for _, row in stats.iterrows():
        values = pdf.loc[pdf["segment_id"] == row["segment_id"], row["feature"]].dropna().to_numpy()
        assert row["n"] == len(values)
        assert row["mean"] == pytest.approx(values.mean(), rel=1e-12)
        assert row["stddev"] == pytest.approx(values.std(ddof=1), rel=1e-9)
        assert (row["min"], row["max"]) == (values.min(), values.max())
        everyone = pdf[row["feature"]].dropna().to_numpy()
        assert row["population_mean"] == pytest.approx(everyone.mean(), rel=1e-12)
        # Segment 1 is under the cap: all its customers count. Segment 0 is sampled: about 1 / sqrt(1000).
        tolerance = 0.002 if SIZES[row["segment_id"]] <= CAP else 0.05
        for column, p in (("q1", 0.25), ("median", 0.5), ("q3", 0.75)):
            assert rank_error(values, row[column], p) <= tolerance, (row["segment_id"], row["feature"], column)


def test_the_quartile_sample_is_bounded_and_the_same_whatever_the_partitioning(spark, scored):
    df, _ = scored

    def sampled_ids(frame):
        return sorted(r["customer_id"] for r in sample_per_group(frame, "segment_id", SIZES, CAP, 42).collect())

    ids = sampled_ids(df)
    per_segment = {s: sum(1 for i in ids if i.startswith(f"C{s}")) for s in SIZES}
    assert per_segment[1] == SIZES[1]
    assert 0.8 * CAP <= per_segment[0] <= 1.2 * CAP
    assert sampled_ids(df.repartition(7, F.col("spend"))) == ids
    assert sampled_ids(df.coalesce(1)) != sorted(r["customer_id"] for r in sample_per_group(
        df.coalesce(1), "segment_id", SIZES, CAP, 43).collect())  # another seed, other customers


def test_a_feature_a_segment_has_no_value_of_is_unknown_there_not_typical(spark):
    # Segment 1 never bought (no ticket), segment 0 did; "flag" is the same for everyone.
    rows = [(f"A{i}", 0, float(10 + i % 5), 1.0) for i in range(50)] + [(f"B{i}", 1, None, 1.0) for i in range(30)]
    df = spark.createDataFrame(rows, "customer_id string, segment_id int, ticket double, flag double")
    z = {(r["segment_id"], r["feature"]): (r["n"], r["z_score"])
         for r in feature_stats(df, ["ticket", "flag"], {0: 50, 1: 30}, seed=1).collect()}
    assert z[(1, "ticket")] == (0, None)  # no ticket at all: null, never the population's 0
    assert z[(0, "ticket")] == (50, 0.0)  # the only segment with tickets is the population itself
    assert z[(0, "flag")] == (50, 0.0) and z[(1, "flag")] == (30, 0.0)  # constant: sets no segment apart


def test_a_mean_from_few_of_a_segment_does_not_describe_it(spark):
    # Segment 1 is lapsed: 2 of its 100 customers bought, at tickets far above segment 0's 60 buyers.
    rows = ([(f"A{i}", 0, float(10 + i % 5)) for i in range(60)] + [("B0", 1, 500.0), ("B1", 1, 700.0)]
            + [(f"B{i}", 1, None) for i in range(2, 100)])
    df = spark.createDataFrame(rows, "customer_id string, segment_id int, ticket double")
    stats = {r["segment_id"]: r for r in feature_stats(df, ["ticket"], {0: 60, 1: 100}, seed=1).collect()}
    assert (stats[1]["n"], stats[1]["mean"], stats[1]["z_score"], stats[1]["lift"]) == (2, 600.0, None, None)
    assert stats[0]["n"] == 60 and stats[0]["z_score"] < 0 and stats[0]["lift"] < 1
