"""spark-submit entry point of the run-pipeline job (the same as `custseg run-pipeline`; --help lists its arguments)."""
import sys

from custseg.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("run-pipeline"))
