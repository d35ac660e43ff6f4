"""Drift of a scored population: PSI by hand, an unchanged population does not drift, a shifted one does."""
from __future__ import annotations

import math

import pytest

from custseg.transforms.drift import MISSING_BIN, binned_counts, measure_drift, psi, retrain_reason


def test_psi_by_hand():
    expected = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert psi({"a": 50, "b": 50}, {"a": 80, "b": 20}) == pytest.approx(expected, rel=1e-12)
    assert psi({0: 10, 1: 30}, {0: 20, 1: 60}) == 0.0
    # an empty bin counts as rare (share 1e-4), not infinitely surprising
    assert psi({0: 100}, {0: 50, 1: 50}) == pytest.approx(
        (0.5 - 1.0) * math.log(0.5 / 1.0) + (0.5 - 1e-4) * math.log(0.5 / 1e-4), rel=1e-12)


def test_values_are_binned_on_the_edges_with_missing_values_apart(spark):
    df = spark.createDataFrame([(1.0,), (2.0,), (2.5,), (9.0,), (None,)], "x double")
    assert binned_counts(df, {"x": [2.0, 5.0]}) == {"x": {MISSING_BIN: 1, 0: 2, 1: 1, 2: 1}}


def population(spark, scale: float):
    return spark.createDataFrame([(float(i) * scale, float(i % 7)) for i in range(400)], "monetary double, gap double")


def test_an_unchanged_population_does_not_drift_and_a_shifted_one_does(spark):
    training_df = population(spark, 1.0)
    distances_df = spark.createDataFrame([(0.5,)] * 99 + [(5.0,)], "distance_to_centroid double")
    sizes = {0: 300, 1: 100}
    same = measure_drift(training_df, population(spark, 1.0), ["monetary", "gap"], sizes, dict(sizes), 2.0,
                         distances_df, 0.25, 0.25, 0.05)
    assert [(r.name, r.value, r.is_drifted) for r in same] == [
        ("segment_shares", 0.0, False), ("monetary", 0.0, False), ("gap", 0.0, False),
        ("far_from_centroids", 0.01, False)]
    assert retrain_reason(same) is None

    shifted = measure_drift(training_df, population(spark, 3.0), ["monetary", "gap"], sizes, {0: 100, 1: 300}, 2.0,
                            distances_df, 0.25, 0.25, 0.05)
    drifted = {r.name: r.value for r in shifted if r.is_drifted}
    assert set(drifted) == {"segment_shares", "monetary"}
    assert drifted["monetary"] > 1.0
    assert drifted["segment_shares"] == pytest.approx(2 * 0.5 * math.log(3), rel=1e-12)  # 3:1 became 1:3
    assert retrain_reason(shifted) == f"segment_shares 1.099 > 0.25; monetary {drifted['monetary']:.3f} > 0.25"
