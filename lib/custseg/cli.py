"""The command line: `custseg <job> --conf C [--as-of D] [--set key=value]`, and the jobs/ files spark-submit runs.

A job's arguments and configuration are checked before its flow (and so pyspark) is imported: a typo
fails in one line, at once. Exit codes: 0 done, 1 the job failed, 2 bad arguments or configuration.
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib
import logging
import os
import sys
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from custseg.config import load_config

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass(frozen=True)
class Job:
    flow: str  # "module:function", called as function(spark, conf, **options)
    description: str
    run_id_help: str | None = None  # the job takes --run-id
    generates_sample: bool = False  # the job takes --generate-sample


JOBS = {
    "build-features": Job("custseg.flows.build_features:run_build_features",
                          "Validate the input tables and write customer_features and rejected_records for one "
                          "as-of date."),
    "train-segments": Job("custseg.flows.train_segments:run_train_segments",
                          "Choose K, fit K-means on one as-of date's customer_features and write segment_assignments, "
                          "segment_profiles, segment_feature_stats, segment_centroids, k_selection and the model."),
    "score-customers": Job("custseg.flows.score_customers:run_score_customers",
                           "Assign an as-of date's customers to the segments of a saved model (customer_features "
                           "must exist for that date).",
                           run_id_help="training run whose model to use (default: the latest)"),
    "segment-report": Job("custseg.flows.segment_report:write_report",
                          "Write <output>/reports/<run_id>/report.html and its figures from a training run's "
                          "Delta outputs and saved model.",
                          run_id_help="training run to report on (default: the latest successful one)"),
    "run-pipeline": Job("custseg.flows.run_pipeline:run_pipeline",
                        "Run build-features, train-segments and segment-report for one as-of date.",
                        generates_sample=True),
}
APPLICANT_JOB = "score-applicant"
APPLICANT_HELP = ("Score one loan applicant (a JSON object of customer_features values) or a batch (an array) with a "
                  "training run's exported model, in pure Python: segment, name, tier, rate band, distance, margin and "
                  "reason codes as JSON. Missing features are imputed as in training; an unknown field or a wrong type "
                  "exits 2 naming it.")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="custseg", description="Customer segmentation on Spark.")
    jobs = top.add_subparsers(dest="job", required=True, metavar="JOB")
    for name, job in JOBS.items():
        sub = jobs.add_parser(name, help=job.description.split(".")[0], description=job.description)
        sub.add_argument("--conf", required=True, help="path to the YAML configuration (see conf/)")
        sub.add_argument("--as-of", dest="as_of", help="as-of date YYYY-MM-DD (overrides as_of_date in the conf)")
        sub.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                         help="override a configuration value, e.g. --set model.k=5 (repeatable)")
        sub.add_argument("--log-level", default="INFO", help="Python logging level (default INFO)")
        if job.run_id_help:
            sub.add_argument("--run-id", dest="run_id", help=job.run_id_help)
        if job.generates_sample:
            sub.add_argument("--generate-sample", action="store_true",
                             help="generate the built-in sample data (conf sample_data) first if it is missing")
    applicant = jobs.add_parser(APPLICANT_JOB, help="Score applicants with a training run's exported model, "
                                "without Spark", description=APPLICANT_HELP)
    applicant.add_argument("--model", required=True, help="the exported model: <output>/models/<run_id>-applicant.json")
    applicant.add_argument("--input", default="-", help="JSON file of one applicant (object) or a batch (array); "
                           "- for standard input (default)")
    return top


def score_applicants(model: str, source: str) -> int:
    """The score-applicant command: JSON in, JSON out; exit 2 with one line on a bad document or record."""
    from custseg.applicant import ApplicantScorer, score_json

    try:
        scorer = ApplicantScorer.load(model)
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
        print(score_json(scorer, text))
        return 0
    except (ValueError, OSError) as err:  # ApplicantError is a ValueError, as is a document that is not JSON
        print(f"custseg {APPLICANT_JOB}: error: {err}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    """Parse, validate the conf, build the session, run the job's flow, stop the session."""
    args = parser().parse_args(argv)
    if args.job == APPLICANT_JOB:
        return score_applicants(args.model, args.input)
    prog = f"custseg {args.job}"
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    logging.getLogger("py4j").setLevel(logging.WARNING)  # its connection chatter is not our progress
    try:
        conf = load_config(args.conf, args.overrides, args.as_of)
    except ValueError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)  # one line, like argparse's own usage errors
        return 2
    job = JOBS[args.job]
    module, function = job.flow.split(":")
    options = {}
    if job.run_id_help:
        options["run_id"] = args.run_id
    if job.generates_sample:
        options["generate_sample"] = args.generate_sample
    from custseg.platform.driver_jvm import driver_jvm, keep_recorded
    from custseg.platform.session import apply_small_input_settings, build_session

    jvm = driver_jvm(conf.spark.jvm_cache)
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The flow's modules (pandas, scikit-learn, matplotlib) load while the JVM starts, which Python waits on.
        flow_module = pool.submit(importlib.import_module, module)
        spark = build_session(conf.spark, jvm)
    try:
        flow = getattr(flow_module.result(), function)
        apply_small_input_settings(spark, conf)
        result = flow(spark, conf, **options)
        if hasattr(result, "summary"):
            log.info("%s", result.summary())
        return 0
    except Exception as err:  # noqa: BLE001 - the job reports and exits non-zero
        from custseg.platform.runs import make_run_id

        details = failure_log(args.job, make_run_id(conf, conf.as_of_date), err)
        first_line = (str(err).strip().splitlines() or [type(err).__name__])[0]
        print(f"{prog}: failed: {first_line} (run {make_run_id(conf, conf.as_of_date)}; traceback in {details})",
              file=sys.stderr)
        return 1
    finally:
        spark.stop()
        keep_recorded(jvm)


def failure_log(job: str, run_id: str, err: BaseException) -> str:
    """Write the failure's traceback to a file of its own (the console gets one line); return its path."""
    folder = os.path.join(tempfile.gettempdir(), "custseg-logs")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{job}-{run_id}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}.log")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(f"custseg {job} run {run_id} failed\n")
        traceback.print_exception(err, file=handle)
    log.debug("%s failed", job, exc_info=err)
    return path


def job_main(job: str) -> int:
    """Entry point of a jobs/ file: the same job as `custseg <job>`, with the file's arguments."""
    return main([job, *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
