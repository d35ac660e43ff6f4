"""Shared by the test modules: a test configuration pointed at generated data and an output folder."""
from __future__ import annotations

from pathlib import Path

import yaml

from custseg.config import Config, apply_overrides, parse_config

ROOT = Path(__file__).resolve().parents[1]
INPUTS = ("customers", "transactions", "loans", "loan_payments")


def make_conf(data_dir: Path, out_dir: Path, extra: list[str] | None = None, k_max: int = 5) -> Config:
    """conf/test.yaml reading data_dir/<table>, writing out_dir, sweeping K in 4..k_max with one refit."""
    raw = yaml.safe_load((ROOT / "conf" / "test.yaml").read_text())
    overrides = [f"output.path={out_dir}", *[f"inputs.{t}.path={data_dir / t}" for t in INPUTS],
                 "model.k_min=4", f"model.k_max={k_max}", "model.stability_runs=1", *(extra or [])]
    return parse_config(apply_overrides(raw, overrides))
