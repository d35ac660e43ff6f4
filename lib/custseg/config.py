"""Load and validate the YAML configuration.

Every section is a frozen pydantic model that forbids unknown keys: a typo (`--set model.kk=3`) must fail at
start-up in one line naming the key, not be ignored by a run of several minutes. Nothing here imports pyspark,
so the jobs can validate the configuration before they start Spark.
"""
from __future__ import annotations

import copy
import datetime as dt
import difflib
import importlib.util
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from custseg.contract.inputs import CONTRACTS
from custseg.platform.locations import join_uri

_CUSTOM_ERROR = "custseg"  # our own validation errors: their message is final and may name a sub-key


class ConfigError(ValueError):
    """The configuration has an unknown key or a missing or wrong value; the one-line message names the key."""


def _fail(message: str, key: str = "") -> PydanticCustomError:
    """A validation error whose message is shown as is, after the dotted key (extended by `key`)."""
    return PydanticCustomError(_CUSTOM_ERROR, message, {"key": key})


def _scalar_text(value: Any) -> str:
    """Spark conf values and reader options are strings; YAML gives numbers, booleans and dates too."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str | int | float | dt.date):
        return str(value)
    raise _fail(f"must be a string, number or boolean, got {value!r}")


def _string_keys(value: Any) -> Any:
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


def _to_date(value: Any) -> dt.date:
    """A YAML date, or a quoted one from the file, --set or --as-of."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _fail(f"must be a date YYYY-MM-DD, got {value!r}")


def _share(value: float) -> float:
    if not 0 <= value <= 1:
        raise _fail(f"must be between 0 and 1, got {value!r}")
    return value


PositiveInt = Annotated[StrictInt, Field(gt=0)]
PositiveFloat = Annotated[StrictFloat, Field(gt=0)]
NonNegativeFloat = Annotated[StrictFloat, Field(ge=0)]
Share = Annotated[StrictFloat, AfterValidator(_share)]
Text = Annotated[str, BeforeValidator(_scalar_text)]
TextMapping = Annotated[dict[str, Text], BeforeValidator(_string_keys)]
Date = Annotated[dt.date, BeforeValidator(_to_date)]


