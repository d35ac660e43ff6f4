"""The fitted model as a small JSON document for custseg/applicant.py, the scorer that needs no Spark.

Everything a score depends on is in the document: the features in vector order with their not-applicable
rule, training median, log1p flag, caps and scaler statistics; the centroids; each segment's name, tier, credit
action and rate band. The scorer checks FORMAT and VERSION before it reads anything else.
"""
from __future__ import annotations

import datetime as dt
import json

from pyspark.ml import PipelineModel

from custseg.contract.features import FEATURES, NOT_APPLICABLE, defined_value
from custseg.contract.outputs import REASON_RANKS
from custseg.ml.pipeline import (
    PipelineParams,
    centers_of,
    centers_original,
    learned_caps,
    learned_medians,
    model_features,
    model_log1p_features,
    scaler_stats,
)

FORMAT = "custseg.applicant_model"
VERSION = 1
SEGMENT_FIELDS = ("segment_name", "risk_tier", "credit_action", "apr_low", "apr_high", "credit_limit_multiplier",
                  "marketing_strategy")


def applicant_document(model: PipelineModel, params: PipelineParams, ids: list[int], described: list[dict],
                       run_id: str, as_of: dt.date) -> dict:
    """The JSON-ready document of a training run's model and segment decisions."""
    features = model_features(model)
    logged = model_log1p_features(model)
    medians = learned_medians(model, params)
    caps = learned_caps(model, params)
    mean, std = scaler_stats(model)
    by_segment = {row["segment_id"]: row for row in described}
    return {
        "format": FORMAT,
        "version": VERSION,
        "run_id": run_id,
        "as_of_date": as_of.isoformat(),
        "inputs": list(FEATURES),
        "reasons": len(REASON_RANKS),
        "features": [{
            "name": f,
            "not_applicable": None if f not in NOT_APPLICABLE else {
                "value": defined_value(f, params.lookback_days), "only_when_zero": NOT_APPLICABLE[f].only_when_zero},
            "median": medians.get(f),
            "log1p": f in logged,
            "caps": list(caps[f]) if f in caps else None,
            "mean": mean[j],
            "std": std[j],
        } for j, f in enumerate(features)],
        "segments": [{  # by cluster index, each with its stable segment id
            "segment_id": ids[index],
            "centroid": center,
            "centroid_original": original,
            **{k: by_segment.get(ids[index], {}).get(k) for k in SEGMENT_FIELDS},
        } for index, (center, original) in enumerate(zip(centers_of(model), centers_original(model), strict=True))],
    }


def to_json(document: dict) -> bytes:
    # repr-exact floats: json writes the shortest string that reads back as the same double
    return json.dumps(document, indent=1, allow_nan=False).encode("utf-8")
