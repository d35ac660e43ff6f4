"""Learned preprocessing stages whose fitted form is a SQLTransformer: exact-median imputation and outlier caps.

Each estimator learns a few numbers on the training customers and returns a SQLTransformer whose statement
holds them, so the fitted PipelineModel stays native Spark (it saves, loads and scores on a cluster without
this package) and scoring another date applies the training values. The numbers are exact quantiles
(linear interpolation between order statistics, as Spark's `percentile` and numpy's default) found in two
passes whose memory stays bounded whatever the number of customers (in one, Spark's, for a few customers).
"""
from __future__ import annotations

import math
import re

from pyspark import keyword_only
from pyspark.ml import Estimator
from pyspark.ml.feature import SQLTransformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCols, HasOutputCols
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

CAPPED_FEATURES = "capped_features"
# Relative rank error of the approximate first pass; it only sizes the bracket the exact second pass reads.
APPROX_ACCURACY = 10_000
BRACKET_WIDENING = 8  # a bracket that missed its rank is read again this many times wider
# Up to this many values a column, Spark's exact `percentile` (a map of each distinct value's count per task)
# answers in one pass instead of two.
ONE_PASS_MAX_ROWS = 50_000

_NUMBER = r"([-+0-9.eE]+)D"
_IMPUTED = re.compile(rf"COALESCE\(CAST\((\w+) AS DOUBLE\), {_NUMBER}\) AS (\w+)")
_CAPPED = re.compile(rf"LEAST\(GREATEST\((\w+), {_NUMBER}\), {_NUMBER}\)\) AS (\w+)")


def sql_double(value: float) -> str:
    """A double literal that reads back as the same double (repr is the shortest exact form)."""
    return f"{float(value)!r}D"


# ---------------------------------------------------------------- exact quantiles


def _interpolation(n: int, probability: float) -> tuple[int, int, float]:
    """1-based ranks of the two order statistics around the quantile and the position between them (Spark's
    `percentile`: position (n - 1) * p, linear between floor and ceiling)."""
    position = (n - 1) * probability
    return math.floor(position) + 1, math.ceil(position) + 1, position


def _order_statistic(below: int, counted: list[tuple[float, int]], rank: int) -> float | None:
    """The value of 1-based `rank` from the count below a bracket and the bracket's sorted (value, count)."""
    if rank <= below:
        return None
    seen = below
    for value, count in counted:
        seen += count
        if rank <= seen:
            return value
    return None


def _brackets(values_df: DataFrame, stats, pending: list[tuple[str, int]], probabilities: list[float],
              half_width: float, accuracy: int) -> list[tuple[str, int, float, float]]:
    """(column, probability index, low, high): approximate quantiles at p -+ half_width (min / max beyond 0 / 1)."""
    wanted: dict[str, list[float]] = {}
    for c, i in pending:
        for p in (probabilities[i] - half_width, probabilities[i] + half_width):
            if 0 < p < 1 and p not in wanted.setdefault(c, []):
                wanted[c].append(p)
    summaries = [F.percentile_approx(c, ps, accuracy).alias(c) for c, ps in wanted.items() if ps]
    approx = values_df.agg(*summaries).first() if summaries else None

    def at(column: str, p: float) -> float:
        if p <= 0:
            return stats[f"min_{column}"]
        if p >= 1:
            return stats[f"max_{column}"]
        return approx[column][wanted[column].index(p)]

    return [(c, i, at(c, probabilities[i] - half_width), at(c, probabilities[i] + half_width)) for c, i in pending]


