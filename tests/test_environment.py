"""The environment scripts/setup_env.sh builds: what every job process loads at start is compiled already."""
from __future__ import annotations

import importlib
import importlib.util
import os

import pytest

# The heavy imports of a job (custseg.flows.run_pipeline), module by module of each package.
STARTUP_MODULES = ["pandas.core.frame", "sklearn.cluster._kmeans", "scipy.stats._continuous_distns",
                   "matplotlib.axes._axes", "pyspark.sql.dataframe", "numpy.ma.core"]


@pytest.mark.parametrize("name", STARTUP_MODULES)
def test_the_packages_a_job_imports_are_compiled_to_bytecode(name):
    # Where PYTHONDONTWRITEBYTECODE is set no process keeps what it compiles: without these files every job
    # would compile these packages again at start.
    source = importlib.import_module(name).__file__
    assert os.path.exists(importlib.util.cache_from_source(source)), f"{name}: no bytecode next to {source}"