class _Section(BaseModel):
    """A YAML mapping with a fixed set of keys; a key given as null takes its default, as an absent one does."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if isinstance(data, dict):  # unknown keys are kept, so that a null one is still refused
            return {k: v for k, v in data.items() if not (v is None and k in cls.model_fields)}
        return data


class _SparkSettings(_Section):
    master: str | None = None
    app_name: str = "custseg"
    shuffle_partitions: PositiveInt = 8
    driver_memory: str | None = None
    use_delta_pip: StrictBool = True
    # Inputs smaller than this run with custseg.platform.session.SMALL_INPUT settings; 0 = never.
    small_input_mb: NonNegativeFloat = 16.0
    # Inputs smaller than this hold what a run reuses as local checkpoints (custseg.platform.session.Cache); 0 = never.
    local_checkpoint_mb: NonNegativeFloat = 64.0
    # A session this library starts runs on a JDK 25+ from its ahead-of-time cache, when there are both
    # (custseg.platform.driver_jvm).
    jvm_cache: StrictBool = False


class SparkConf(_SparkSettings):
    """The session settings; `extra` is any Spark conf key -> value (the YAML's spark.conf)."""

    extra: dict[str, str] = Field(default_factory=dict)


class _SparkSection(_SparkSettings):
    conf: TextMapping = Field(default_factory=dict)  # free: any Spark key


class _InputSection(_Section):
    path: str | None = None
    format: Literal["delta", "parquet", "csv", "table"]
    table: str | None = None
    columns: TextMapping = Field(default_factory=dict)  # contract name -> source column name
    options: TextMapping = Field(default_factory=dict)  # reader options (CSV header, separator...)
    # contract column with a list of values -> {the table's value: the contract's}, e.g. status: {Fully Paid: paid_off}
    values: dict[str, TextMapping] = Field(default_factory=dict)
    date_format: str = "yyyy-MM-dd"
    timestamp_format: str = "yyyy-MM-dd HH:mm:ss"
    # "," for numbers written 1.234,56 (text sources only): "." then groups thousands.
    decimal_separator: Literal[".", ","] = "."
    # More of the table's rows rejected than this stops the run before any feature: a wrong mapping or format.
    max_rejected_share: Share = 0.5
    # customers only: "many" for an export with a row per transaction, reduced to one row per customer.
    rows_per_customer: Literal["one", "many"] = "one"
    # contract number column -> the source column it is multiplied by (invoice lines: amount: Quantity, times Price)
    multiply_by: TextMapping = Field(default_factory=dict)
    # transactions only: without an id column, each row's id is a hash of all its values (identical rows: copies)
    transaction_id_from_row: bool = False
    # transactions only: the source column of a basket or invoice number; a basket's lines become one transaction
    basket: Text | None = None

    @model_validator(mode="after")
    def _has_location(self) -> _InputSection:
        if self.format == "table" and not self.table:
            raise _fail("is required when format is 'table'", "table")
        if self.format != "table" and not self.path:
            raise _fail(f"is required when format is '{self.format}'", "path")
        return self


class InputConf(_InputSection):
    """One input table as configured under inputs.<name>."""

    name: str

    def __init__(self, name: str, path: str | None = None, format: str | None = None, **data: Any) -> None:
        super().__init__(name=name, path=path, format=format, **data)  # positional, as call sites write it


class _Inputs(_Section):
    customers: _InputSection
    transactions: _InputSection
    loans: _InputSection | None = None
    loan_payments: _InputSection | None = None
    products: _InputSection | None = None

    @model_validator(mode="after")
    def _rows_per_customer_on_customers_only(self) -> _Inputs:
        for table in ("transactions", "loans", "loan_payments", "products"):
            section = getattr(self, table)
            if section and section.rows_per_customer != "one":
                raise _fail("applies to inputs.customers only", f"{table}.rows_per_customer")
        for table in ("customers", "loans", "loan_payments", "products"):
            section = getattr(self, table)
            if section and section.transaction_id_from_row:
                raise _fail("applies to inputs.transactions only", f"{table}.transaction_id_from_row")
            if section and section.basket:
                raise _fail("applies to inputs.transactions only", f"{table}.basket")
        if self.transactions.transaction_id_from_row and "transaction_id" in self.transactions.columns:
            raise _fail("and columns.transaction_id exclude each other: the id is either mapped or made from the row",
                        "transactions.transaction_id_from_row")
        return self


class _OutputSection(_Section):
    path: str
    # Reaches SQL as an identifier: letters, digits and underscores only, so no value can inject SQL.
    database: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")] | None = None


class FeatureConf(_Section):
    lookback_days: PositiveInt = 365
    trend_window_days: PositiveInt = 90
    late_payment_window_days: PositiveInt = 365
    default_dpd: PositiveInt = 90


class OutlierCapsConf(_Section):
    """Per-feature caps at these quantiles of the training customers, after log1p (docs/model.md)."""

    enabled: StrictBool = True
    lower_quantile: Share = 0.001
    upper_quantile: Share = 0.999

    @model_validator(mode="after")
    def _lower_below_upper(self) -> OutlierCapsConf:
        if self.lower_quantile >= self.upper_quantile:
            raise _fail(f"must be below upper_quantile ({self.upper_quantile}), got {self.lower_quantile}",
                        "lower_quantile")
        return self


class ModelConf(_Section):
    features: tuple[str, ...] = Field(min_length=1)
    log1p_features: tuple[str, ...] = ()
    k: Annotated[StrictInt, Field(ge=2)] | None = None  # None: choose K in k_min..k_max
    k_min: Annotated[StrictInt, Field(ge=2)] = 2
    k_max: PositiveInt = 10
    sample_size: PositiveInt = 100_000
    max_iter: PositiveInt = 40
    n_init: PositiveInt = 2  # Spark K-means starts of the final fit, at most
    sweep_n_init: PositiveInt = 10  # scikit-learn starts per K of the sweep: the optimum the final fit must reach
    fit_partitions: PositiveInt = 8
    stability_runs: PositiveInt = 2
    min_segment_share: Share = 0.02
    min_stability: Share = 0.7
    outlier_caps: OutlierCapsConf = OutlierCapsConf()
    # A retrained segment keeps the previous run's id when their memberships overlap this much (Jaccard).
    lineage_min_overlap: Share = 0.5

    @model_validator(mode="after")
    def _consistent(self) -> ModelConf:
        if self.k_max < self.k_min:
            raise _fail(f"must be >= k_min ({self.k_min}), got {self.k_max}", "k_max")
        missing = [name for name in self.log1p_features if name not in self.features]
        if missing:
            raise _fail(f"names {missing}, which are not in model.features", "log1p_features")
        return self


class DriftConf(_Section):
    """When a scoring run recommends retraining (docs/model.md, drift): PSI above 0.25 is the usual 'major shift'."""

    segment_shares_psi: PositiveFloat = 0.25
    feature_psi: PositiveFloat = 0.25
    far_from_centroids_share: Share = 0.05  # beyond the training 99th percentile distance: 1 % expected


class FairnessConf(_Section):
    """The fairness audit (docs/model.md, Fairness): groups below min_group_size are suppressed, not shown."""

    min_group_size: PositiveInt = 20


class ProductsConf(_Section):
    """Product opportunities (docs/model.md, What to offer): white space against the nearest segments."""

    # A product whose lower-case name contains one of these is a credit product: never offered to a high-risk
    # segment, only with underwriting to an unrated or medium-risk one.
    credit_product_terms: tuple[str, ...] = ("credit", "loan", "mortgage", "overdraft", "heloc", "bnpl", "lending")
    neighbour_segments: PositiveInt = 2  # nearest segments by centroid distance a segment is compared with
    min_gap: Share = 0.10  # neighbours' penetration minus the segment's below this is no opportunity
    top: PositiveInt = 3  # recommendations per segment in the report


class TrackingConf(_Section):
    """Optional MLflow tracking of training runs (platform/tracking.py); off without a uri."""

    uri: str | None = None  # e.g. file:///data/mlruns or http://mlflow:5000
    experiment: str = "custseg"

    @model_validator(mode="after")
    def _mlflow_installed(self) -> TrackingConf:
        if self.uri and importlib.util.find_spec("mlflow") is None:
            raise _fail("is set but mlflow is not installed: pip install 'custseg[mlflow]'", "uri")
        return self


class SampleDataConf(_Section):
    path: str
    format: Literal["delta", "parquet", "csv"] = "delta"
    customers: PositiveInt = 2000
    transactions_per_customer: PositiveInt = 25
    dirt_rate: Share = 0.02


class RiskThresholds(_Section):
    """Borrower rates at which a segment with enough borrowers is at this risk level (docs/model.md)."""

    default_rate: Share  # compared with default_rate_ever
    late_payment_rate: Share  # compared with late_payment_rate_12m


class HighRisk(RiskThresholds):
    default_rate: Share = 0.10
    late_payment_rate: Share = 0.30


class MediumRisk(RiskThresholds):
    default_rate: Share = 0.03
    late_payment_rate: Share = 0.10


class CreditActions(_Section):
    low: str = "pre-approve: offer best rates and higher limits"
    medium: str = "standard underwriting and pricing"
    high: str = "manual review: tighten limits, risk-based pricing, collections watch"
    unrated: str = "standard underwriting, no pre-approval"


class SegmentRules(_Section):
    """Thresholds of the naming and risk-tier rules (docs/model.md); a partial block keeps the other defaults."""

    min_borrowers: PositiveInt = 30  # fewer borrowers in a segment: tier unrated, whatever its rates
    high_risk: HighRisk = HighRisk()
    medium_risk: MediumRisk = MediumRisk()
    credit_action: CreditActions = CreditActions()
    lapsed_share: Share = 0.5  # share of a segment without a purchase in the lookback window that makes it lapsed
    new_tenure_days: PositiveInt = 180  # median tenure up to which a segment is new

    @model_validator(mode="after")
    def _medium_below_high(self) -> SegmentRules:
        for key in ("default_rate", "late_payment_rate"):
            medium, high = getattr(self.medium_risk, key), getattr(self.high_risk, key)
            if medium > high:
                raise _fail(f"must be at most high_risk.{key} ({high}), got {medium}", f"medium_risk.{key}")
        return self


class LimitMultipliers(_Section):
    """Credit limit multiplier per risk tier: neither a high-risk nor an unrated segment gets an increase."""

    low: PositiveFloat = 1.25
    medium: PositiveFloat = 1.0
    high: PositiveFloat = 0.75
    unrated: PositiveFloat = 1.0

    @model_validator(mode="after")
    def _no_increase_without_evidence(self) -> LimitMultipliers:
        if self.high >= 1:
            raise _fail(f"must be below 1 (a high-risk segment gets lower limits), got {self.high}", "high")
        if self.unrated > 1:
            raise _fail(f"must be at most 1 (no limit increase without evidence), got {self.unrated}", "unrated")
        return self


class PricingConf(_Section):
    """Suggested APR band per segment from its expected loss (formula and example in docs/model.md)."""

    base_apr: Share = 0.12
    loss_given_default: Share = 0.45
    floor_apr: Share = 0.06
    cap_apr: Share = 0.36
    band_half_width: Share = 0.01  # the band is the segment's APR +- this, within [floor_apr, cap_apr]
    limit_multiplier: LimitMultipliers = LimitMultipliers()

    @model_validator(mode="after")
    def _base_within_floor_and_cap(self) -> PricingConf:
        if self.floor_apr > self.cap_apr:
            raise _fail(f"must be at most cap_apr ({self.cap_apr}), got {self.floor_apr}", "floor_apr")
        if not self.floor_apr <= self.base_apr <= self.cap_apr:
            raise _fail(f"must be within floor_apr and cap_apr ({self.floor_apr}-{self.cap_apr}), got "
                        f"{self.base_apr}", "base_apr")
        return self


def _name(value: str) -> str:
    return value.strip().lower()


class _Document(_Section):
    """The YAML file as written; Config is what the code reads."""

    spark: _SparkSection = _SparkSection()
    as_of_date: Date
    seed: StrictInt = 42
    inputs: _Inputs
    output: _OutputSection
    features: FeatureConf = FeatureConf()
    model: ModelConf
    pii_columns: tuple[str, ...] = ()
    protected_attributes: tuple[str, ...] = ()
    # Customer attributes described per segment (who they are): never protected ones, never PII.
    descriptive_attributes: tuple[str, ...] = ("region", "employment_status")
    sample_data: SampleDataConf | None = None
    segment_rules: SegmentRules = SegmentRules()
    pricing: PricingConf = PricingConf()
    drift: DriftConf = DriftConf()
    fairness: FairnessConf = FairnessConf()
    products: ProductsConf = ProductsConf()
    tracking: TrackingConf = TrackingConf()

    @model_validator(mode="after")
    def _protected_attributes_stay_out(self) -> _Document:
        """Fair lending: no protected attribute may feed segmentation, by name or mapped in under another."""
        protected = {_name(a) for a in self.protected_attributes}
        clash = [f for f in self.model.features if _name(f) in protected]
        if clash:
            raise _fail(f"lists protected attribute(s) {clash}; they may not be used for segmentation",
                        "model.features")
        shown = [a for a in self.descriptive_attributes
                 if _name(a) in protected | {_name(p) for p in self.pii_columns}]
        if shown:
            raise _fail(f"lists protected or PII attribute(s) {shown}; they are shown only in the fairness audit",
                        "descriptive_attributes")
        for table, section in self.inputs:
            known = [c.name for c in CONTRACTS[table].columns]
            for contract in (section.columns if section else {}):
                if contract not in known:
                    near = difflib.get_close_matches(contract, known, n=1)
                    hint = f"; did you mean inputs.{table}.columns.{near[0]}?" if near else f"; known: {known}"
                    raise _fail(f"is not a column of the {table} contract{hint}", f"inputs.{table}.columns.{contract}")
            for contract in (section.multiply_by if section else {}):
                numbers = [c.name for c in CONTRACTS[table].columns if c.type == "double"]
                if contract not in numbers:
                    raise _fail(f"is not a number column of the {table} contract (those: {numbers})",
                                f"inputs.{table}.multiply_by.{contract}")
            for contract, mapping in (section.values if section else {}).items():
                listed = next((c.allowed for c in CONTRACTS[table].columns if c.name == contract), None)
                if listed is None:
                    with_lists = [c.name for c in CONTRACTS[table].columns if c.allowed] or "none"
                    raise _fail(f"is not a column of the {table} contract with a list of values (those: "
                                f"{with_lists})", f"inputs.{table}.values.{contract}")
                for value, target in mapping.items():
                    if target.strip().lower() not in listed:
                        raise _fail(f"maps to {target!r}, which is not one of {list(listed)}",
                                    f"inputs.{table}.values.{contract}.{value}")
            for contract, source in (section.columns if section else {}).items():
                if _name(source) in protected and _name(contract) not in protected:
                    raise _fail(f"maps protected attribute {source!r} onto a column that can become a clustering "
                                "feature", f"inputs.{table}.columns.{contract}")
        return self

    def to_config(self, raw: dict[str, Any]) -> Config:
        spark = self.spark.model_dump(exclude={"conf"})
        return Config(
            spark=SparkConf(**spark, extra=self.spark.conf),
            as_of_date=self.as_of_date,
            seed=self.seed,
            inputs={name: InputConf(name=name, **section.model_dump()) for name, section in self.inputs if section},
            output_path=self.output.path,
            output_database=self.output.database,
            features=self.features,
            model=self.model,
            pii_columns=self.pii_columns,
            protected_attributes=self.protected_attributes,
            descriptive_attributes=self.descriptive_attributes,
            sample_data=self.sample_data,
            segment_rules=self.segment_rules,
            pricing=self.pricing,
            drift=self.drift,
            fairness=self.fairness,
            products=self.products,
            tracking=self.tracking,
            raw=raw,
        )


@dataclass(frozen=True)
class Config:
    """What the code reads, built from a validated _Document; a dataclass, so that dataclasses.replace works."""

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
    descriptive_attributes: tuple[str, ...]
    sample_data: SampleDataConf | None
    segment_rules: SegmentRules
    pricing: PricingConf
    drift: DriftConf
    fairness: FairnessConf
    products: ProductsConf
    tracking: TrackingConf
    raw: dict[str, Any]  # after overrides; hashed into the run id

    def table_path(self, table: str) -> str:
        """Location of one output Delta table."""
        return join_uri(self.output_path, table)


# pydantic error type -> what the value must be
_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "a string", "list_type": "a list", "tuple_type": "a list",
    "dict_type": "a mapping", "model_type": "a mapping", "model_attributes_type": "a mapping",
}


