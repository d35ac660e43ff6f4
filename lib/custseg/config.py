"""Load and validate the YAML configuration.

The YAML is parsed into frozen dataclasses so that a typo or a missing key fails at
start-up with the key named, not halfway through a Spark job.
"""
from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from custseg.platform.locations import join_uri

INPUT_FORMATS = ("delta", "parquet", "csv", "table")
REQUIRED_INPUTS = ("customers", "transactions")
OPTIONAL_INPUTS = ("loans", "loan_payments")


class ConfigError(ValueError):
    """The configuration is missing a key or has a wrong value; the message names it."""


@dataclass(frozen=True)
class InputConf:
    name: str
    path: str | None
    format: str
    table: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # contract name -> source column name
    options: dict[str, str] = field(default_factory=dict)  # reader options (CSV header, separator...)
    date_format: str = "yyyy-MM-dd"
    timestamp_format: str = "yyyy-MM-dd HH:mm:ss"


@dataclass(frozen=True)
class SparkConf:
    master: str | None
    app_name: str
    shuffle_partitions: int
    driver_memory: str | None
    use_delta_pip: bool
    extra: dict[str, str]


@dataclass(frozen=True)
class FeatureConf:
    lookback_days: int
    trend_window_days: int
    late_payment_window_days: int
    default_dpd: int


@dataclass(frozen=True)
class ModelConf:
    features: tuple[str, ...]
    log1p_features: tuple[str, ...]
    k: int | None
    k_min: int
    k_max: int
    sample_size: int
    max_iter: int
    n_init: int
    fit_partitions: int
    stability_runs: int
    min_segment_share: float
    min_stability: float


@dataclass(frozen=True)
class SampleDataConf:
    path: str
    format: str
    customers: int
    transactions_per_customer: int
    dirt_rate: float


@dataclass(frozen=True)
class Config:
    spark: SparkConf
    as_of_date: dt.date
    seed: int
    inputs: dict[str, InputConf]
    output_path: str
    output_database: str | None
    features: FeatureConf
    model: ModelConf
    pii_columns: tuple[str, ...]
    protected_attributes: tuple[str, ...]
    sample_data: SampleDataConf | None
    segment_rules: dict[str, Any]
    raw: dict[str, Any]

    def table_path(self, table: str) -> str:
        """Location of one output Delta table."""
        return join_uri(self.output_path, table)


def _get(section: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...] | None = None,
         default: Any = ...) -> Any:
    if key not in section or section[key] is None:
        if default is ...:
            raise ConfigError(f"config: missing key '{where}{key}'")
        return default
    value = section[key]
    if kind is not None and not isinstance(value, kind):
        raise ConfigError(f"config: key '{where}{key}' must be {kind}, got {type(value).__name__} ({value!r})")
    return value


def _as_date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as err:
        raise ConfigError(f"config: key '{where}' must be a date YYYY-MM-DD, got {value!r}") from err


def _input(name: str, raw: dict[str, Any]) -> InputConf:
    where = f"inputs.{name}."
    if not isinstance(raw, dict):
        raise ConfigError(f"config: 'inputs.{name}' must be a mapping")
    fmt = _get(raw, "format", where, str)
    if fmt not in INPUT_FORMATS:
        raise ConfigError(f"config: key '{where}format' must be one of {INPUT_FORMATS}, got {fmt!r}")
    table = _get(raw, "table", where, str, None)
    path = _get(raw, "path", where, str, None)
    if fmt == "table" and not table:
        raise ConfigError(f"config: missing key '{where}table' (format is 'table')")
    if fmt != "table" and not path:
        raise ConfigError(f"config: missing key '{where}path'")
    columns = _get(raw, "columns", where, dict, {})
    options = _get(raw, "options", where, dict, {})
    return InputConf(
        name=name, path=path, format=fmt, table=table,
        columns={str(k): str(v) for k, v in columns.items()},
        options={str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()},
        date_format=_get(raw, "date_format", where, str, "yyyy-MM-dd"),
        timestamp_format=_get(raw, "timestamp_format", where, str, "yyyy-MM-dd HH:mm:ss"),
    )


def _positive_int(section: dict[str, Any], key: str, where: str, default: Any = ...) -> int:
    value = _get(section, key, where, int, default)
    if value is not None and value <= 0:
        raise ConfigError(f"config: key '{where}{key}' must be > 0, got {value}")
    return value


