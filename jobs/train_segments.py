"""spark-submit entry point: `custseg train-segments` (--help lists its arguments)."""
import sys

from custseg.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("train-segments"))
