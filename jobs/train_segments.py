"""spark-submit entry point of the train-segments job (the same as `custseg train-segments`; --help lists its arguments)."""
import sys

from custseg.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("train-segments"))
