"""Run identity and the `runs` table: what ran, with which parameters and counts, and how it ended."""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import platform
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from custseg.config import Config
from custseg.contract.outputs import (
    JOB_OUTPUTS,
    OUTPUT_TABLES,
    RUNS_COMMENTS,
    RUNS_SCHEMA,
    RUNS_TABLE,
    RUNS_TABLE_COMMENT,
)
from custseg.platform.catalog import register_outputs
from custseg.platform.ledger import Ledger, read_ledger
from custseg.platform.locations import join_uri
from custseg.platform.storage import (
    AS_OF_COLUMN,
    InputError,
    in_parallel,
    with_comments,
    write_for_date,
)

log = logging.getLogger(__name__)

STARTED = "started"


def make_run_id(conf: Config, as_of: dt.date) -> str:
    """Same configuration and date give the same run id, so re-runs replace rather than add."""
    digest = hashlib.sha1(json.dumps(conf.raw, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{as_of:%Y%m%d}-{digest}"


def versions(spark: SparkSession) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    def pkg(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "unknown"

    return {"python": platform.python_version(), "spark": spark.version, "delta_spark": pkg("delta-spark"),
            "custseg": pkg("custseg")}


def _ints(arrays: Any, java_array: Any) -> list[int]:
    """A Java int[] in one call to the JVM (java.util.Arrays.toString): Python would fetch it element by element."""
    text = arrays.toString(java_array)  # "[4, 5, 6]"
    return [int(item) for item in text.strip("[]").split(",") if item.strip()]


def last_job_id() -> int:
    """The id of the latest Spark job of this process's SparkContext (-1 before any); ids only grow, so the
    difference of two is the jobs started in between (by every thread of the session)."""
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is None:
        return -1
    return max(_ints(sc._jvm.java.util.Arrays, sc._jsc.statusTracker().getJobIdsForGroup(None)), default=-1)


def stages_and_tasks(after_job: int, last_job: int) -> tuple[int, int]:
    """Stages and tasks run by the Spark jobs with ids in (after_job, last_job]: a stage skipped because its
    shuffle output was already there is not counted, nor a job the status tracker no longer holds
    (spark.ui.retainedJobs)."""
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is None:
        return 0, 0
    tracker = sc._jsc.statusTracker()  # the Java tracker: two calls per stage instead of seven
    arrays, stage_ids = sc._jvm.java.util.Arrays, set()
    for job_id in range(after_job + 1, last_job + 1):
        job = tracker.getJobInfo(job_id)
        stage_ids.update(_ints(arrays, job.stageIds()) if job is not None else ())
    stages = [tracker.getStageInfo(stage_id) for stage_id in stage_ids]
    ran = [stage for stage in stages if stage is not None and stage.submissionTime() > 0]
    return len(ran), sum(stage.numTasks() for stage in ran)


@dataclass
class RunRecord:
    """Collects what a job did; written to the runs table at the end, whether it succeeded or failed."""
    run_id: str
    job: str
    as_of: dt.date
    params: dict[str, Any]
    counts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    spark_jobs: dict[str, int] = field(default_factory=dict)  # Spark jobs started per stage
    spark_stages: dict[str, int] = field(default_factory=dict)  # Spark stages those jobs ran, per stage
    model_run_id: str | None = None  # the training run whose model made the assignments this run wrote
    model: Any = field(default=None, repr=False)  # a training run's fitted PipelineModel, for its report in-session
    report: Any = field(default=None, repr=False)  # and what its report shows, when asked (custseg.report.data)
    outputs: dict[str, str] = field(default_factory=dict)  # table -> run_id of the rows this run wrote
    row: dict[str, Any] = field(default_factory=dict)  # the row it wrote last to the runs table, by column
    # the runs table as it was when this run began, and (run_id, job) of the runs it holds for the date (its own
    # killed attempts too)
    ledger: Ledger = field(default_factory=lambda: Ledger(()), repr=False)
    # and as read again when the run ended, its own outcome row included (None until then): the next flow of the
    # same process may begin from it (run_pipeline) instead of reading the table once more
    ledger_at_end: Ledger | None = field(default=None, repr=False)
    earlier_runs: set[tuple[str, str]] = field(default_factory=set)
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC).replace(tzinfo=None))
    _stage_start: float = field(default_factory=time.perf_counter)
    _stage_start_job: int = field(default_factory=last_job_id)
    _started: Future | None = field(default=None, repr=False)  # the `started` row being committed (start_beside)

    def stage_done(self, stage: str, summary: str = "") -> None:
        """Record the seconds and Spark jobs since the previous stage ended, and say so in one log line."""
        now, job = time.perf_counter(), last_job_id()
        self.timings[stage] = round(now - self._stage_start, 3)
        self.spark_jobs[stage] = job - self._stage_start_job
        self.spark_stages[stage] = stages_and_tasks(self._stage_start_job, job)[0]
        self._stage_start, self._stage_start_job = now, job
        log.info("%s: %s%s in %.1f s, %d Spark jobs, %d stages", self.job, stage.replace("_", " "),
                 f": {summary}" if summary else "", self.timings[stage], self.spark_jobs[stage],
                 self.spark_stages[stage])

    def summary(self) -> str:
        """One closing line: the run, how long, and what it counted."""
        counts = ", ".join(f"{k} {v:,}" for k, v in self.counts.items() if isinstance(v, int))
        return (f"{self.job} {self.run_id} for {self.as_of}: done in {sum(self.timings.values()):.1f} s"
                + (f" ({counts})" if counts else ""))

    @property
    def new_tables(self) -> frozenset[str]:
        """The outputs that hold no row of this date yet, since no run recorded for it before could write one:
        this run appends to them instead of replacing its rows (an append costs a fraction of a replaceWhere)."""
        return frozenset(OUTPUT_TABLES) - tables_written_by({job for _, job in self.earlier_runs})

    def write(self, spark: SparkSession, output_path: str, status: str, error: str | None = None) -> None:
        if status != STARTED:
            self.recorded()  # an outcome replaces the started row, so it must be there first
        finished = None if status == STARTED else dt.datetime.now(dt.UTC).replace(tzinfo=None)
        row = (self.run_id, self.job, status, error, self.started_at, finished,
               json.dumps(self.params, sort_keys=True, default=str), json.dumps(self.counts, sort_keys=True),
               json.dumps(self.metrics, sort_keys=True, default=str), json.dumps(self.timings, sort_keys=True),
               json.dumps(versions(spark), sort_keys=True), self.model_run_id,
               json.dumps(self.spark_jobs, sort_keys=True), json.dumps(self.spark_stages, sort_keys=True),
               self.as_of)
        df = with_comments(spark.createDataFrame([row], RUNS_SCHEMA), RUNS_COMMENTS)
        write_for_date(df, join_uri(output_path, RUNS_TABLE), self.as_of, RUNS_TABLE_COMMENT,
                       also={"job": self.job, "run_id": self.run_id},
                       replace=status != STARTED or (self.run_id, self.job) in self.earlier_runs)
        self.row = dict(zip(RUNS_SCHEMA.fieldNames(), row, strict=True))

    def start(self, spark: SparkSession, output_path: str) -> None:
        """Say the run has started, before it writes any output: until it succeeds, readers keep the date's
        previous run."""
        self.write(spark, output_path, STARTED)

    def start_beside(self, spark: SparkSession, output_path: str) -> None:
        """`start` in a thread, while the flow computes what it will write (a commit is seconds of the driver's
        time, mostly waiting); the flow calls `recorded()` before its first output, and the run's later rows
        wait for it too."""
        pool = ThreadPoolExecutor(max_workers=1)
        self._started = pool.submit(self.start, spark, output_path)
        pool.shutdown(wait=False)

    def recorded(self) -> None:
        """Wait for the `started` row of `start_beside` to be committed; raise its error if it was not."""
        started, self._started = self._started, None
        if started is not None:
            started.result()


def latest_run_id(spark: SparkSession, output_path: str, job: str = "train_segments",
                  ledger: Ledger | None = None) -> str:
    """The newest successful run of a job, for jobs that default to 'the latest'. `ledger`: the runs table as
    the caller read it (read now if not given)."""
    path = join_uri(output_path, RUNS_TABLE)
    ledger = ledger or read_ledger(spark, output_path)
    run_id = ledger.latest_run_id(job)
    if run_id is None:
        raise LookupError(f"no successful {job} run in {path}" if ledger.entries
                          else f"no runs table at {path}: run train_segments first")
    return run_id


@contextlib.contextmanager
def recorded_run(spark: SparkSession, conf: Config, job: str, as_of: dt.date,
                 start: bool = True, ledger: Ledger | None = None) -> Iterator[RunRecord]:
    """Yield a RunRecord: `started` in the runs table first, `succeeded` or `failed` (with the error) at the end.

    A run's outputs become current when its `succeeded` row is committed; then the rows that other runs
    left for the date (an earlier run, or a killed one) are deleted. The runs recorded for the date before this
    one say which tables may hold such rows: the others are appended to (RunRecord.new_tables) and need no
    delete. Two runs of one date at once are not supported. With start=False the flow calls record.start() or
    record.start_beside() itself (build_features after its input checks: input errors, a missing column or an
    unreadable table, are raised before anything is written and leave no trace, as the contract says). `ledger`:
    the runs table as the previous flow of this process left it (its record's ledger_at_end); read now if not
    given.
    """
    if ledger is None:
        ledger = read_ledger(spark, conf.output_path)
    record = RunRecord(run_id=make_run_id(conf, as_of), job=job, as_of=as_of, params=conf.raw, ledger=ledger,
                       earlier_runs=ledger.runs_of_date(as_of))
    if start:
        record.start(spark, conf.output_path)
    try:
        yield record
    except InputError:
        with contextlib.suppress(Exception):
            record.recorded()  # no thread left writing when the error reaches the user
        raise
    except Exception as err:
        with contextlib.suppress(Exception):
            record.write(spark, conf.output_path, "failed", f"{type(err).__name__}: {err}")
        raise
    record.write(spark, conf.output_path, "succeeded")
    # and the runs recorded since this one read the table
    record.ledger_at_end = read_ledger(spark, conf.output_path)
    others = record.earlier_runs | (record.ledger_at_end.runs_of_date(as_of) - {(record.run_id, job)})
    may_hold = tables_written_by({job for _, job in others})
    retire_superseded(spark, conf.output_path, as_of,
                      {table: run for table, run in record.outputs.items() if table in may_hold})
    register_outputs(spark, conf)


def tables_written_by(jobs: set[str]) -> set[str]:
    """The outputs runs of these jobs may have written rows to (every output for a job not known here)."""
    return {table for job in jobs for table in JOB_OUTPUTS.get(job, OUTPUT_TABLES)}


def retire_superseded(spark: SparkSession, output_path: str, as_of: dt.date, kept: dict[str, str]) -> None:
    """Delete the date's rows of other runs from each table a succeeded run wrote: one run per date remains. Every
    run records itself for its date before it writes any output, so recorded_run passes only the tables a run
    recorded for the date may have written: a Delta delete costs seconds even when it finds nothing."""
    from delta.tables import DeltaTable

    def retire(item: tuple[str, str]) -> None:
        table, run_id = item
        condition = (F.col(AS_OF_COLUMN) == F.lit(as_of)) & (F.col("run_id") != F.lit(run_id))
        DeltaTable.forPath(spark, join_uri(output_path, table)).delete(condition)

    in_parallel(retire, list(kept.items()))
