"""spark-submit entry point: score another as-of date's customers with a saved segmentation model."""
from __future__ import annotations

import sys

from custseg.cli import job_parser, run_job
from custseg.flows.score_customers import run_score_customers


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Assign the customers of an as-of date to the segments of a saved model "
                        "(customer_features must exist for that date).")
    parser.add_argument("--run-id", dest="run_id", help="training run whose model to use (default: the latest)")
    return run_job(parser, lambda spark, conf, args: run_score_customers(spark, conf, args.run_id), argv)


if __name__ == "__main__":
    sys.exit(main())
