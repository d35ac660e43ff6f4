"""Small Delta outputs written one at a time against side by side (custseg.platform.storage.write_outputs).

    .venv/bin/python scripts/benchmark_writes.py --out /tmp/bench_writes [--rounds 4]
    .venv/bin/python scripts/benchmark_writes.py --train-conf conf/test.yaml [--rounds 4]
    .venv/bin/python scripts/benchmark_writes.py --fresh-conf conf/test.yaml --out /tmp/fresh [--rounds 3]

Writes every segment output (300 rows each: the size of a training run's small tables) for a new date, with
1, 2 and 3 writes at once, alternated within each round in one Spark session (local[2]); prints the median
seconds per setting over the rounds after the first (which creates the tables) and the machine.
With --train-conf: build_features once for the configuration's date, then train_segments 2 x rounds times on
those features, alternating one and two writes at once; prints every run's seconds.
With --fresh-conf: build_features and train_segments into a new output folder each time (a date's first runs),
alternating the current writes (append where no earlier run of the date could have written, retire only where
one could have) with every write a replaceWhere and every table retired (the behaviour before, emulated by
counting every output as possibly written); prints every pair's seconds.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import time

from custseg.config import SparkConf
from custseg.contract import outputs
from custseg.platform import storage
from custseg.platform.session import build_session

SETTINGS = (1, 2, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="folder for the tables (one subfolder per setting)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--train-conf", help="time whole train_segments runs of this configuration instead")
    parser.add_argument("--fresh-conf", help="time a date's first build_features and train_segments runs instead")
    args = parser.parse_args()
    if args.train_conf:
        train_runs(args.train_conf, args.rounds)
        return
    if args.fresh_conf and args.out:
        fresh_runs(args.fresh_conf, args.out, args.rounds)
        return
    if not args.out:
        parser.error("--out is required without --train-conf")
    spark = build_session(SparkConf(master="local[2]", app_name="benchmark-writes", shuffle_partitions=2,
                                    driver_memory="3g", use_delta_pip=True,
                                    extra={"spark.ui.enabled": "false",
                                           "spark.databricks.delta.snapshotPartitions": "2"}))
    tables = [t for t in outputs.SEGMENT_TABLES if t != outputs.SEGMENT_ASSIGNMENTS]
    df = spark.range(300).selectExpr("cast(id as int) as segment_id", "rand(1) as value")
    seconds: dict[int, list[float]] = {s: [] for s in SETTINGS}
    for round_ in range(args.rounds):
        for setting in SETTINGS:
            storage.PARALLEL_ACTIONS = setting
            started = time.perf_counter()
            storage.write_outputs(dict.fromkeys(tables, df), f"{args.out}/parallel{setting}", f"r{round_}",
                                  dt.date(2026, 1, 1) + dt.timedelta(days=round_))
            seconds[setting].append(time.perf_counter() - started)
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Spark {spark.version}")
    for setting, times in seconds.items():
        print(f"{len(tables)} tables, {setting} at once: median {statistics.median(times[1:]):.2f} s "
              f"(rounds: {', '.join(f'{t:.1f}' for t in times)})")
    spark.stop()


def train_runs(conf_path: str, rounds: int) -> None:
    from custseg.config import load_config
    from custseg.flows.build_features import run_build_features
    from custseg.flows.train_segments import run_train_segments

    conf = load_config(conf_path)
    spark = build_session(conf.spark)
    run_build_features(spark, conf)
    for round_ in range(rounds):
        for setting in (1, 2):
            storage.PARALLEL_ACTIONS = setting
            started = time.perf_counter()
            record = run_train_segments(spark, conf)
            print(f"round {round_ + 1}, {setting} at once: train_segments {time.perf_counter() - started:.1f} s "
                  f"(profiles_and_writes {record.timings['profiles_and_writes']:.1f} s)", flush=True)
    spark.stop()


def fresh_runs(conf_path: str, out: str, rounds: int) -> None:
    from dataclasses import replace

    from custseg.config import load_config
    from custseg.flows.build_features import run_build_features
    from custseg.flows.train_segments import run_train_segments
    from custseg.platform import runs

    conf = load_config(conf_path)
    spark = build_session(conf.spark)
    current = runs.tables_written_by
    every_table = lambda jobs: set(outputs.OUTPUT_TABLES)  # noqa: E731 - the behaviour before, for comparison
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"Spark {spark.version}")
    for round_ in range(rounds):
        for name, rule in (("replace every write", every_table), ("append where new", current)):
            runs.tables_written_by = rule
            started = time.perf_counter()
            run_conf = replace(conf, output_path=f"{out}/{round_}-{name.split()[0]}")
            build, train = run_build_features(spark, run_conf), run_train_segments(spark, run_conf)
            print(f"round {round_ + 1}, {name}: build_features + train_segments {time.perf_counter() - started:.1f} s "
                  f"(stages {sum(build.timings.values()):.1f} + {sum(train.timings.values()):.1f} s)", flush=True)
    runs.tables_written_by = current
    spark.stop()


if __name__ == "__main__":
    main()
