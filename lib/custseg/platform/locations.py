"""Where outputs live: every location is a URI string (s3a://, abfss://, gs://, hdfs://, file:, or a plain path).

Joined as strings, never with pathlib, which would turn `s3a://bucket/out` into `s3a:/bucket/out`.
"""
from __future__ import annotations

import os

MODELS_DIR = "models"
REPORTS_DIR = "reports"


def join_uri(base: str, *parts: str) -> str:
    """`base/part/...` with exactly one slash between the pieces, the scheme and authority kept as written."""
    return "/".join([base.rstrip("/"), *[part.strip("/") for part in parts if part]])


def absolute_location(path: str) -> str:
    """SQL locations (delta.`path`, LOCATION) must be absolute: local relative paths are made so, URIs kept."""
    return path if "://" in path or path.startswith("file:") else os.path.abspath(path)


def model_location(output_path: str, run_id: str) -> str:
    """The saved PipelineModel of a training run."""
    return join_uri(output_path, MODELS_DIR, run_id)


def applicant_model_location(output_path: str, run_id: str) -> str:
    """The JSON export of a training run's model for the Spark-free applicant scorer, beside the model."""
    return join_uri(output_path, MODELS_DIR, f"{run_id}-applicant.json")


def report_location(output_path: str, run_id: str) -> str:
    """The folder of a run's report (HTML and figures)."""
    return join_uri(output_path, REPORTS_DIR, run_id)