def _dotted(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc)


def _keys_at(loc: tuple[Any, ...]) -> list[str]:
    """The valid keys of the section at loc, for a suggestion; [] for a free mapping."""
    kind: Any = _Document
    parts = list(loc)
    while True:
        while get_origin(kind) is Annotated or get_origin(kind) in (Union, types.UnionType):
            kind = next(a for a in get_args(kind) if a is not type(None))
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            if not parts:
                return list(kind.model_fields)
            field = kind.model_fields.get(str(parts.pop(0)))
            if field is None:
                return []
            kind = field.annotation
        elif get_origin(kind) is dict and parts:
            parts.pop(0)
            kind = get_args(kind)[1]
        else:
            return []


def _unknown_key(loc: tuple[Any, ...], value: Any) -> str:
    parent, key = loc[:-1], str(loc[-1])
    what = "section" if not parent and isinstance(value, dict) else "key"
    valid = _keys_at(parent)
    close = difflib.get_close_matches(key, valid, n=1)
    if close:
        hint = f"; did you mean {_dotted((*parent, close[0]))}?"
    else:
        hint = f"; valid keys: {', '.join(valid)}" if valid else ""
    return f"config: unknown {what} {_dotted(loc)}{hint}"


def _one_line(err: ValidationError) -> str:
    """The first problem, unknown keys first (a typo also makes the intended key look missing)."""
    errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc, kind, given = tuple(first["loc"]), first["type"], first["input"]
    if kind == "extra_forbidden":
        return _unknown_key(loc, given)
    if kind == _CUSTOM_ERROR:
        key = ".".join(p for p in (_dotted(loc), first["ctx"]["key"]) if p)
        return f"config: {key} {first['msg']}"
    key = _dotted(loc) or "the top level"
    if kind == "missing":
        return f"config: missing key {key}"
    if kind == "literal_error":
        expected = f"one of {first['ctx']['expected']}"
    elif kind in ("greater_than", "greater_than_equal"):
        op, bound = (">", first["ctx"]["gt"]) if kind == "greater_than" else (">=", first["ctx"]["ge"])
        expected = f"{op} {bound}"
    elif kind == "too_short":
        expected = "non-empty"
    else:
        expected = _EXPECTED.get(kind, f"valid ({first['msg']})")
    shown = repr(given)
    return f"config: {key} must be {expected}, got {shown if len(shown) <= 80 else shown[:77] + '...'}"


