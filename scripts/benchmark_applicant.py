"""Latency and throughput of the Spark-free applicant scorer (custseg/applicant.py).

    .venv/bin/python scripts/benchmark_applicant.py --model out/models/<run_id>-applicant.json

Applicants are drawn around the document's own centroids (original units, seeded), so no Spark and no data
are needed. Single-applicant latency: median and p99 of `calls` one-at-a-time scores; batch: applicants per
second over one batch of `batch` records. The machine is printed with the figures.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

from custseg.applicant import ApplicantScorer


def applicants(scorer: ApplicantScorer, n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    centres = np.array([s["centroid_original"] for s in scorer.segments])
    picked = centres[rng.integers(len(centres), size=n)]
    values = picked * rng.normal(1.0, 0.2, size=picked.shape)
    records = [dict(zip(scorer.features, map(float, row), strict=True)) for row in values]
    for record in records[::10]:  # one in ten with a missing value, imputed as in training
        record[scorer.features[0]] = None
    return records


def measure(scorer: ApplicantScorer, calls: int, batch: int, seed: int) -> dict:
    records = applicants(scorer, max(calls, batch), seed)
    for record in records[:200]:  # warm-up
        scorer.score(record)
    latencies = []
    for record in records[:calls]:
        started = time.perf_counter()
        scorer.score(record)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    started = time.perf_counter()
    scorer.score_batch(records[:batch])
    batch_seconds = time.perf_counter() - started
    return {
        "calls": calls, "median_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(0.99 * (len(latencies) - 1))] * 1e3,
        "batch": batch, "batch_seconds": batch_seconds, "batch_per_second": batch / batch_seconds,
        "features": len(scorer.features), "segments": len(scorer.segments),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "platform": platform.platform()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="an exported applicant model document")
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(json.dumps(measure(ApplicantScorer.load(args.model), args.calls, args.batch, args.seed), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
