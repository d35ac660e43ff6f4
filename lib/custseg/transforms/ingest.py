"""Read and validate every input table of a run, each once the tables it references are, and reconcile the counts."""
from __future__ import annotations

import datetime as dt
import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import reduce

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from custseg.config import Config
from custseg.contract.inputs import CONTRACTS, PARENT_TABLES
from custseg.platform.session import Cache
from custseg.platform.storage import read_input
from custseg.transforms import validation as V

log = logging.getLogger(__name__)

# A key set up to this many rows is broadcast to the join (about 100 MB of string keys).
BROADCAST_MAX_ROWS = 2_000_000


class ReconciliationError(RuntimeError):
    """Rows read differ from rows accepted plus rows rejected: a row would be lost."""


class RejectedShareError(RuntimeError):
    """More of a table's rows were rejected than its max_rejected_share: its mapping or formats are wrong."""


@dataclass
class IngestResult:
    """Accepted rows per table and the rejected rows of all tables, all lazy. Writing `rejected` runs the
    observations that count every table's rows per reason; `reconciled_counts` then checks them.

    `unreferenced` holds each table's rows that pass every rule but the reference checks: for an
    aggregation joined to the parent's accepted keys afterwards, that join checks the references on the
    aggregated rows instead of probing every source row.
    """
    accepted: dict[str, DataFrame]
    unreferenced: dict[str, DataFrame]
    rejected: DataFrame
    read_rows: dict[str, int]
    observations: dict[str, Observation]

    def reconciled_counts(self) -> dict[str, dict[str, int]]:
        """table -> {"read", "accepted", "rejected", "rejected_<reason>": n}; call after writing `rejected`."""
        return {name: reconcile(name, self.read_rows[name], V.reason_counts(observation.get),
                                merged=observation.get["merged"])
                for name, observation in self.observations.items()}


def check_inputs(spark: SparkSession, conf: Config) -> dict[str, DataFrame]:
    """Open every configured input and check its schema before anything is computed or written."""
    raw = {}
    for name in CONTRACTS:  # reference order
        if name in conf.inputs:
            raw[name] = read_input(spark, conf.inputs[name])
            if conf.inputs[name].transaction_id_from_row:
                raw[name] = V.with_transaction_id_from_row(raw[name], name)
            V.check_schema(raw[name], CONTRACTS[name], conf.inputs[name])
    return raw


def ingest(spark: SparkSession, conf: Config, raw: dict[str, DataFrame], run_id: str, as_of: dt.date,
           persist: Cache) -> IngestResult:
    """Validate all inputs (`raw`: check_inputs' tables): accepted rows per table and every rejected row with its
    reason.

    A large table is never cached or shuffled whole here: each later read (the rejected rows, the
    features) scans it again, which costs less than caching it (benchmarks/README.md). What is cached
    is small: the key hashes held twice, the rows holding them, and each parent table's accepted keys for
    the reference checks. The counts per reason are observed while the rejected rows are written, in the
    same pass. `persist` caches those small sets; its caller releases them
    (custseg.platform.session.cache_scope). In a run on inputs under spark.local_checkpoint_mb
    (`persist.checkpoints`) each table is checked, ranked by key and held whole in one job, so that no later
    query plans its reading again.

    Each table is checked as soon as the parents it references are, beside the tables that do not wait on it
    (a thread each): a small table's short jobs then fill the gaps between a large table's. The result does
    not depend on that order: every table's frames are put together in reference order.
    """
    with ThreadPoolExecutor(max_workers=max(len(raw), 1), thread_name_prefix="ingest") as pool:
        futures: dict[str, Future[CheckedTable]] = {}
        for name, raw_df in raw.items():  # reference order: a parent is submitted before the tables naming it
            parents = {ref.parent: futures[ref.parent] for ref in CONTRACTS[name].references if ref.parent in futures}
            futures[name] = pool.submit(check_table, conf, name, raw_df, parents, run_id, as_of, persist)
        checked = {name: future.result() for name, future in futures.items()}
    return IngestResult(accepted={name: c.accepted for name, c in checked.items()},
                        unreferenced={name: c.unreferenced for name, c in checked.items()},
                        rejected=reduce(DataFrame.unionByName, [c.rejected for c in checked.values()]),
                        read_rows={name: c.read_rows for name, c in checked.items()},
                        observations={name: c.observation for name, c in checked.items()})


