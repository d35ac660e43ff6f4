"""Score loan applicants against a trained segmentation without Spark: pure Python and numpy.

Loads the JSON document a training run writes beside its model (custseg/ml/export.py) and applies the same
steps as the Spark pipeline: not-applicable rules, training medians, signed log1p, caps, the scaler, the
nearest centroid, then the runner-up, margin and reason codes of ml/explain.py. Importable without pyspark.

    scorer = ApplicantScorer.load("out/models/<run_id>-applicant.json")
    scorer.score({"tenure_days": 40, "frequency": 3, "monetary": 250.0, ...})
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

import numpy as np

FORMAT = "custseg.applicant_model"
VERSION = 1
ID_FIELDS = ("customer_id", "applicant_id")  # echoed back, never scored


class ApplicantError(ValueError):
    """An applicant record or a model document that cannot be scored; the message names the field."""


def _local_path(location: str) -> str:
    parsed = urlparse(location)
    if parsed.scheme in ("", "file"):
        return parsed.path if parsed.scheme else location
    raise ApplicantError(f"{location}: the applicant scorer reads local files only; copy the document first")


class ApplicantScorer:
    def __init__(self, document: Mapping[str, Any]) -> None:
        if document.get("format") != FORMAT:
            raise ApplicantError(f"not an applicant model document (format {document.get('format')!r}, "
                                 f"expected {FORMAT!r})")
        if document.get("version") != VERSION:
            raise ApplicantError(f"applicant model document version {document.get('version')!r} cannot be read by "
                                 f"this scorer (reads version {VERSION}); export the model again or use the "
                                 f"matching custseg release")
        try:
            self._read(document)
        except (KeyError, TypeError, IndexError) as err:
            raise ApplicantError(f"applicant model document is incomplete: {err!r}") from err

    def _read(self, document: Mapping[str, Any]) -> None:
        self.run_id: str = document["run_id"]
        self.as_of_date: str = document["as_of_date"]
        self.inputs = frozenset(document["inputs"])
        features = document["features"]
        self.features: list[str] = [f["name"] for f in features]
        self._rules = [(f["not_applicable"], f["median"]) for f in features]
        self._log1p = np.array([f["log1p"] for f in features], dtype=bool)
        caps = [f["caps"] or (-math.inf, math.inf) for f in features]
        self._low = np.array([c[0] for c in caps])
        self._high = np.array([c[1] for c in caps])
        self._mean = np.array([f["mean"] for f in features])
        std = np.array([f["std"] for f in features])
        # Spark's StandardScaler multiplies by 1 / std, and by 0 for a constant feature.
        self._scale = np.divide(1.0, std, out=np.zeros_like(std), where=std != 0)
        self.segments: list[dict] = document["segments"]
        self._centers = np.array([s["centroid"] for s in self.segments])
        self._originals = np.array([s["centroid_original"] for s in self.segments])
        self.reasons: int = document["reasons"]

    @classmethod
    def load(cls, location: str) -> ApplicantScorer:
        with open(_local_path(location), encoding="utf-8") as handle:
            return cls(json.load(handle))

    # ------------------------------------------------------------------ input

    def _value(self, record: Mapping[str, Any], feature: str) -> float | None:
        value = record.get(feature)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApplicantError(f"field {feature!r}: expected a number or null, got {type(value).__name__} "
                                 f"{value!r}")
        if not math.isfinite(value):
            raise ApplicantError(f"field {feature!r}: expected a finite number, got {value!r}")
        return float(value)

    def model_values(self, record: Mapping[str, Any]) -> list[float]:
        """The values the model uses, in original units: not-applicable rules, then the training medians."""
        return self._filled(record)[0]

    def _filled(self, record: Mapping[str, Any]) -> tuple[list[float], list[str]]:
        """model_values, and the features given their training median (unknown in the record)."""
        if not isinstance(record, Mapping):
            raise ApplicantError(f"an applicant is a JSON object of feature values, got {type(record).__name__}")
        unknown = sorted(set(record) - self.inputs - set(ID_FIELDS))
        if unknown:
            raise ApplicantError(f"unknown field {unknown[0]!r}; the fields are the customer_features columns")
        values, imputed = [], []
        for feature, (rule, median) in zip(self.features, self._rules, strict=True):
            value = self._value(record, feature)
            if value is None and rule is not None:
                condition = rule["only_when_zero"]
                if condition is None or self._value(record, condition) == 0:
                    value = rule["value"]
            if value is None:
                if median is None:
                    raise ApplicantError(f"field {feature!r} is missing and the model has no median for it")
                value = median
                imputed.append(feature)
            values.append(value)
        return values, imputed

    # ------------------------------------------------------------------ scoring

    def score_batch(self, records: Sequence[Mapping[str, Any]]) -> list[dict]:
        """One result per record, in order (see score)."""
        if not records:
            return []
        filled = [self._filled(r) for r in records]
        used = np.array([values for values, _ in filled])
        prepared = np.where(self._log1p, np.sign(used) * np.log(1 + np.abs(used)), used)
        x = (np.minimum(np.maximum(prepared, self._low), self._high) - self._mean) * self._scale
        diff = x[:, None, :] - self._centers[None, :, :]
        squared = diff * diff
        distances = np.sqrt(squared.sum(axis=2))
        return [self._result(record, x[i], used[i], distances[i], squared[i], filled[i][1])
                for i, record in enumerate(records)]

    def score(self, record: Mapping[str, Any]) -> dict:
        """segment_id, segment_name, risk_tier, credit_action, apr_low, apr_high, credit_limit_multiplier,
        marketing_strategy, distance_to_centroid, second_segment_id, distance_to_second, distance_ratio, the
        reason codes (reason_1, reason_1_value, reason_1_segment_value, ...) and imputed_features of one
        applicant; with most features unknown, no decision (tier unrated, no APR band)."""
        return self.score_batch([record])[0]

    def _result(self, record: Mapping[str, Any], x: np.ndarray, used: np.ndarray, distances: np.ndarray,
                squared: np.ndarray, imputed: list[str]) -> dict:
        own = int(np.argmin(distances))  # the first on a tie, as Spark's KMeans
        others = [s for s in range(len(distances)) if s != own]
        second = min(others, key=lambda s: (distances[s], s)) if others else None
        result = {k: record[k] for k in ID_FIELDS if k in record}
        result.update({k: v for k, v in self.segments[own].items() if k not in ("centroid", "centroid_original")})
        result["imputed_features"] = imputed
        if len(imputed) * 2 > len(self.features):  # the segment would be mostly the training medians'
            result.update(risk_tier="unrated", apr_low=None, apr_high=None, credit_limit_multiplier=None,
                          credit_action=f"insufficient data: {len(imputed)} of the model's {len(self.features)} "
                                        "features unknown (given the training median); collect them and score again")
        result["distance_to_centroid"] = float(distances[own])
        result["second_segment_id"] = None if second is None else self.segments[second]["segment_id"]
        result["distance_to_second"] = None if second is None else float(distances[second])
        result["distance_ratio"] = (float(distances[own] / distances[second])
                                    if second is not None and distances[second] > 0 else None)
        top = []
        if second is not None:
            # Same arithmetic as ml/explain.py: (x - own)^2 - (x - second)^2 per feature, the most negative first.
            minus_pull = squared[own] - squared[second]
            top = sorted((p, j) for j, p in enumerate(minus_pull) if p < 0)[:self.reasons]
        for n in range(self.reasons):
            j = top[n][1] if n < len(top) else None
            result[f"reason_{n + 1}"] = None if j is None else self.features[j]
            result[f"reason_{n + 1}_value"] = None if j is None else float(used[j])
            result[f"reason_{n + 1}_segment_value"] = None if j is None else float(self._originals[own, j])
        return result


def score_json(scorer: ApplicantScorer, text: str) -> str:
    """Score a JSON object (one applicant) or array (a batch); the result in the same shape, as JSON."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise ApplicantError(f"input is not JSON: {err}") from err
    if isinstance(payload, list):
        return json.dumps(scorer.score_batch(payload))
    return json.dumps(scorer.score(payload))
