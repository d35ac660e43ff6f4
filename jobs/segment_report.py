"""spark-submit entry point: write the segment report (figures and one self-contained HTML page) of a run."""
from __future__ import annotations

import logging
import sys

from custseg.cli import job_parser, run_job
from custseg.flows.segment_report import write_report

log = logging.getLogger("segment_report")


def run(spark, conf, args) -> str:
    path = write_report(spark, conf, args.run_id)
    log.info("report: %s", path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Write <output>/reports/<run_id>/report.html and its figures from a training run's "
                        "Delta outputs and saved model.")
    parser.add_argument("--run-id", dest="run_id",
                        help="training run to report on (default: the latest successful train_segments run)")
    return run_job(parser, run, argv)


if __name__ == "__main__":
    sys.exit(main())
