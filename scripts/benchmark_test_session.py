"""The golden test run (tests/golden.py) with Spark's defaults and with the small-input settings, side by side.

    .venv/bin/python scripts/benchmark_test_session.py [--rounds 2] [--together]

Each run is a process of its own with a new JVM: the test session's settings (tests/helpers.py session_conf,
with or without custseg.platform.session.SMALL_INPUT), the golden run's inputs written, then the golden run
(build_features, train_segments, the BI views, the next date built and scored, the report). The settings
alternate within each round, or with --together run at the same time (the machine's speed drifts by the hour;
two runs at once share whatever it is). Prints each run's seconds, its JVM's CPU seconds, the ratio and the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.measure import machine

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = ("spark_defaults", "small_input")


def child(setting: str, work: str) -> None:
    """One golden run in this process; prints its seconds as JSON."""
    from custseg.platform.session import build_session
    from golden import run_golden, write_inputs  # tests/ is on this process's PYTHONPATH
    from helpers import session_conf

    started = time.perf_counter()
    spark = build_session(session_conf(f"{work}/warehouse", small_input=setting == "small_input"))
    session_up = time.perf_counter()
    data_dir = write_inputs(spark, Path(work) / "inputs")
    inputs_written = time.perf_counter()
    run_golden(spark, data_dir, Path(work) / "out")
    done = time.perf_counter()
    jvm_cpu = jvm_cpu_seconds(spark._jvm.java.lang.ProcessHandle.current().pid())
    spark.stop()
    print(json.dumps({"session": round(session_up - started, 1), "inputs": round(inputs_written - session_up, 1),
                      "golden": round(done - inputs_written, 1), "jvm_cpu": round(jvm_cpu, 1)}))


def jvm_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(setting: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), str(ROOT)]),
           "MLFLOW_ALLOW_FILE_STORE": "true"}
    with tempfile.TemporaryDirectory() as work:
        result = subprocess.run([sys.executable, __file__, "--child", setting, "--work", work], env=env, cwd=ROOT,
                                capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{setting} run exited {result.returncode}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--together", action="store_true", help="run both settings of a round at the same time")
    parser.add_argument("--child", choices=SETTINGS, help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.work)
        return
    print("| round | setting | session s | inputs s | golden run s | JVM CPU s |")
    print("|---|---|---|---|---|---|")
    for round_ in range(1, args.rounds + 1):
        if args.together:
            with ThreadPoolExecutor(max_workers=len(SETTINGS)) as pool:
                results = dict(zip(SETTINGS, pool.map(run_child, SETTINGS), strict=True))
        else:
            results = {setting: run_child(setting) for setting in SETTINGS}
        for setting, seconds in results.items():
            print(f"| {round_} | {setting} | {seconds['session']} | {seconds['inputs']} | {seconds['golden']} "
                  f"| {seconds['jvm_cpu']} |", flush=True)
        ratio = results["small_input"]["golden"] / results["spark_defaults"]["golden"]
        print(f"round {round_}: small_input / spark_defaults = {ratio:.2f}", flush=True)
    print(f"machine: {json.dumps(machine())}")


if __name__ == "__main__":
    main()
