"""Shared command-line handling for the jobs: arguments, logging, session, exit code."""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import Any

from custseg.config import Config, load_config

log = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def job_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--conf", required=True, help="path to the YAML configuration (see conf/)")
    parser.add_argument("--as-of", dest="as_of", help="as-of date YYYY-MM-DD (overrides as_of_date in the conf)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a configuration value, e.g. --set model.k=5 (repeatable)")
    parser.add_argument("--log-level", default="INFO", help="Python logging level (default INFO)")
    return parser


def run_job(parser: argparse.ArgumentParser, run: Callable[[Any, Config, argparse.Namespace], Any],
            argv: list[str] | None = None) -> int:
    """Parse arguments, load the conf, build the session, run, stop; 0 on success, 1 on failure, 2 on a bad conf.

    The conf is validated before pyspark is imported here, so a typo fails at once, in one line.
    """
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format=LOG_FORMAT)
    try:
        conf = load_config(args.conf, args.overrides, args.as_of)
    except ValueError as err:
        # One line on stderr, whatever --log-level says, like argparse's own usage errors.
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    from custseg.platform.session import build_session

    spark = build_session(conf.spark)
    try:
        run(spark, conf, args)
        return 0
    except Exception as err:  # noqa: BLE001 - the job reports and exits non-zero
        log.error("%s failed: %s", parser.prog, err, exc_info=log.isEnabledFor(logging.DEBUG))
        return 1
    finally:
        spark.stop()
