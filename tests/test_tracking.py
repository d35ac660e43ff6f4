"""Optional MLflow tracking (platform/tracking.py) against a local file store: what a training run logs, the
report added to it, one MLflow run per custseg run, and a configuration that asks for MLflow without it."""
from __future__ import annotations

import json
import sys

import pytest

from custseg.config import ConfigError, TrackingConf, load_config
from custseg.contract import outputs
from custseg.platform.locations import applicant_model_location
from custseg.platform.tracking import RUN_TAG, log_report, log_training
from golden import AS_OF
from helpers import ROOT

mlflow = pytest.importorskip("mlflow")  # installed with the test extra; the jobs themselves never need it


def test_a_training_run_and_its_report_are_logged_to_one_mlflow_run(spark, golden, tmp_path):
    conf = TrackingConf(uri=(tmp_path / "mlruns").as_uri(), experiment="custseg-test")
    record = golden.train
    sizes = {r["segment_id"]: r["size"] for r in golden.table(spark, outputs.SEGMENT_PROFILES, AS_OF).collect()}
    with open(applicant_model_location(golden.conf.output_path, record.run_id), encoding="utf-8") as handle:
        document = json.load(handle)

    for _ in range(2):  # a rerun logs into the same MLflow run
        log_training(conf, record.run_id, AS_OF.isoformat(), golden.conf.raw, record.metrics, sizes, document)
    log_report(conf, record.run_id, {"report.html": b"<html>report</html>", "k_selection.png": b"\x89PNG"})

    client = mlflow.MlflowClient(tracking_uri=conf.uri)
    experiment = client.get_experiment_by_name("custseg-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.tags[RUN_TAG] == record.run_id
    assert run.data.params["chosen_k"] == str(record.metrics["chosen_k"])
    assert run.data.params["features_used"] == ",".join(record.metrics["features_used"])
    history = client.get_metric_history(run.info.run_id, "k_selection.silhouette")
    swept = {r["k"]: r["silhouette"] for r in record.metrics["k_results"]}
    assert {m.step: m.value for m in history} == pytest.approx(swept)
    assert {s: run.data.metrics[f"segment_size.{s}"] for s in sizes} == {s: float(n) for s, n in sizes.items()}
    folder = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, tracking_uri=conf.uri,
                                                 dst_path=str(tmp_path / "artifacts"))
    with open(f"{folder}/model/applicant_model.json", encoding="utf-8") as handle:
        assert json.load(handle) == document
    with open(f"{folder}/report/report.html", "rb") as handle:
        assert handle.read() == b"<html>report</html>"


def test_without_a_uri_nothing_is_logged_and_mlflow_is_not_imported(tmp_path, monkeypatch):
    monkeypatch.delitem(sys.modules, "mlflow", raising=False)
    log_training(TrackingConf(), "r", "2026-01-01", {}, {}, {}, {})
    assert "mlflow" not in sys.modules


def test_a_uri_without_mlflow_installed_is_refused_before_the_job_starts(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a))
    with pytest.raises(ConfigError, match=r"tracking\.uri.*mlflow is not installed"):
        load_config(str(ROOT / "conf" / "test.yaml"), ["tracking.uri=file:///tmp/mlruns"])
