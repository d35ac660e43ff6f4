"""The golden run: one small flow that the end-to-end, BI, report, peer and cluster tests all read.

Generated inputs with planted personas and dirt (Delta, seeded) -> build_features -> train_segments for
AS_OF -> the BI views -> build_features and score_customers for LATER -> the segment report, once per test
session, in the session's Spark (tests/conftest.py makes it the `golden` fixture). Tests that need another
configuration or input of their own (a missing column, an empty table, CSV, a failing run) keep a small setup
and reuse GoldenRun.data_dir where they can.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from custseg_sample.datagen import generate, write_dataset
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from custseg.bi import views as bi
from custseg.config import Config
from custseg.contract import outputs
from custseg.flows.build_features import run_build_features
from custseg.flows.score_customers import run_score_customers
from custseg.flows.train_segments import run_train_segments
from custseg.platform.runs import RunRecord
from custseg.platform.storage import read_delta
from helpers import make_conf

AS_OF = dt.date(2026, 1, 1)   # trained on
LATER = dt.date(2026, 2, 1)   # scored with AS_OF's model
CUSTOMERS = 300
TRANSACTIONS_PER_CUSTOMER = 20
SEED = 11
DIRT_RATE = 0.03
DATABASE = "custseg_golden"   # output.database: every output is registered there too


@dataclass(frozen=True)
class GoldenRun:
    data_dir: Path                 # <table>/ for the four inputs and truth/ (customer_id, persona), Delta
    conf: Config                   # the run of AS_OF
    later_conf: Config             # the same outputs, as_of_date LATER
    features: RunRecord            # build_features of AS_OF
    train: RunRecord               # train_segments of AS_OF
    later_features: RunRecord      # build_features of LATER
    score: RunRecord               # score_customers of LATER with the train run's model
    report_path: Path              # the report of the latest training run (no run id given, as the job)
    views: list[str]               # the BI views, created after training and before LATER was scored
    view_dates_before_scoring: int  # distinct dates segment_history showed then
    assignments_before_scoring: list[tuple]  # AS_OF's segment_assignments rows before LATER was scored
    assignments_after_scoring: list[tuple]   # and right after

    @property
    def out_dir(self) -> Path:
        return Path(self.conf.output_path)

    def table(self, spark: SparkSession, name: str, as_of: dt.date | None = None) -> DataFrame:
        """An output table read anew (a Delta DataFrame keeps the version it was read at); one date's rows if given."""
        df = read_delta(spark, self.conf.table_path(name))
        return df if as_of is None else df.filter(F.col("as_of_date") == F.lit(as_of))

    def input(self, spark: SparkSession, name: str) -> DataFrame:
        """A generated input table (or truth) as written."""
        return spark.read.format("delta").load(str(self.data_dir / name))


def assignment_rows(spark: SparkSession, conf: Config, as_of: dt.date) -> list[tuple]:
    df = read_delta(spark, conf.table_path(outputs.SEGMENT_ASSIGNMENTS)).filter(F.col("as_of_date") == F.lit(as_of))
    return sorted(map(tuple, df.collect()))


def write_report(spark: SparkSession, conf: Config) -> Path:
    """The report flow without a run id, so it reports on the latest training run."""
    from custseg.flows.segment_report import write_report as write

    return Path(write(spark, conf))


def write_inputs(spark: SparkSession, data_dir: Path) -> Path:
    """The generated inputs and truth, as Delta tables under data_dir (a fixture of their own: the cluster
    tests submit their run on them while the golden run goes on in this session)."""
    data = generate(spark, CUSTOMERS, TRANSACTIONS_PER_CUSTOMER, AS_OF, seed=SEED, dirt_rate=DIRT_RATE)
    write_dataset(data, str(data_dir), "delta")
    return data_dir


def run_golden(spark: SparkSession, data_dir: Path, out_dir: Path) -> GoldenRun:
    conf = make_conf(data_dir, out_dir, [f"as_of_date={AS_OF}", f"output.database={DATABASE}"])
    later_conf = make_conf(data_dir, out_dir, [f"as_of_date={LATER}", f"output.database={DATABASE}"])

    features = run_build_features(spark, conf)
    # as run_pipeline does: from the runs table as the build left it
    train = run_train_segments(spark, conf, hold_report=True, ledger=features.ledger_at_end)
    views = bi.create_views(spark, str(out_dir))
    view_dates = spark.table("segment_history").select("as_of_date").distinct().count()
    before_scoring = assignment_rows(spark, conf, AS_OF)

    later_features = run_build_features(spark, later_conf)
    score = run_score_customers(spark, later_conf, train.run_id)
    after_scoring = assignment_rows(spark, conf, AS_OF)
    report_path = write_report(spark, conf)
    return GoldenRun(data_dir=data_dir, conf=conf, later_conf=later_conf, features=features, train=train,
                     later_features=later_features, score=score, report_path=report_path, views=views,
                     view_dates_before_scoring=view_dates, assignments_before_scoring=before_scoring,
                     assignments_after_scoring=after_scoring)
