"""The command line as a user meets it: a failing job says so in one line and keeps the traceback in a file."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_a_failing_job_prints_one_line_naming_the_table_and_keeps_the_traceback(tmp_path):
    missing = tmp_path / "no such table"
    result = subprocess.run(
        [sys.executable, "jobs/build_features.py", "--conf", "conf/test.yaml", "--set", f"output.path={tmp_path}/out",
         "--set", f"inputs.customers.path={missing}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1
    failures = [line for line in result.stderr.splitlines() if "failed" in line]
    assert len(failures) == 1 and failures[0].startswith("custseg build-features: failed: input table 'customers'")
    assert "Traceback" not in result.stderr and "py4j" not in result.stderr
    log_file = Path(failures[0].rsplit("traceback in ", 1)[1].rstrip(")"))
    assert "Traceback" in log_file.read_text() and "InputError" in log_file.read_text()
    assert not (tmp_path / "out").exists()  # an unreadable input stops the run before anything is written