def parse_config(raw: dict[str, Any]) -> Config:
    """Validate a parsed YAML mapping and build the Config."""
    if not isinstance(raw, dict):
        raise ConfigError("config: the top level must be a mapping")
    spark_raw = _get(raw, "spark", "", dict, {})
    spark = SparkConf(
        master=_get(spark_raw, "master", "spark.", str, None),
        app_name=_get(spark_raw, "app_name", "spark.", str, "custseg"),
        shuffle_partitions=_positive_int(spark_raw, "shuffle_partitions", "spark.", 8),
        driver_memory=_get(spark_raw, "driver_memory", "spark.", str, None),
        use_delta_pip=_get(spark_raw, "use_delta_pip", "spark.", bool, True),
        extra={str(k): str(v) for k, v in _get(spark_raw, "conf", "spark.", dict, {}).items()},
    )
    inputs_raw = _get(raw, "inputs", "", dict)
    for name in REQUIRED_INPUTS:
        if name not in inputs_raw:
            raise ConfigError(f"config: missing key 'inputs.{name}'")
    unknown = set(inputs_raw) - set(REQUIRED_INPUTS) - set(OPTIONAL_INPUTS)
    if unknown:
        raise ConfigError(f"config: unknown input table(s) {sorted(unknown)} under 'inputs'")
    inputs = {name: _input(name, value) for name, value in inputs_raw.items() if value is not None}

    output_raw = _get(raw, "output", "", dict)
    feat_raw = _get(raw, "features", "", dict, {})
    features = FeatureConf(
        lookback_days=_positive_int(feat_raw, "lookback_days", "features.", 365),
        trend_window_days=_positive_int(feat_raw, "trend_window_days", "features.", 90),
        late_payment_window_days=_positive_int(feat_raw, "late_payment_window_days", "features.", 365),
        default_dpd=_positive_int(feat_raw, "default_dpd", "features.", 90),
    )
    model = _model(_get(raw, "model", "", dict, {}))
    protected = tuple(_get(raw, "protected_attributes", "", list, []))
    clash = sorted(set(model.features) & set(protected))
    if clash:
        raise ConfigError(f"config: 'model.features' lists protected attribute(s) {clash}; "
                          "they may not be used for segmentation")
    sample_raw = _get(raw, "sample_data", "", dict, None)
    sample = None
    if sample_raw is not None:
        sample = SampleDataConf(
            path=_get(sample_raw, "path", "sample_data.", str),
            format=_get(sample_raw, "format", "sample_data.", str, "delta"),
            customers=_positive_int(sample_raw, "customers", "sample_data.", 2000),
            transactions_per_customer=_positive_int(sample_raw, "transactions_per_customer", "sample_data.", 25),
            dirt_rate=float(_get(sample_raw, "dirt_rate", "sample_data.", (int, float), 0.02)),
        )
    return Config(
        spark=spark,
        as_of_date=_as_date(_get(raw, "as_of_date", ""), "as_of_date"),
        seed=_get(raw, "seed", "", int, 42),
        inputs=inputs,
        output_path=_get(output_raw, "path", "output.", str),
        output_database=_get(output_raw, "database", "output.", str, None),
        features=features,
        model=model,
        pii_columns=tuple(_get(raw, "pii_columns", "", list, [])),
        protected_attributes=protected,
        sample_data=sample,
        segment_rules=_get(raw, "segment_rules", "", dict, {}),
        raw=raw,
    )


def _model(raw: dict[str, Any]) -> ModelConf:
    where = "model."
    features = tuple(_get(raw, "features", where, list))
    log1p = tuple(_get(raw, "log1p_features", where, list, []))
    missing = sorted(set(log1p) - set(features))
    if missing:
        raise ConfigError(f"config: 'model.log1p_features' names {missing}, which are not in 'model.features'")
    k = _get(raw, "k", where, int, None)
    k_min = _positive_int(raw, "k_min", where, 2)
    k_max = _positive_int(raw, "k_max", where, 10)
    if k_min < 2 or k_max < k_min:
        raise ConfigError(f"config: need 2 <= 'model.k_min' <= 'model.k_max', got {k_min}..{k_max}")
    if k is not None and k < 2:
        raise ConfigError(f"config: 'model.k' must be >= 2, got {k}")
    return ModelConf(
        features=features,
        log1p_features=log1p,
        k=k,
        k_min=k_min,
        k_max=k_max,
        sample_size=_positive_int(raw, "sample_size", where, 100_000),
        max_iter=_positive_int(raw, "max_iter", where, 40),
        n_init=_positive_int(raw, "n_init", where, 2),
        fit_partitions=_positive_int(raw, "fit_partitions", where, 8),
        stability_runs=_positive_int(raw, "stability_runs", where, 2),
        min_segment_share=float(_get(raw, "min_segment_share", where, (int, float), 0.02)),
        min_stability=float(_get(raw, "min_stability", where, (int, float), 0.7)),
    )


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `dotted.key=value` overrides (value parsed as YAML) to a copy of the raw config."""
    result = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like dotted.key=value")
        key, value = item.split("=", 1)
        node = result
        parts = key.strip().split(".")
        if parts[:2] == ["spark", "conf"] and len(parts) > 3:  # Spark keys contain dots themselves
            parts = [*parts[:2], ".".join(parts[2:])]
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: '{part}' is not a mapping")
        node[parts[-1]] = yaml.safe_load(value)
    return result


def load_config(path: str | Path, overrides: list[str] | None = None, as_of: str | None = None) -> Config:
    """Read a YAML file, apply command-line overrides and validate it."""
    try:
        with open(path, encoding="utf-8") as handle:
            raw = yaml.safe_load(handle) or {}
    except FileNotFoundError as err:
        raise ConfigError(f"config file not found: {path}") from err
    raw = apply_overrides(raw, overrides or [])
    if as_of:
        raw["as_of_date"] = as_of
    return parse_config(raw)
