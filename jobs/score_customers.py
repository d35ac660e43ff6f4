"""spark-submit entry point: `custseg score-customers` (--help lists its arguments)."""
import sys

from custseg.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("score-customers"))
