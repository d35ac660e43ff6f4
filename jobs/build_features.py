"""spark-submit entry point: validate the inputs and write customer_features for an as-of date."""
from __future__ import annotations

import sys

from custseg.cli import job_parser, run_job
from custseg.flows.build_features import run_build_features


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Validate input tables and write per-customer features (customer_features, "
                        "rejected_records) for one as-of date.")
    return run_job(parser, lambda spark, conf, _args: run_build_features(spark, conf), argv)


if __name__ == "__main__":
    sys.exit(main())
