"""The segment_report flow: a training run's outputs -> five figures and one self-contained HTML page, next to them."""
from __future__ import annotations

import logging

from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession

from custseg.config import Config
from custseg.ml.lineage import model_ids
from custseg.ml.pipeline import fitted_kmeans
from custseg.platform.ledger import features_for_date
from custseg.platform.locations import join_uri, model_location, report_location
from custseg.platform.runs import latest_run_id
from custseg.platform.storage import in_parallel, write_bytes
from custseg.platform.tracking import log_report
from custseg.report.data import SAMPLE_CAP, RunData, ScatterData, read_run, scatter_data
from custseg.report.figures import make_figures
from custseg.report.html import render_html

log = logging.getLogger(__name__)

REPORT_FILE = "report.html"


def write_report(spark: SparkSession, conf: Config, run_id: str | None = None, sample_cap: int = SAMPLE_CAP,
                 model: PipelineModel | None = None, data: RunData | None = None,
                 scatter: ScatterData | None = None) -> str:
    """Write the figures and report.html of a run (default: the latest successful training run); return its URI.
    `model`, `data` and `scatter` are the run's fitted model, results and scatter sample when the caller holds
    them (custseg.report.data.HeldReport): what is given is not loaded or read back."""
    run_id = run_id or latest_run_id(spark, conf.output_path)
    data = data or read_run(spark, conf, run_id)
    if scatter is None:
        model = model or PipelineModel.load(model_location(conf.output_path, run_id))
        features_df = features_for_date(spark, conf.output_path, data.as_of)
        ids = model_ids(spark, conf.output_path, run_id, len(fitted_kmeans(model).clusterCenters()))
        scatter = scatter_data(model, ids, features_df, sample_cap, conf.seed, data.customers)
    figures = make_figures(data, scatter)
    page = render_html(data, figures)

    folder = report_location(conf.output_path, run_id)
    files = {**figures, REPORT_FILE: page.encode("utf-8")}
    in_parallel(lambda name: write_bytes(spark, join_uri(folder, name), files[name]), list(files))
    location = join_uri(folder, REPORT_FILE)
    log.info("report for run %s written to %s", run_id, location)
    log_report(conf.tracking, run_id, {**figures, REPORT_FILE: page.encode("utf-8")})
    return location
