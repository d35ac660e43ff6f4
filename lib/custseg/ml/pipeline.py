"""The Spark ML pipeline: not-applicable values -> exact-median imputation -> signed log1p -> outlier caps ->
VectorAssembler -> StandardScaler -> KMeans.

Every fitted stage is a native Spark one (the learned ones fit to SQLTransformers, ml/preprocessing.py), so the
saved PipelineModel loads and scores without this package and applies the training values to other dates.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import KMeans, KMeansModel
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from custseg.contract.features import NOT_APPLICABLE, defined_value
from custseg.ml.preprocessing import (
    CAPPED_FEATURES,
    ExactMedianImputer,
    OutlierCaps,
    caps_of,
    medians_of,
    sql_double,
)

RAW_VECTOR = "features_raw"
MODEL_VALUES = "model_values"
SCALED = "features_scaled"
PREDICTION = "segment_id"
COST_TIE = 1e-9
DEFAULT_CAPS = (0.001, 0.999)  # as config model.outlier_caps


@dataclass(frozen=True)
class PipelineParams:
    features: tuple[str, ...]
    log1p_features: tuple[str, ...]
    k: int
    seed: int
    max_iter: int = 40
    tol: float = 1e-6
    lookback_days: int = 365  # features.lookback_days: the gap of a customer without a repeat purchase
    outlier_caps: tuple[float, float] | None = DEFAULT_CAPS  # (lower, upper) quantile; None: no caps


def defined_name(feature: str) -> str:
    """The column the imputer reads: the feature with its not-applicable values given their defined value."""
    return f"{feature}__defined" if feature in NOT_APPLICABLE else feature


def imputed_name(feature: str) -> str:
    return f"{feature}__imputed"


def prepared_name(feature: str, log1p_features: tuple[str, ...]) -> str:
    """The column that enters the assembler for a feature: logged or only imputed."""
    return f"{feature}__log1p" if feature in log1p_features else imputed_name(feature)


def capped_name(feature: str) -> str:
    return f"{feature}__capped"


def assembled_name(feature: str, params: PipelineParams) -> str:
    """The column that enters the assembler: capped when caps are on, else only prepared."""
    return capped_name(feature) if params.outlier_caps else prepared_name(feature, params.log1p_features)


def not_applicable_statement(features: tuple[str, ...], lookback_days: int) -> str:
    """SQL giving structurally undefined values their defined value (contract.features.NOT_APPLICABLE), so the
    imputer sees only values that are genuinely unknown."""
    fills = [f"NVL(CAST({f} AS DOUBLE), {defined_sql(f, lookback_days)}) AS {defined_name(f)}"
             for f in features if f in NOT_APPLICABLE]
    return "SELECT *" + "".join(f", {fill}" for fill in fills) + " FROM __THIS__"


def defined_sql(feature: str, lookback_days: int) -> str:
    value = sql_double(defined_value(feature, lookback_days))
    condition = NOT_APPLICABLE[feature].only_when_zero
    return value if condition is None else f"IF({condition} = 0, {value}, NULL)"


def log1p_statement(features: tuple[str, ...], log1p_features: tuple[str, ...]) -> str:
    """SQL for the skew stage: sign(x) * ln(1 + |x|), defined for refunds (negative net spend) too."""
    logged = [f"SIGNUM({imputed_name(f)}) * LN(1 + ABS({imputed_name(f)})) AS {prepared_name(f, log1p_features)}"
              for f in features if f in log1p_features]
    return "SELECT *" + "".join(f", {expr}" for expr in logged) + " FROM __THIS__"


def preprocessing_stages(params: PipelineParams) -> list:
    """Every stage before KMeans, wired output to input."""
    not_applicable = SQLTransformer(statement=not_applicable_statement(params.features, params.lookback_days))
    imputer = ExactMedianImputer(inputCols=[defined_name(f) for f in params.features],
                                 outputCols=[imputed_name(f) for f in params.features])
    skew = SQLTransformer(statement=log1p_statement(params.features, params.log1p_features))
    caps = [] if params.outlier_caps is None else [OutlierCaps(
        inputCols=[prepared_name(f, params.log1p_features) for f in params.features],
        outputCols=[capped_name(f) for f in params.features],
        lowerQuantile=params.outlier_caps[0], upperQuantile=params.outlier_caps[1])]
    assembler = VectorAssembler(inputCols=[assembled_name(f, params) for f in params.features],
                                outputCol=RAW_VECTOR, handleInvalid="error")
    scaler = StandardScaler(inputCol=assembler.getOutputCol(), outputCol=SCALED, withMean=True, withStd=True)
    return [not_applicable, imputer, skew, *caps, assembler, scaler]


def kmeans_stage(params: PipelineParams, features_col: str = SCALED) -> KMeans:
    """KMeans with the row solver named: the default ("auto") first reads all the vectors once more to count
    their non-zeros and choose a solver, which chose "row" on our features anyway (benchmarks/README.md)."""
    return KMeans(k=params.k, seed=params.seed, featuresCol=features_col, predictionCol=PREDICTION,
                  initMode="k-means||", maxIter=params.max_iter, tol=params.tol, solver="row")


def fit_best_of(kmeans: KMeans, df: DataFrame, n_init: int,
                is_good_enough: Callable[[KMeansModel], bool] | None = None) -> tuple[KMeansModel, int]:
    """Fit with seeds seed, seed+1, ... and keep the lowest SSE (first on ties), like scikit-learn's n_init;
    return the model and the number of starts made.

    One k-means|| start can land in a poor local optimum; a few starts cost little on the bounded data.
    Starts often reach the same optimum with the segments numbered differently, and the order of
    floating-point sums can move their SSE by a unit in the last place: SSEs within a relative
    COST_TIE of each other are ties, so the first start wins and the numbering stays the same.
    No further start is made once `is_good_enough` accepts the best model so far.
    """
    best = None
    starts = 0
    for offset in range(max(n_init, 1)):
        model = kmeans.copy().setSeed(kmeans.getSeed() + offset).fit(df)
        starts += 1
        if best is None or model.summary.trainingCost < best.summary.trainingCost * (1 - COST_TIE):
            best = model
        if is_good_enough is not None and is_good_enough(best):
            break
    return best, starts


def build_pipeline(params: PipelineParams) -> Pipeline:
    """The unfitted pipeline, all stages in order."""
    return Pipeline(stages=[*preprocessing_stages(params), kmeans_stage(params)])


def fit_preprocessing(features_df: DataFrame, params: PipelineParams) -> PipelineModel:
    """Fit imputation, caps and scaling once on all customers; the K sweep and the final fit reuse them."""
    return Pipeline(stages=preprocessing_stages(params)).fit(features_df)


def compose(preprocessing: PipelineModel, kmeans_model: KMeansModel) -> PipelineModel:
    """The full fitted pipeline, saved with the run and used to score new customers."""
    return PipelineModel(stages=[*preprocessing.stages, kmeans_model])


def fitted_kmeans(model: PipelineModel) -> KMeansModel:
    return model.stages[-1]


def scaler_stats(model: PipelineModel) -> tuple[list[float], list[float]]:
    """Mean and standard deviation of the scaler, per feature (in the prepared units)."""
    scaler = model.stages[-2]
    return [float(v) for v in scaler.mean.toArray()], [float(v) for v in scaler.std.toArray()]


def fixed_layout(features_df: DataFrame, partitions: int) -> DataFrame:
    """Rows in the same partitions and order wherever the job runs.

    k-means|| and the K-selection sample draw per partition (seeded by partition index), so the
    segments would otherwise depend on how many files the table has and how many cores read it.
    """
    return features_df.repartition(partitions, "customer_id").sortWithinPartitions("customer_id")


def scaled_features(preprocessing: PipelineModel, features_df: DataFrame) -> DataFrame:
    """customer_id, the scaled vector, capped_features (0 for a model without caps) and the values the model
    used in original units (after not-applicable rules and imputation, before log1p and caps) of every customer."""
    transformed_df = preprocessing.transform(features_df)
    capped = F.col(CAPPED_FEATURES) if CAPPED_FEATURES in transformed_df.columns else F.lit(0)
    used = F.array(*[F.col(imputed_name(f)) for f in model_features(preprocessing)])
    return transformed_df.select("customer_id", SCALED, capped.cast("int").alias(CAPPED_FEATURES),
                                 used.alias(MODEL_VALUES))


def model_features(model: PipelineModel) -> tuple[str, ...]:
    """The clustering features of a fitted pipeline, in the order of its vectors."""
    assembler = next(stage for stage in model.stages if isinstance(stage, VectorAssembler))
    return tuple(re.sub(r"__(capped|log1p|imputed)$", "", c) for c in assembler.getInputCols())


def model_log1p_features(model: PipelineModel) -> tuple[str, ...]:
    """The features a fitted pipeline takes the signed log1p of."""
    logged = {m for statement in _statements(model) for m in re.findall(r" AS (\w+)__log1p\b", statement)}
    return tuple(f for f in model_features(model) if f in logged)


def _statements(model: PipelineModel) -> list[str]:
    return [stage.getStatement() for stage in model.stages if isinstance(stage, SQLTransformer)]


def learned_medians(model: PipelineModel, params: PipelineParams) -> dict[str, float]:
    """feature -> the training median that fills its unknown values."""
    medians = {c: m for statement in _statements(model) for c, m in medians_of(statement).items()}
    return {f: medians[defined_name(f)] for f in params.features if defined_name(f) in medians}


def learned_caps(model: PipelineModel, params: PipelineParams) -> dict[str, tuple[float, float]]:
    """feature -> (lower, upper) cap in the prepared (post-log1p) units; uncapped features are absent."""
    caps = {c: v for statement in _statements(model) for c, v in caps_of(statement).items()}
    prepared = {prepared_name(f, params.log1p_features): f for f in params.features}
    return {prepared[c]: v for c, v in caps.items() if c in prepared}


def outlier_cap_report(preprocessing: PipelineModel, features_df: DataFrame, params: PipelineParams) -> dict:
    """The caps per feature with how many training values each capped, and how many customers had any capped."""
    if params.outlier_caps is None:
        return {"enabled": False}
    caps = learned_caps(preprocessing, params)
    transformed_df = preprocessing.transform(features_df)  # only the prepared columns are computed
    counts = []
    for f, (low, high) in caps.items():
        prepared = F.col(prepared_name(f, params.log1p_features))
        counts += [F.count(F.when(prepared < low, 1)).alias(f"{f}__below"),
                   F.count(F.when(prepared > high, 1)).alias(f"{f}__above")]
    row = transformed_df.agg(*counts, F.count(F.when(F.col(CAPPED_FEATURES) > 0, 1)).alias("customers")).first()
    return {
        "enabled": True, "lower_quantile": params.outlier_caps[0], "upper_quantile": params.outlier_caps[1],
        "customers_capped": row["customers"],
        "features": {f: {"lower": low, "upper": high, "is_log1p": f in params.log1p_features,
                         "capped_below": row[f"{f}__below"], "capped_above": row[f"{f}__above"]}
                     for f, (low, high) in caps.items()},
        "uncapped": [f for f in params.features if f not in caps],
    }


def centers_of(model: PipelineModel) -> list[list[float]]:
    """The segment centroids in the scaled space, by segment id."""
    return [[float(v) for v in c] for c in fitted_kmeans(model).clusterCenters()]


def centers_original(model: PipelineModel) -> list[list[float]]:
    """The centroids mapped back through the scaler and log1p: original units, by segment id and feature."""
    mean, std = scaler_stats(model)
    logged = [f in model_log1p_features(model) for f in model_features(model)]
    rows = []
    for center in centers_of(model):
        prepared = [c * s + m for c, s, m in zip(center, std, mean, strict=True)]
        rows.append([math.copysign(math.expm1(abs(p)), p) if is_log else p
                     for p, is_log in zip(prepared, logged, strict=True)])
    return rows


def centroid_rows(model: PipelineModel, ids: list[int]) -> list[tuple]:
    """(segment_id, feature, scaled, original, is_log1p): centroids mapped back through scaler and log1p, each
    cluster index given its segment id (`ids`, by index)."""
    logged = model_log1p_features(model)
    return [(ids[index], feature, center[j], original[j], feature in logged)
            for index, (center, original) in enumerate(zip(centers_of(model), centers_original(model), strict=True))
            for j, feature in enumerate(model_features(model))]