@dataclass
class CheckedTable:
    """One table's part of an IngestResult, and its accepted keys (with whether to broadcast them) for the tables
    that reference it."""
    accepted: DataFrame
    unreferenced: DataFrame
    rejected: DataFrame
    read_rows: int
    observation: Observation
    keys: tuple[DataFrame, bool] | None


def check_table(conf: Config, name: str, raw_df: DataFrame, parents: dict[str, Future[CheckedTable]], run_id: str,
                as_of: dt.date, persist: Cache) -> CheckedTable:
    """Validate one table, its references against the accepted keys of `parents` (waited for when needed)."""
    contract = CONTRACTS[name]

    def cached(df: DataFrame) -> tuple[DataFrame, bool]:
        df, rows = persist.counted(df)
        return df, rows <= BROADCAST_MAX_ROWS

    checked_df = V.with_row_rules(V.conform(raw_df, contract, conf.inputs[name], conf.pii_columns), contract)

    def one_row_per_key(df: DataFrame) -> DataFrame:  # after the rows read are counted
        return V.with_one_row_per_customer(df, as_of) if conf.inputs[name].rows_per_customer == "many" else df
    if persist.checkpoints:
        # Small: the table checked and ranked by key in one job, held whole; its rows read are counted there.
        read = Observation(f"read_{name}")
        checked_df = persist.cut_lineage(V.with_duplicates_ranked(
            one_row_per_key(checked_df.observe(read, F.count(F.lit(1)).alias("rows"))), contract))
        read_rows = read.get["rows"]
    else:  # each later read scans the table again; only the few rows sharing a key are held
        read_rows = raw_df.count()
        checked_df = one_row_per_key(checked_df)
        dup_keys_df, small = cached(V.duplicate_keys(checked_df, contract))
        unique_df, shared_df = V.with_duplicate_check(checked_df, contract, dup_keys_df, broadcast=small)
        checked_df = unique_df.unionByName(cached(shared_df)[0])
    unreferenced = V.accepted(checked_df, contract)
    for ref in contract.references:
        if ref.parent in parents:
            keys_df, small = parents[ref.parent].result().keys
            checked_df = V.with_reference_check(checked_df, keys_df, ref.column, ref.reason, broadcast=small)
    accepted = V.accepted(checked_df, contract)
    if conf.inputs[name].basket:  # checked line by line, counted by basket
        accepted, unreferenced = V.baskets(accepted), V.baskets(unreferenced)
    keys = None
    if name in PARENT_TABLES:  # a small table's keys are read from the rows it holds, broadcast
        keys_df = accepted.select(*contract.key)
        keys = (keys_df, True) if persist.checkpoints else cached(keys_df)
    observation = Observation(f"reasons_{name}")
    observed_df = checked_df.observe(observation, *V.reason_metrics(checked_df.columns))
    return CheckedTable(accepted=accepted, unreferenced=unreferenced,
                        rejected=V.rejected(observed_df, name, run_id, as_of), read_rows=read_rows,
                        observation=observation, keys=keys)


def reconcile(table: str, read: int, by_reason: dict[str | None, int], merged: int = 0) -> dict[str, int]:
    """Check read = accepted + merged + rejected and return the table's counts, reasons included (`merged`: rows
    merged into their customer's one row, inputs.customers.rows_per_customer: many)."""
    accepted_n = by_reason.get(None, 0)
    rejected_n = sum(n for reason, n in by_reason.items() if reason is not None)
    if read != accepted_n + merged + rejected_n:
        raise ReconciliationError(f"input table '{table}': read {read} rows but accepted {accepted_n} "
                                  + (f"+ merged {merged} " if merged else "") + f"+ rejected {rejected_n}")
    reasons = {f"rejected_{reason}": n for reason, n in sorted(by_reason.items(), key=lambda kv: str(kv[0]))
               if reason is not None}
    return {"read": read, "accepted": accepted_n, **({"merged": merged} if merged else {}), "rejected": rejected_n,
            **reasons}


def over_rejected_limit(counts: dict[str, dict[str, int]], conf: Config) -> list[str]:
    """The tables with a larger share of their rows rejected than inputs.<table>.max_rejected_share."""
    return [table for table, n in counts.items()
            if n["read"] and n["rejected"] / n["read"] > conf.inputs[table].max_rejected_share]
