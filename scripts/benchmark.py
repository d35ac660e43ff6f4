#!/usr/bin/env python
"""Time the pipeline against the floors and a pandas + scikit-learn peer at several scales, side by side.

    .venv/bin/python scripts/benchmark.py                       # the demo, then the ladder 1M 5M 20M 50M
    .venv/bin/python scripts/benchmark.py --scales 1M 5M --no-peer --no-demo

First the demo: the README's first command on its 3,000 sample customers, timed in a fresh process (JVM
start included) with the sample already generated. Then, for each scale: generate the inputs once as
Parquet (1 customer per --transactions-per-customer transactions, with loans, payments and 1% dirt),
then run the floor, the contract floor, our jobs and the peer, each in a fresh process, one after the
other. Writes benchmarks/results/<name>.json and .md. See benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks import measure, report, workloads
from custseg.config import load_config
from custseg.platform.driver_jvm import ensure_cache
from custseg.platform.runs import last_job_id

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from custseg.config import Config

ROOT = Path(__file__).resolve().parents[1]

WORKLOADS = ("floor", "contract_floor", "ours", "peer")
KILLED = -9  # a worker's return code when SIGKILL ended it: on Linux, the out-of-memory killer
# The README's first command, as scripts/run_local.sh runs it once the environment is set up.
DEMO_COMMAND = ("jobs/run_pipeline.py", "--conf", "conf/local.yaml", "--generate-sample")
STAGE_LINE = re.compile(r"(build_features|train_segments): ([a-z_ ]+?)(?:: .*)? in ([0-9.]+) s, \d+ Spark jobs")


def parse_scale(text: str) -> int:
    """'5M' -> 5_000_000, '20k' -> 20_000, '1500' -> 1500 transactions."""
    factor = {"k": 1_000, "m": 1_000_000}.get(text[-1].lower(), 1)
    return int(float(text[:-1] if factor > 1 else text) * factor)


def worker(args: argparse.Namespace) -> None:
    """One workload in this process; its result (seconds, peak memory) as JSON on the last stdout line."""
    conf = workloads.bench_conf(Path(args.data), Path(args.out), args.driver_memory, args.overrides)
    result: dict[str, object] = {}
    if args.worker == "peer":
        result["stages"] = workloads.run_peer(conf)
    else:
        from custseg.platform.session import build_session

        started = time.perf_counter()
        spark = build_session(conf.spark)
        result["session_start_seconds"] = round(time.perf_counter() - started, 3)
        result.update(run_in_session(spark, args.worker, conf, Path(args.data), args.customers, args.per_customer))
        spark.stop()
    result["python_peak_mb"] = measure.python_peak_mb()
    print(json.dumps(result))


def run_in_session(spark: SparkSession, workload: str, conf: Config, data_dir: Path, customers: int,
                   per_customer: int) -> dict:
    """One Spark workload (generate, floor, contract_floor, ours) in a running session, and the JVM's memory."""
    if workload == "generate":
        return {"dataset": workloads.ensure_dataset(spark, data_dir, customers, per_customer),
                **measure.jvm_memory(spark)}
    first_job, commits = last_job_id(), measure.delta_commits(conf.output_path)
    if workload == "floor":
        result = {"stages": workloads.run_floor(spark, conf)}
    elif workload == "contract_floor":
        result = {"stages": workloads.run_contract_floor(spark, conf)}
    elif workload == "ours":
        result = {"stages": workloads.run_ours(spark, conf)}
    else:
        raise ValueError(f"not a Spark workload: {workload!r}")
    work = {**measure.spark_work(first_job), "delta_commits": measure.delta_commits(conf.output_path) - commits}
    return {**result, "work": work, **measure.jvm_memory(spark)}