def _bracket_counts(values_df: DataFrame, brackets: list[tuple[str, int, float, float]]
                    ) -> tuple[dict[tuple[str, int], int], dict[tuple[str, int], list[tuple[float, int]]]]:
    """Per bracket: the count of values below it and its distinct values with their counts, sorted."""
    brackets_df = values_df.sparkSession.createDataFrame(brackets, "feature string, bracket int, low double, "
                                                                   "high double")
    counted_df = (values_df.unpivot([], values_df.columns, "feature", "value")
                  .join(F.broadcast(brackets_df), on="feature", how="inner")
                  .filter(F.col("value") <= F.col("high"))
                  .groupBy("feature", "bracket",
                           F.when(F.col("value") >= F.col("low"), F.col("value")).alias("in_bracket"))
                  .count())
    below: dict[tuple[str, int], int] = {}
    inside: dict[tuple[str, int], list[tuple[float, int]]] = {}
    for row in counted_df.collect():  # the distinct values in the brackets: about 10 n / accuracy each
        key = (row["feature"], row["bracket"])
        if row["in_bracket"] is None:
            below[key] = row["count"]
        else:
            inside.setdefault(key, []).append((row["in_bracket"], row["count"]))
    return below, {key: sorted(values) for key, values in inside.items()}


def exact_quantiles(df: DataFrame, columns: list[str], probabilities: list[float],
                    accuracy: int = APPROX_ACCURACY, one_pass_max_rows: int = ONE_PASS_MAX_ROWS
                    ) -> dict[str, list[float | None]]:
    """Per column, the exact quantiles at `probabilities` of its non-null values (None for a column without any).

    An approximate quantile summary (rank error at most n / accuracy) gives a narrow bracket of values around
    each wanted rank; a second pass counts the values below each bracket and the distinct values inside it,
    so only the few values near the quantiles reach the driver and the result does not depend on partitioning.
    A bracket that misses its rank is widened and read again; the last (min to max) cannot miss. Columns of
    at most `one_pass_max_rows` values are answered by Spark's exact `percentile` instead, the same numbers.
    """
    values_df = df.select(*[F.col(c).cast("double").alias(c) for c in columns])
    stats = values_df.agg(*[agg(c).alias(f"{name}_{c}") for c in columns
                            for name, agg in (("n", F.count), ("min", F.min), ("max", F.max))]).first()
    result: dict[str, list[float | None]] = {c: [None] * len(probabilities) for c in columns}
    pending = [(c, i) for c in columns for i in range(len(probabilities)) if stats[f"n_{c}"] > 0]
    if pending and max(stats[f"n_{c}"] for c in columns) <= one_pass_max_rows:
        wanted = sorted({c for c, _ in pending}, key=columns.index)
        exact = values_df.agg(*[F.percentile(c, probabilities).alias(c) for c in wanted]).first()
        return {c: list(exact[c]) if c in wanted else result[c] for c in columns}
    half_width = 4.0 / accuracy  # twice what the summary's guarantee needs either side
    while pending:
        below, inside = _bracket_counts(
            values_df, _brackets(values_df, stats, pending, probabilities, half_width, accuracy))
        missed = []
        for c, i in pending:
            low_rank, high_rank, position = _interpolation(stats[f"n_{c}"], probabilities[i])
            low = _order_statistic(below.get((c, i), 0), inside.get((c, i), []), low_rank)
            high = _order_statistic(below.get((c, i), 0), inside.get((c, i), []), high_rank)
            if low is None or high is None:
                missed.append((c, i))
            else:
                result[c][i] = low if low_rank == high_rank else (
                    (high_rank - 1 - position) * low + (position - (low_rank - 1)) * high)
        pending = missed
        half_width *= BRACKET_WIDENING
    return result


# ---------------------------------------------------------------- exact-median imputation


def impute_statement(columns: list[str], output_columns: list[str], medians: list[float]) -> str:
    fills = [f"COALESCE(CAST({c} AS DOUBLE), {sql_double(m)}) AS {out}"
             for c, out, m in zip(columns, output_columns, medians, strict=True)]
    return "SELECT *" + "".join(f", {fill}" for fill in fills) + " FROM __THIS__"


def medians_of(statement: str) -> dict[str, float]:
    """input column -> median, read back from a fitted imputation statement (also after loading a model)."""
    return {c: float(m) for c, m, _ in _IMPUTED.findall(statement)}


