"""The runs table as a flow reads it once: which run's rows of a date are current, and which runs came before.

A flow asks the runs table several questions (the runs of its date, the current build of the features, the
previous training, the latest assignments before its date), each a Delta query if asked of the table. A
Ledger is one read of the few columns that answer them all, asked in Python. A run's own rows and any written
while it runs are not in its ledger: custseg.platform.runs reads the table again where that matters (before
retiring rows), and the next flow of the same process may begin from that read (run_pipeline).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from typing import NamedTuple

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from custseg.contract import outputs
from custseg.platform.locations import join_uri
from custseg.platform.storage import AS_OF_COLUMN, delta_exists, read_delta

SUCCEEDED = "succeeded"


class RunEntry(NamedTuple):
    run_id: str
    job: str
    status: str
    as_of: dt.date
    finished_at: dt.datetime | None
    model_run_id: str | None  # the training run whose model made the assignments the run wrote


class NoFeaturesError(RuntimeError):
    """There are no customer features for the requested as-of date."""


class Ledger:
    def __init__(self, entries: Iterable[RunEntry]) -> None:
        self.entries = tuple(entries)

    def runs_of_date(self, as_of: dt.date) -> set[tuple[str, str]]:
        """(run_id, job) of every run recorded for the date, whatever its status."""
        return {(e.run_id, e.job) for e in self.entries if e.as_of == as_of}

    def current_run_id(self, job: str, as_of: dt.date) -> str | None:
        """The latest succeeded run of a job for a date: whose rows of that date readers use."""
        entry = self._newest(lambda e: e.job == job and e.as_of == as_of)
        return entry and entry.run_id

    def latest_run_id(self, job: str) -> str | None:
        """The newest succeeded run of a job, whatever its date."""
        entry = self._newest(lambda e: e.job == job, by_date=False)
        return entry and entry.run_id

    def previous_training(self, as_of: dt.date) -> RunEntry | None:
        """The latest succeeded train_segments run of the latest date before `as_of`."""
        return self._newest(lambda e: e.job == "train_segments" and e.as_of < as_of)

    def assignments_before(self, as_of: dt.date) -> RunEntry | None:
        """The latest succeeded run that assigned segments, of the latest date before `as_of`."""
        return self._newest(lambda e: e.model_run_id is not None and e.as_of < as_of)

    def _newest(self, wanted: Callable[[RunEntry], bool], by_date: bool = True) -> RunEntry | None:
        """The succeeded entry with the latest date (if by_date), then the latest finish; the smallest run id
        among ties, so that two readers always agree."""
        found = sorted((e for e in self.entries if e.status == SUCCEEDED and wanted(e)), key=lambda e: e.run_id)
        # A stable sort: among equal dates and finishes the smallest run id stays first.
        found.sort(key=lambda e: (e.as_of if by_date else dt.date.min, e.finished_at or dt.datetime.min),
                   reverse=True)
        return found[0] if found else None


def read_ledger(spark: SparkSession, output_path: str) -> Ledger:
    """The runs table's entries under output_path (none before its first run): one small query."""
    path = join_uri(output_path, outputs.RUNS_TABLE)
    if not delta_exists(spark, path):
        return Ledger(())
    columns = ("run_id", "job", "status", AS_OF_COLUMN, "finished_at", "model_run_id")
    return Ledger(RunEntry(*row) for row in read_delta(spark, path).select(*columns).collect())


def features_for_date(spark: SparkSession, output_path: str, as_of: dt.date, ledger: Ledger | None = None
                      ) -> DataFrame:
    """The customer_features rows of one as-of date from its current build_features run; NoFeaturesError if none.
    `ledger`: the runs table as the caller read it (read now if not given)."""
    ledger = ledger or read_ledger(spark, output_path)
    build_run = ledger.current_run_id("build_features", as_of)
    if build_run is None:
        raise NoFeaturesError(f"customer_features has no rows for as_of_date {as_of}: run build_features first")
    return (read_delta(spark, join_uri(output_path, outputs.FEATURES_TABLE))
            .filter((F.col(AS_OF_COLUMN) == F.lit(as_of)) & (F.col("run_id") == build_run)).drop("run_id"))


def assignments_before(spark: SparkSession, output_path: str, as_of: dt.date, ledger: Ledger | None = None
                       ) -> tuple[dt.date, DataFrame] | None:
    """The latest earlier date that has segment assignments, and its current ones (those of the date's newest
    succeeded run that assigned segments, as the BI views read them); None if there is no such date."""
    entry = (ledger or read_ledger(spark, output_path)).assignments_before(as_of)
    if entry is None:
        return None
    return entry.as_of, (read_delta(spark, join_uri(output_path, outputs.SEGMENT_ASSIGNMENTS))
                         .filter((F.col(AS_OF_COLUMN) == F.lit(entry.as_of))
                                 & (F.col("run_id") == entry.model_run_id)))