def run_worker(workload: str, data_dir: Path, out_dir: Path, args: argparse.Namespace, customers: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", workload, "--data", str(data_dir), "--out", str(out_dir),
           "--driver-memory", args.driver_memory, "--customers", str(customers),
           "--per-customer", str(args.transactions_per_customer), *[f"--set={o}" for o in args.overrides]]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode == KILLED:
        return {"error": "killed by SIGKILL (exit -9): out of memory", "out_of_memory": True}
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        return {"error": f"exit code {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# How run_scale runs one workload: run_worker (a fresh process each) unless a caller passes another.
Runner = Callable[[str, Path, Path, argparse.Namespace, int], dict]


def run_scale(transactions: int, args: argparse.Namespace, run: Runner = run_worker) -> dict:
    customers = max(transactions // args.transactions_per_customer, 1)
    label = report.scale_label(transactions)
    data_dir, out_dir = Path(args.data_dir) / label, Path(args.work_dir) / label
    result = {"transactions_target": transactions, "customers": customers, "label": label}
    # Every benchmark measures a date's first run: an earlier benchmark's outputs would make ours a re-run, which
    # also retires the earlier run's rows.
    shutil.rmtree(out_dir, ignore_errors=True)
    result["generate"] = run("generate", data_dir, out_dir, args, customers)
    for workload in WORKLOADS:
        if workload == "peer" and (args.no_peer or transactions > parse_scale(args.peer_max)):
            result[workload] = {"skipped": f"peer limited to {args.peer_max} transactions"}
            continue
        print(f"[{label}] {workload} ...", file=sys.stderr, flush=True)
        result[workload] = run(workload, data_dir, out_dir, args, customers)
        print(f"[{label}] {workload}: {result[workload].get('stages', result[workload])}", file=sys.stderr, flush=True)
    return result


def stage_seconds(log_text: str) -> dict[str, float]:
    """{"build_features.ingest_validate": seconds, ...} from the stage lines the jobs log (RunRecord.stage_done)."""
    return {f"{job}.{stage.replace(' ', '_')}": float(t) for job, stage, t in STAGE_LINE.findall(log_text)}


def demo_sample_present() -> bool:
    sample = load_config(ROOT / DEMO_COMMAND[2]).sample_data
    return sample is not None and all((ROOT / sample.path / table).is_dir() for table in workloads.INPUTS)


def run_demo(work_dir: Path, rounds: int) -> dict:
    """DEMO_COMMAND's wall time per round, each a fresh process writing to a fresh output folder, and its stages.

    Timed as a user's second run is: the sample data already there (a first, untimed run generates it
    when missing). A round that fails is recorded as the demo's error.
    """
    out = work_dir / "demo"
    shutil.rmtree(out, ignore_errors=True)

    def once(folder: str) -> dict:
        cmd = [sys.executable, *DEMO_COMMAND, f"--set=output.path={out / folder}"]
        started = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        seconds = round(time.perf_counter() - started, 1)
        if proc.returncode != 0:
            return {"error": f"exit code {proc.returncode}: {proc.stderr.strip().splitlines()[-1:]}"}
        return {"seconds": seconds, "stages": stage_seconds(proc.stderr),
                "delta_commits": measure.delta_commits(str(out / folder))}

    result: dict[str, object] = {"command": " ".join(DEMO_COMMAND), "rounds": []}
    if not demo_sample_present():
        untimed = once("untimed")  # generates the sample; warms nothing a fresh process would keep
        if "error" in untimed:
            return {**result, "error": untimed["error"]}
    for i in range(rounds):
        print(f"[demo] round {i + 1} ...", file=sys.stderr, flush=True)
        timed = once(f"round-{i + 1}")
        if "error" in timed:
            return {**result, "error": timed["error"]}
        result["rounds"].append(timed)
    return result


def is_failure(workload: str, result: dict) -> bool:
    """A workload that did not finish fails the benchmark, except the peer running out of memory: that
    is a measurement (the single-machine peer does not fit), recorded in the results."""
    return "error" in result and not (workload == "peer" and result.get("out_of_memory"))


def write_results(results: dict, out: Path, name: str) -> None:
    results["summary"] = report.summary(results["scales"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2))
    (out / f"{name}.md").write_text(report.markdown(results))


def main(argv: list[str] | None = None, run: Runner = run_worker) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--scales", nargs="+", default=["1M", "5M", "20M", "50M"],
                        help="transaction counts, e.g. 1M 5M 20M 50M (default)")
    parser.add_argument("--transactions-per-customer", type=int, default=50)
    parser.add_argument("--driver-memory", default="8g", help="Spark driver memory, the same at every scale")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="configuration override for all workloads, as in the jobs (repeatable)")
    parser.add_argument("--no-peer", action="store_true", help="skip the pandas + scikit-learn peer")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo (the README's first command)")
    parser.add_argument("--demo-rounds", type=int, default=2, help="timed runs of the demo")
    parser.add_argument("--peer-max", default="50M", help="largest scale the peer runs at (it holds all in memory)")
    parser.add_argument("--data-dir", default=str(ROOT / "benchmarks" / "data"), help="generated inputs (reused)")
    parser.add_argument("--work-dir", default=str(ROOT / "benchmarks" / "work"), help="outputs of the runs")
    parser.add_argument("--results-dir", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--name", default=time.strftime("benchmark-%Y%m%d-%H%M%S"), help="results file name")
    # Internal: run one workload in this process.
    parser.add_argument("--worker", choices=("generate", *WORKLOADS), help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--customers", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--per-customer", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    # Part of the environment, as the Delta jars are: the driver JVM's cache where a JDK can use one.
    jvm_cache = load_config(ROOT / DEMO_COMMAND[2], args.overrides).spark.jvm_cache
    if jvm_cache:
        ensure_cache(str(ROOT / DEMO_COMMAND[2]), cwd=str(ROOT))
    results = {"machine": {**measure.machine(jvm_cache), "spark": report.spark_version()}, "settings": {
        "driver_memory": args.driver_memory, "transactions_per_customer": args.transactions_per_customer,
        "spark_master": "local[2]", "conf": "conf/local.yaml with Parquet inputs", "overrides": args.overrides},
        "scales": []}
    if not args.no_demo:
        results["demo"] = run_demo(Path(args.work_dir), args.demo_rounds)
        write_results(results, Path(args.results_dir), args.name)
    for scale in args.scales:
        results["scales"].append(run_scale(parse_scale(scale), args, run))
        write_results(results, Path(args.results_dir), args.name)  # after each scale: a long ladder keeps its part
    print(report.markdown(results))
    failed = [s["label"] for s in results["scales"] for w in ("generate", *WORKLOADS) if is_failure(w, s.get(w, {}))]
    return 1 if failed or "error" in results.get("demo", {}) else 0


if __name__ == "__main__":
    sys.exit(main())
