"""The input contract (shared/DESIGN.md): per table its columns with types and value rules, its key,
its references to other tables, and the reason codes a rejected row can carry.

A config maps a user's own column names onto these contract names. Validation
(custseg.transforms.validation) applies the rules declared here; no table is special-cased there.
"""
from __future__ import annotations

from dataclasses import dataclass

LOAN_STATUSES = ("current", "late", "default", "charged_off", "paid_off")
# A loan in one of these states counts as a default whatever its payment history says.
DEFAULTED_STATUSES = ("default", "charged_off")
CREDIT_SCORE_RANGE = (300, 850)

# Reason code (column `reason` of rejected_records) -> what it means; docs/validation.md says more.
# Larger amounts are data errors, and would overflow sums: a trillion in any currency.
MAX_ABS_NUMBER = 1e12

REASON_CODES: dict[str, str] = {
    "malformed_record": "a CSV row whose field count differs from the header's (e.g. an unquoted comma), or a row "
                        "a quote left open took into another row's value",
    "unparseable_value": "a value that cannot be read as the contract type (e.g. amount 'n/a', NaN, Infinity, "
                         "text with bytes that do not decode)",
    "missing_required_value": "a required column is null or blank",
    "out_of_range": "a value outside its allowed range (credit score 300-850, a negative principal, a number "
                    "beyond +-1e12, a product closed before it was opened)",
    "invalid_value": "a value outside the contract's list (a loan status)",
    "zero_amount": "a transaction of amount 0 (neither a purchase nor a refund)",
    "duplicate_key": "a second row with the same key; the first by a deterministic order is kept",
    "unknown_customer": "a reference to a customer that is not accepted",
    "unknown_loan": "a reference to a loan that is not accepted",
}


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Spark SQL type name: string, date, timestamp, double, int
    required: bool
    value_range: tuple[float | None, float | None] | None = None  # inclusive bounds, else out_of_range
    allowed: tuple[str, ...] | None = None  # case-insensitive list (stored lower-case), else invalid_value
    nonzero: bool = False  # 0 is rejected as zero_amount
    not_before: str | None = None  # a date column of the same row this one may not precede, else out_of_range


@dataclass(frozen=True)
class Reference:
    column: str
    parent: str  # the referenced table; its key's accepted values are the valid ones
    reason: str


@dataclass(frozen=True)
class TableContract:
    name: str
    key: tuple[str, ...]  # unique key; duplicates are rejected
    columns: tuple[Column, ...]
    optional: bool = False  # a run may go without this table
    references: tuple[Reference, ...] = ()  # checked in order, after the row rules

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


NON_NEGATIVE = (0.0, None)

CUSTOMERS = TableContract(
    name="customers",
    key=("customer_id",),
    columns=(
        Column("customer_id", "string", True),
        Column("signup_date", "date", True),
        Column("annual_income", "double", False, value_range=NON_NEGATIVE),
        Column("credit_score", "int", False, value_range=CREDIT_SCORE_RANGE),
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
        Column("amount", "double", True, nonzero=True),
        Column("category", "string", False),
        Column("channel", "string", False),
    ),
    references=(Reference("customer_id", "customers", "unknown_customer"),),
)

LOANS = TableContract(
    name="loans",
    key=("loan_id",),
    columns=(
        Column("loan_id", "string", True),
        Column("customer_id", "string", True),
        Column("origination_date", "date", True),
        Column("principal", "double", True, value_range=NON_NEGATIVE),
        Column("status", "string", True, allowed=LOAN_STATUSES),
        Column("outstanding_balance", "double", False, value_range=NON_NEGATIVE),
        Column("interest_rate", "double", False),
        Column("term_months", "int", False),
    ),
    optional=True,
    references=(Reference("customer_id", "customers", "unknown_customer"),),
)

LOAN_PAYMENTS = TableContract(
    name="loan_payments",
    key=("loan_id", "due_date"),
    columns=(
        Column("loan_id", "string", True),
        Column("customer_id", "string", True),
        Column("due_date", "date", True),
        Column("amount_due", "double", True, value_range=NON_NEGATIVE),
        Column("paid_date", "date", False),
        Column("amount_paid", "double", False, value_range=NON_NEGATIVE),
    ),
    optional=True,
    references=(Reference("loan_id", "loans", "unknown_loan"),
                Reference("customer_id", "customers", "unknown_customer")),
)

# Product holdings: one row per product a customer opened; closed_date null while it is open.
PRODUCTS = TableContract(
    name="products",
    key=("customer_id", "product", "opened_date"),
    columns=(
        Column("customer_id", "string", True),
        Column("product", "string", True),
        Column("opened_date", "date", True),
        Column("closed_date", "date", False, not_before="opened_date"),
    ),
    optional=True,
    references=(Reference("customer_id", "customers", "unknown_customer"),),
)

# Every input table, in reference order: a table's parents come before it.
CONTRACTS = {c.name: c for c in (CUSTOMERS, TRANSACTIONS, LOANS, LOAN_PAYMENTS, PRODUCTS)}
INPUT_TABLES = tuple(CONTRACTS)
REQUIRED_INPUTS = tuple(name for name, c in CONTRACTS.items() if not c.optional)
OPTIONAL_INPUTS = tuple(name for name, c in CONTRACTS.items() if c.optional)
PARENT_TABLES = frozenset(r.parent for c in CONTRACTS.values() for r in c.references)
