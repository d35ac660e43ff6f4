"""spark-submit entry point: choose K, fit the segmentation and write the segment tables."""
from __future__ import annotations

import sys

from custseg.cli import job_parser, run_job
from custseg.flows.train_segments import run_train_segments


def main(argv: list[str] | None = None) -> int:
    parser = job_parser("Choose K, fit K-means on customer_features of one as-of date and write "
                        "segment_assignments, segment_profiles, segment_feature_stats, segment_centroids, "
                        "k_selection and the fitted PipelineModel.")
    return run_job(parser, lambda spark, conf, _args: run_train_segments(spark, conf), argv)


if __name__ == "__main__":
    sys.exit(main())