class ExactMedianImputer(Estimator, HasInputCols, HasOutputCols, DefaultParamsReadable, DefaultParamsWritable):
    """Fill nulls with each column's exact training median.

    Spark's Imputer takes an approximate median (79.33 where the exact one is 79.67 on real data), and with
    relativeError=0 the lower of the two middle values, not their mean.
    """

    @keyword_only
    def __init__(self, *, inputCols: list[str] | None = None, outputCols: list[str] | None = None) -> None:
        super().__init__()
        self._set(**self._input_kwargs)

    def _fit(self, dataset: DataFrame) -> SQLTransformer:
        columns = self.getInputCols()
        medians = exact_quantiles(dataset, columns, [0.5])
        empty = [c for c in columns if medians[c][0] is None]
        if empty:
            raise ValueError(f"no value to take a median from: {empty} are null for every training row")
        return SQLTransformer(statement=impute_statement(columns, self.getOutputCols(),
                                                         [medians[c][0] for c in columns]))


# ---------------------------------------------------------------- outlier caps


def learn_caps(df: DataFrame, columns: list[str], lower_quantile: float,
               upper_quantile: float) -> dict[str, tuple[float, float] | None]:
    """column -> (lower, upper) cap: the exact quantiles of its training values. None leaves a column
    uncapped: no values, or caps that would make it constant (a rare flag or count must not be erased)."""
    quantiles = exact_quantiles(df, columns, [lower_quantile, upper_quantile])
    caps: dict[str, tuple[float, float] | None] = {}
    for c in columns:
        low, high = quantiles[c]
        caps[c] = (low, high) if low is not None and high is not None and low < high else None
    return caps


def caps_statement(columns: list[str], output_columns: list[str], caps: dict[str, tuple[float, float] | None]) -> str:
    """SQL clamping each column into its caps (null stays null) and counting per row the values it capped."""
    clamped, is_capped = [], []
    for c, out in zip(columns, output_columns, strict=True):
        if caps.get(c) is None:
            clamped.append(f"{c} AS {out}")
            continue
        low, high = (sql_double(v) for v in caps[c])
        clamped.append(f"IF({c} IS NULL, NULL, LEAST(GREATEST({c}, {low}), {high})) AS {out}")
        is_capped.append(f"IF({c} < {low} OR {c} > {high}, 1, 0)")
    count = " + ".join(is_capped) if is_capped else "0"
    return f"SELECT *, {', '.join(clamped)}, CAST({count} AS INT) AS {CAPPED_FEATURES} FROM __THIS__"


def caps_of(statement: str) -> dict[str, tuple[float, float]]:
    """input column -> (lower, upper), read back from a fitted caps statement (also after loading a model)."""
    return {c: (float(low), float(high)) for c, low, high, _ in _CAPPED.findall(statement)}


class OutlierCaps(Estimator, HasInputCols, HasOutputCols, DefaultParamsReadable, DefaultParamsWritable):
    """Clamp each column into [lower, upper] quantile of its training values and count the capped values in
    `capped_features`: one extreme customer can otherwise pull a centroid or form a segment of its own."""

    lowerQuantile = Param(Params._dummy(), "lowerQuantile", "quantile of the training values that is the lower cap",
                          typeConverter=TypeConverters.toFloat)
    upperQuantile = Param(Params._dummy(), "upperQuantile", "quantile of the training values that is the upper cap",
                          typeConverter=TypeConverters.toFloat)

    @keyword_only
    def __init__(self, *, inputCols: list[str] | None = None, outputCols: list[str] | None = None,
                 lowerQuantile: float = 0.001, upperQuantile: float = 0.999) -> None:
        super().__init__()
        self._setDefault(lowerQuantile=0.001, upperQuantile=0.999)
        self._set(**self._input_kwargs)

    def getLowerQuantile(self) -> float:
        return self.getOrDefault(self.lowerQuantile)

    def getUpperQuantile(self) -> float:
        return self.getOrDefault(self.upperQuantile)

    def _fit(self, dataset: DataFrame) -> SQLTransformer:
        columns = self.getInputCols()
        caps = learn_caps(dataset, columns, self.getLowerQuantile(), self.getUpperQuantile())
        return SQLTransformer(statement=caps_statement(columns, self.getOutputCols(), caps))
