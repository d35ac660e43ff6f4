"""Read and validate every input table of a run, in reference order, and reconcile the counts."""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from functools import reduce

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from custseg import validation as V
from custseg.config import Config
from custseg.contract import CONTRACTS
from custseg.io import read_input

log = logging.getLogger(__name__)

# table -> (column, referenced table, reason) checked after the row rules.
REFERENCES = {
    "transactions": [("customer_id", "customers", "unknown_customer")],
    "loans": [("customer_id", "customers", "unknown_customer")],
    "loan_payments": [("loan_id", "loans", "unknown_loan"), ("customer_id", "customers", "unknown_customer")],
}
TABLE_ORDER = ("customers", "transactions", "loans", "loan_payments")
PARENTS = {parent for references in REFERENCES.values() for _, parent, _ in references}
# A key set up to this many rows is broadcast to the join: about 100 MB for 2M string keys.
BROADCAST_MAX_ROWS = 2_000_000


class ReconciliationError(RuntimeError):
    """Rows read differ from rows accepted plus rows rejected: a row would be lost."""


@dataclass
class IngestResult:
    accepted: dict[str, DataFrame]
    rejected: DataFrame
    counts: dict[str, dict[str, int]]  # table -> {"read", "accepted", "rejected", "<reason>": n}
    _persisted: list[DataFrame] = field(default_factory=list)

    def unpersist(self) -> None:
        for df in self._persisted:
            df.unpersist()


def check_inputs(spark: SparkSession, conf: Config) -> dict[str, DataFrame]:
    """Open every configured input and check its schema before anything is computed or written."""
    raw = {}
    for name in TABLE_ORDER:
        if name in conf.inputs:
            raw[name] = read_input(spark, conf.inputs[name])
            V.check_schema(raw[name], CONTRACTS[name], conf.inputs[name])
    return raw


def ingest(spark: SparkSession, conf: Config, run_id: str, as_of: dt.date) -> IngestResult:
    """Validate all inputs; accepted rows per table, every rejected row with its reason, and counts.

    A large table is never cached or shuffled whole here: each later read (the counts, the rejected rows,
    the features) scans it again, which costs less than caching it. What is cached is small: the keys
    held twice, the rows holding them, and each parent table's accepted keys for the reference checks.
    """
    raw = check_inputs(spark, conf)
    accepted: dict[str, DataFrame] = {}
    known_keys: dict[str, tuple[DataFrame, bool]] = {}  # parent -> (its accepted keys, small enough to broadcast)
    rejected_parts = []
    counts: dict[str, dict[str, int]] = {}
    persisted: list[DataFrame] = []

    def cached(df: DataFrame) -> tuple[DataFrame, bool]:
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        persisted.append(df)
        return df, df.count() <= BROADCAST_MAX_ROWS

    for name, raw_df in raw.items():
        contract = CONTRACTS[name]
        checked_df = V.with_row_rules(V.conform(raw_df, contract, conf.inputs[name], conf.pii_columns), contract)
        dup_keys_df, small = cached(V.duplicate_keys(checked_df, contract))
        unique_df, shared_df = V.with_duplicate_check(checked_df, contract, dup_keys_df, broadcast=small)
        shared_df, _ = cached(shared_df)
        checked_df = unique_df.unionByName(shared_df)
        for column, parent, reason in REFERENCES.get(name, []):
            if parent in known_keys:
                keys_df, small = known_keys[parent]
                checked_df = V.with_reference_check(checked_df, keys_df, column, reason, broadcast=small)
        counts[name] = reconcile(name, raw_df.count(), V.reason_counts(checked_df))
        accepted[name] = V.accepted(checked_df, contract)
        if name in PARENTS:
            known_keys[name] = cached(accepted[name].select(*contract.key))
        rejected_parts.append(V.rejected(checked_df, name, run_id, as_of))
        log.info("ingested %s: %s", name, counts[name])
    rejected_df = reduce(DataFrame.unionByName, rejected_parts)
    return IngestResult(accepted=accepted, rejected=rejected_df, counts=counts, _persisted=persisted)


def reconcile(table: str, read: int, by_reason: dict[str | None, int]) -> dict[str, int]:
    """Check read = accepted + rejected and return the table's counts, reasons included."""
    accepted_n = by_reason.get(None, 0)
    rejected_n = sum(n for reason, n in by_reason.items() if reason is not None)
    if read != accepted_n + rejected_n:
        raise ReconciliationError(f"input table '{table}': read {read} rows but accepted {accepted_n} "
                                  f"+ rejected {rejected_n}")
    reasons = {f"rejected_{reason}": n for reason, n in sorted(by_reason.items(), key=lambda kv: str(kv[0]))
               if reason is not None}
    return {"read": read, "accepted": accepted_n, "rejected": rejected_n, **reasons}
