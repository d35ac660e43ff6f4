"""The whole flow in one session: (sample data) -> features -> segments -> report."""
from __future__ import annotations

import logging
import sys

from custseg.cli import job_parser, run_job
from custseg.flows.build_features import run_build_features
from custseg.flows.train_segments import run_train_segments

log = logging.getLogger("run_pipeline")


def run(spark, conf, args) -> None:
    if args.generate_sample:
        from custseg_sample.sample_data import ensure_sample_data

        ensure_sample_data(spark, conf)
    run_build_features(spark, conf)
    record = run_train_segments(spark, conf)
    log.info("run %s: K=%s (%s)", record.run_id, record.metrics["chosen_k"], record.metrics["reason"])
    try:
        from custseg.flows.segment_report import write_report
    except ImportError:
        return
    path = write_report(spark, conf, record.run_id)
    log.info("report: %s", path)


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Run build_features, train_segments and segment_report for one as-of date.")
    parser.add_argument("--generate-sample", action="store_true",
                        help="generate the built-in sample data (conf sample_data) first if it is missing")
    return run_job(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
