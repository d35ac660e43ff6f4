"""spark-submit entry point of the build-features job (the same as `custseg build-features`; --help lists its arguments)."""
import sys

from custseg.cli import job_main

if __name__ == "__main__":
    sys.exit(job_main("build-features"))
