"""The runs table read once per flow (custseg.platform.ledger): which run is current, which came before, asked
of hand-made entries; the flows' end-to-end tests read it from real runs tables."""
from __future__ import annotations

import datetime as dt

from custseg.platform.ledger import Ledger, RunEntry

JAN, FEB, MAR = dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31)


def at(hour: int) -> dt.datetime:
    return dt.datetime(2026, 4, 1, hour)


def entry(run_id: str, job: str, as_of: dt.date, finished: int | None, status: str = "succeeded",
          model_run_id: str | None = None) -> RunEntry:
    return RunEntry(run_id, job, status, as_of, None if finished is None else at(finished), model_run_id)


LEDGER = Ledger([
    entry("b-jan", "build_features", JAN, 1),
    entry("t-jan", "train_segments", JAN, 2, model_run_id="t-jan"),
    entry("b-feb", "build_features", FEB, 3),
    entry("b-feb-2", "build_features", FEB, 5),                      # a rebuild of February: current
    entry("b-feb-3", "build_features", FEB, 9, status="failed"),     # newer, but failed
    entry("b-feb-4", "build_features", FEB, None, status="started"),  # killed
    entry("s-feb", "score_customers", FEB, 6, model_run_id="t-jan"),  # February scored with January's model
    entry("t-feb-b", "train_segments", FEB, 7, model_run_id="t-feb-b"),
    entry("t-feb-a", "train_segments", FEB, 7, model_run_id="t-feb-a"),  # same finish: the smaller id wins
])


def test_the_current_run_of_a_date_is_its_latest_succeeded_one():
    assert LEDGER.current_run_id("build_features", FEB) == "b-feb-2"
    assert LEDGER.current_run_id("train_segments", FEB) == "t-feb-a"
    assert LEDGER.current_run_id("build_features", MAR) is None
    assert LEDGER.current_run_id("score_customers", JAN) is None


def test_the_runs_of_a_date_are_every_run_recorded_for_it_whatever_its_status():
    assert LEDGER.runs_of_date(FEB) == {("b-feb", "build_features"), ("b-feb-2", "build_features"),
                                        ("b-feb-3", "build_features"), ("b-feb-4", "build_features"),
                                        ("s-feb", "score_customers"), ("t-feb-b", "train_segments"),
                                        ("t-feb-a", "train_segments")}
    assert LEDGER.runs_of_date(MAR) == set()


def test_the_previous_training_is_the_latest_of_the_latest_earlier_date():
    assert LEDGER.previous_training(MAR).run_id == "t-feb-a"
    assert LEDGER.previous_training(MAR).as_of == FEB
    assert LEDGER.previous_training(FEB).run_id == "t-jan"  # a February retrain continues January
    assert LEDGER.previous_training(JAN) is None


def test_the_assignments_before_a_date_are_those_of_its_latest_earlier_date_with_any():
    # March follows February's newest run that assigned segments: a training, newer than the scoring
    assert LEDGER.assignments_before(MAR)[:2] == ("t-feb-a", "train_segments")
    only_scored = Ledger([e for e in LEDGER.entries if e.job != "train_segments" or e.as_of == JAN])
    found = only_scored.assignments_before(MAR)
    assert (found.run_id, found.as_of, found.model_run_id) == ("s-feb", FEB, "t-jan")
    assert LEDGER.assignments_before(JAN) is None


def test_the_latest_run_of_a_job_is_the_newest_succeeded_whatever_its_date():
    late_january = Ledger([*LEDGER.entries, entry("t-jan-again", "train_segments", JAN, 8)])
    assert late_january.latest_run_id("train_segments") == "t-jan-again"
    assert LEDGER.latest_run_id("train_segments") == "t-feb-a"
    assert Ledger(()).latest_run_id("train_segments") is None
