"""spark-submit entry point of the segment-report job (the same as `custseg segment-report`; --help lists its arguments)."""
import sys

from custseg.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("segment-report"))
