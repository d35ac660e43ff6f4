"""The input contract (shared/DESIGN.md): required and optional columns per table, with types.

A config maps a user's own column names onto these contract names.
"""
from __future__ import annotations

from dataclasses import dataclass

LOAN_STATUSES = ("current", "late", "default", "charged_off", "paid_off")
DEFAULTED_STATUSES = ("default", "charged_off")
CREDIT_SCORE_RANGE = (300, 850)


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Spark SQL type name: string, date, timestamp, double, int
    required: bool


@dataclass(frozen=True)
class TableContract:
    name: str
    key: tuple[str, ...]  # unique key; duplicates are rejected
    columns: tuple[Column, ...]

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


CUSTOMERS = TableContract(
    name="customers",
    key=("customer_id",),
    columns=(
        Column("customer_id", "string", True),
        Column("signup_date", "date", True),
        Column("annual_income", "double", False),
        Column("credit_score", "int", False),
        Column("region", "string", False),
        Column("employment_status", "string", False),
        Column("birth_date", "date", False),
    ),
)

TRANSACTIONS = TableContract(
    name="transactions",
    key=("transaction_id",),
    columns=(
        Column("transaction_id", "string", True),
        Column("customer_id", "string", True),
        Column("transaction_ts", "timestamp", True),
        Column("amount", "double", True),
        Column("category", "string", False),
        Column("channel", "string", False),
    ),
)

LOANS = TableContract(
    name="loans",
    key=("loan_id",),
    columns=(
        Column("loan_id", "string", True),
        Column("customer_id", "string", True),
        Column("origination_date", "date", True),
        Column("principal", "double", True),
        Column("status", "string", True),
        Column("outstanding_balance", "double", False),
        Column("interest_rate", "double", False),
        Column("term_months", "int", False),
    ),
)

LOAN_PAYMENTS = TableContract(
    name="loan_payments",
    key=("loan_id", "due_date"),
    columns=(
        Column("loan_id", "string", True),
        Column("customer_id", "string", True),
        Column("due_date", "date", True),
        Column("amount_due", "double", True),
        Column("paid_date", "date", False),
        Column("amount_paid", "double", False),
    ),
)

CONTRACTS = {c.name: c for c in (CUSTOMERS, TRANSACTIONS, LOANS, LOAN_PAYMENTS)}
