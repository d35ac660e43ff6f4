"""Optional MLflow tracking (config `tracking.uri`; `pip install custseg[mlflow]`): each training run becomes an
MLflow run with its parameters, K-selection metrics, segment sizes and exported model, and the report is added
to it when it is written. Off by default; nothing here imports mlflow unless a tracking URI is configured (the
configuration refuses a URI when mlflow is not installed).

One MLflow run per custseg run id (tag custseg.run_id): a rerun logs into the same MLflow run again.
"""
from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from custseg.config import TrackingConf

RUN_TAG = "custseg.run_id"


def _run(conf: TrackingConf, run_id: str) -> Any:
    """The active MLflow run of a custseg run id (resumed when it exists)."""
    import mlflow

    mlflow.set_tracking_uri(conf.uri)
    experiment = mlflow.set_experiment(conf.experiment)
    found = mlflow.search_runs([experiment.experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{run_id}'",
                               output_format="list", max_results=1)
    if found:
        return mlflow.start_run(run_id=found[0].info.run_id)
    return mlflow.start_run(run_name=run_id, tags={RUN_TAG: run_id})


def log_training(conf: TrackingConf, run_id: str, as_of: str, params: dict[str, Any], metrics: dict[str, Any],
                 sizes: dict[int, int], document: dict) -> None:
    """Parameters, one metric series per K-selection measure (step = K), segment sizes and the applicant model."""
    if not conf.uri:
        return
    import mlflow

    model = params.get("model", {})
    with _run(conf, run_id):
        mlflow.log_params({"as_of_date": as_of, "seed": params.get("seed"), "chosen_k": metrics.get("chosen_k"),
                           "k_min": model.get("k_min"), "k_max": model.get("k_max"),
                           "features_used": ",".join(metrics.get("features_used", [])),
                           "k_reason": str(metrics.get("reason"))[:500]})
        for row in metrics.get("k_results", []):
            for key in ("silhouette", "sse", "davies_bouldin", "calinski_harabasz", "min_share", "stability"):
                value = row.get(key)
                if value is not None and value == value:  # NaN is not a metric
                    mlflow.log_metric(f"k_selection.{key}", float(value), step=int(row["k"]))
        mlflow.log_metrics({f"segment_size.{segment}": float(size) for segment, size in sizes.items()})
        mlflow.log_dict(document, "model/applicant_model.json")
        mlflow.log_text(json.dumps(params, indent=1, default=str), "config.json")


def log_report(conf: TrackingConf, run_id: str, files: dict[str, bytes]) -> None:
    """The report's files as artifacts of the training run's MLflow run."""
    if not conf.uri:
        return
    import mlflow

    with _run(conf, run_id), tempfile.TemporaryDirectory() as folder:
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as handle:
                handle.write(data)
        mlflow.log_artifacts(folder, "report")