def parse_config(raw: dict[str, Any]) -> Config:
    """Validate a parsed YAML mapping (after overrides) and build the Config."""
    if not isinstance(raw, dict):
        raise ConfigError(f"config: the top level must be a mapping, got {type(raw).__name__}")
    try:
        document = _Document.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(" ".join(_one_line(err).split())) from None  # never pydantic's multi-line dump
    return document.to_config(raw)


def _override_value(text: str) -> Any:
    """A --set value read as YAML (numbers, booleans, lists, null); text YAML cannot read stays a string."""
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):  # ValueError: a date such as 2026-13-01
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `dotted.key=value` overrides (value parsed as YAML) to a copy of the raw config."""
    result = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"config: override {item!r} must look like dotted.key=value")
        key, value = item.split("=", 1)
        node = result
        parts = key.strip().split(".")
        if parts[:2] == ["spark", "conf"] and len(parts) > 3:  # Spark keys contain dots themselves
            parts = [*parts[:2], ".".join(parts[2:])]
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config: {'.'.join(parts[:depth + 1])} is not a mapping, cannot set {key.strip()}")
        node[parts[-1]] = _override_value(value)
    return result


def _read_yaml(path: str | Path) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as err:
        raise ConfigError(f"config file {path}: cannot read it: {err.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}" if mark else ""
        problem = " ".join(str(err.problem or err.context).split())
        raise ConfigError(f"config file {path}: invalid YAML{where}: {problem}") from None
    except (yaml.YAMLError, ValueError) as err:  # ValueError: a date such as 2026-13-01
        raise ConfigError(f"config file {path}: invalid YAML: {' '.join(str(err).split())}") from None


def load_config(path: str | Path, overrides: list[str] | None = None, as_of: str | None = None) -> Config:
    """Read a YAML file, apply command-line overrides and validate it."""
    raw = _read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping, got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [])
    if as_of:
        raw["as_of_date"] = as_of
    return parse_config(raw)
