"""Seeded synthetic bank data with planted personas, for development, tests and benchmarks.

Everything is built with Spark DataFrame expressions (no UDFs, no RDDs, nothing collected), so the same
code writes a thousand or a hundred million transactions. Randomness never comes from `F.rand`: every
draw is a hash of (row key, seed, salt) turned into a uniform in (0, 1), normal draws use Box-Muller.
The same arguments therefore give the same rows whatever the partitioning.

Days are counted back from `as_of` (day 1 = the day before); every clean event is strictly before
`as_of`, not before the customer's signup date and at most 730 days back. Timestamps are UTC instants.

Personas (the ground truth is a separate `truth` table, never part of the inputs; `persona_weights` changes
the mix). "avg" below is `transactions_per_customer`; counts vary +-15% within a persona; tickets are log-normal:

- affluent_loyal (20%): tenure 3-10 years, income 120k-250k, credit score 740-830; about 1.2 x avg
  purchases, 90% spread over the last year and 10% one to two years back, the last one 1-7 days ago;
  high tickets (median 250, mostly 150-400), 1% refunds.
- young_frequent (25%): tenure 400-1460 days, income 25k-50k, credit 600-700; about 2.5 x avg purchases,
  small tickets (median 14, mostly 7-28), 30% of purchases on the same day as the one before, the last one
  1-3 days ago, 8% refunds.
- dormant (20%): tenure 4-10 years, income 50k-90k, credit 650-750; 2-4 purchases: two in the lookback year,
  201-240 and 280-330 days ago, the others 366-730 days ago; median ticket 45, no refunds.
- credit_stressed (20%): tenure 2-6 years, income 30k-60k, credit 480-600; about 1 x avg purchases of mid
  tickets (median 60), declining: 12% in the last 90 days against 40% in the 90 days before (38% 181-365
  days, 10% older), the last one 3-20 days ago.
- new_customer (15%): signed up 20-90 days ago, about 0.25 x avg purchases, all since signup, the last one
  1-10 days ago, median ticket 50, no refunds; income 40k-80k, credit 620-720.

Loans (LoanSpec per persona): every persona borrows, in its own share (about 45% of the affluent, 25% of the
young, 10% of the dormant, 95% of the stressed, 15% of the new customers), amounts, rates and terms. A loan is
originated 1 month or more before `as_of`, never before signup. Each loan is good (every due paid 0-4 days
early), slipping (some dues paid 1-30 days late, the stressed 30-75) or, if still running and at least 6
months old, in default: slipping, then its dues of the last 4 months (`default`) or 7 months (`charged_off`)
unpaid, so 90+ days past due. About 15% of the stressed borrowers default and 95% pay late, 0-2% and 3-20% of
the others; 7-9% of all borrowers default (default mix). The status follows the payments: default /
charged_off, else `late` with a past due unpaid at `as_of`, else `paid_off` with every due paid, else
`current`. Payments: one due a month from origination to maturity or `as_of` + 3 months, whichever is first;
a payment made on or after `as_of` is not known yet, so paid_date and amount_paid are null.

Products (`products`, one row per customer and product: current_account, savings, credit_card, personal_loan,
mortgage, investment; PersonaSpec.products): the share of each persona holding each product at `as_of` is
planted, e.g. nearly everyone a current account, the affluent savings 85%, mortgage 60% and investment 70%.
Two gaps are planted: the young hold savings far less than any other persona (8%), the stressed a credit card
(8%, a high-risk persona never to be offered one). A held product was opened from signup to the day before
`as_of` and is still open (closed_date null). Customers not holding a product may have a row of it anyway
(`product_row_shares`): closed before `as_of` (10% of the rows) or opened on or up to 60 days after it (3%), so
counting rows instead of holdings at `as_of` (opened_date < as_of, closed_date null or >= as_of) overstates them.

Dirt, injected only when `dirt_rate` > 0 (r below); clean rows are kept, so the dirty data is the
clean data plus injected rows and a few damaged customer attributes:

- transactions, one extra row for a share r of the generated rows, split into: exact duplicates
  (0.3 r, same transaction_id), duplicates with a different amount (0.2 r, same transaction_id), and
  with a new transaction_id (0.125 r each): null customer_id, zero amount, a customer_id that is not in
  customers, a transaction_ts on or up to 30 days after `as_of`.
- customers: null annual_income (r), null credit_score (r), credit_score outside 300-850 (r / 2:
  0, 250, 900 or 999), duplicate customer rows (r; half exact copies, half with another region and income).
- loan_payments: an extra copy of a share r of the payment rows with a null due_date.
- products: an extra copy of a share r of the rows with a null product, an exact copy of a share r / 2.
- CSV output only: a share r / 2 of the values of some columns replaced by unparseable text
  (see `CSV_JUNK`), e.g. amount "n/a", transaction_ts "not-a-date".
"""
from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DateType, TimestampType

from custseg.contract.inputs import CREDIT_SCORE_RANGE, LOAN_STATUSES
from custseg.platform.storage import in_parallel

log = logging.getLogger(__name__)

PERSONAS = ("affluent_loyal", "young_frequent", "dormant", "credit_stressed", "new_customer")
FORMATS = ("delta", "parquet", "csv")

TRUTH_TABLE = "truth"

REGIONS = ("north", "south", "east", "west", "central")
SEXES = ("F", "M")
MAX_LOANS_PER_CUSTOMER = 3
FUTURE_DUE_MONTHS = 3  # payment schedules run this many months past as_of
DEFAULT_UNPAID_MONTHS = 4  # a loan in default has its dues of the last 4 months unpaid (90+ days past due)
CHARGED_OFF_UNPAID_MONTHS = 7  # and a charged-off loan those of the last 7 months
MAX_LATE_DAYS = 89  # a late payment short of default
TX_COUNT_SPREAD = 0.15  # transaction count = multiplier * average * (1 +- spread)
MAX_WINDOWS = 4  # weighted purchase windows per persona
LOOKBACK_LIMIT_DAYS = 730
PRODUCTS = ("current_account", "savings", "credit_card", "personal_loan", "mortgage", "investment")
PRODUCT_CLOSED_SHARE = 0.10  # of a persona's product rows: closed before as_of
PRODUCT_FUTURE_SHARE = 0.03  # and opened on or after as_of
PRODUCT_FUTURE_DAYS = 60  # a future product opens 0-60 days after as_of
CSV_DATE_FORMAT = "yyyy-MM-dd"
CSV_TIMESTAMP_FORMAT = "yyyy-MM-dd HH:mm:ss"
CSV_JUNK = {
    "customers": {"signup_date": "not-a-date", "credit_score": "n/a"},
    "transactions": {"amount": "n/a", "transaction_ts": "not-a-date"},
    "loan_payments": {"amount_due": "n/a"},
}
CUSTOMER_ID_DIGITS = 8  # C00000001
TRANSACTION_ID_DIGITS = 12  # T000000000001
LOAN_ID_DIGITS = 7  # L0000001
ROWS_PER_PARTITION = 1_000_000  # generated transactions per partition of the customer range

_HASH_BITS = 47
_HASH_MASK = (1 << _HASH_BITS) - 1
_SECONDS_PER_DAY = 86_400
_PERSONA = "persona"
_ROW_KEY = "_row_key"
_BAD_CREDIT_SCORES = (0, CREDIT_SCORE_RANGE[0] - 50, CREDIT_SCORE_RANGE[1] + 50, 999)

assert {"current", "late", "default", "charged_off", "paid_off"} <= set(LOAN_STATUSES)


@dataclass(frozen=True)
class LoanSpec:
    """How a persona borrows and repays; ranges are (low, high), uniform; shares are of loans unless noted."""

    probability: float  # share of the persona's customers with loans
    count: tuple[int, int]
    principal: tuple[float, float]
    interest_rate: tuple[float, float]
    terms_months: tuple[int, ...]
    age_months: tuple[int, int]  # origination, months before as_of (at most the tenure)
    slipping: float  # loans with some dues paid late
    late_dues: float  # of a slipping loan's dues, the share paid late
    late_days: tuple[int, int]
    default: float  # loans still running and old enough that stop paying
    charged_off: float  # of the defaulted loans old enough, the share charged off


@dataclass(frozen=True)
class PersonaSpec:
    """The planted behaviour of one persona; ranges are (low, high), uniform."""

    name: str
    share: float
    tenure_days: tuple[int, int]
    income: tuple[float, float]
    credit_score: tuple[int, int]
    age_years: tuple[float, float]
    employment: tuple[str, ...]
    tx_multiplier: float  # transactions relative to transactions_per_customer
    tx_count: tuple[int, int] | None  # absolute count range instead of the multiplier
    leading_days: tuple[tuple[int, int], ...]  # fixed (first, last day back) windows of purchases 1, 2, ...
    windows: tuple[tuple[int, int, float], ...]  # (first day back, last day back, weight) of the other purchases
    same_day_repeat: float
    ticket_median: float
    ticket_sigma: float  # of log(ticket)
    refund_prob: float
    categories: tuple[str, ...]
    channels: tuple[str, ...]
    loans: LoanSpec
    products: tuple[tuple[str, float], ...]  # (product, share of the persona's customers holding it at as_of)


SPECS = (
    PersonaSpec(
        name="affluent_loyal", share=0.20, tenure_days=(1095, 3650), income=(120_000, 250_000),
        credit_score=(740, 830), age_years=(35, 65), employment=("employed", "self_employed"),
        tx_multiplier=1.2, tx_count=None, leading_days=((1, 7),), windows=((1, 365, 0.9), (366, 730, 0.1)),
        same_day_repeat=0.05, ticket_median=250.0, ticket_sigma=0.25, refund_prob=0.01,
        categories=("travel", "electronics", "dining", "fashion", "groceries"), channels=("online", "pos", "branch"),
        loans=LoanSpec(probability=0.45, count=(1, 2), principal=(20_000, 150_000), interest_rate=(0.03, 0.06),
                       terms_months=(36, 60, 84, 120), age_months=(6, 72), slipping=0.08, late_dues=0.1,
                       late_days=(1, 10), default=0.008, charged_off=0.3),
        products=(("current_account", 0.98), ("savings", 0.85), ("credit_card", 0.85), ("personal_loan", 0.10),
                  ("mortgage", 0.60), ("investment", 0.70)),
    ),
    PersonaSpec(
        name="young_frequent", share=0.25, tenure_days=(400, 1460), income=(25_000, 50_000),
        credit_score=(600, 700), age_years=(18, 30), employment=("student", "employed"),
        tx_multiplier=2.5, tx_count=None, leading_days=((1, 3),), windows=((1, 365, 0.9), (366, 730, 0.1)),
        same_day_repeat=0.3, ticket_median=14.0, ticket_sigma=0.35, refund_prob=0.08,
        categories=("dining", "groceries", "fashion", "fuel"), channels=("mobile", "online"),
        loans=LoanSpec(probability=0.25, count=(1, 1), principal=(1_000, 12_000), interest_rate=(0.08, 0.16),
                       terms_months=(12, 24, 36, 48), age_months=(2, 36), slipping=0.22, late_dues=0.2,
                       late_days=(1, 30), default=0.03, charged_off=0.3),
        products=(("current_account", 0.97), ("savings", 0.08), ("credit_card", 0.60), ("personal_loan", 0.25),
                  ("mortgage", 0.02), ("investment", 0.05)),  # planted gap: savings
    ),
    PersonaSpec(
        name="dormant", share=0.20, tenure_days=(1460, 3650), income=(50_000, 90_000),
        credit_score=(650, 750), age_years=(45, 80), employment=("retired", "employed"),
        tx_multiplier=0.0, tx_count=(2, 4), leading_days=((201, 240), (280, 330)),
        windows=((366, 730, 1.0),),
        same_day_repeat=0.0, ticket_median=45.0, ticket_sigma=0.4, refund_prob=0.0,
        categories=("groceries", "utilities", "fuel"), channels=("branch", "pos"),
        loans=LoanSpec(probability=0.10, count=(1, 1), principal=(5_000, 40_000), interest_rate=(0.04, 0.08),
                       terms_months=(36, 60, 84, 120), age_months=(12, 84), slipping=0.10, late_dues=0.15,
                       late_days=(1, 15), default=0.02, charged_off=0.5),
        products=(("current_account", 0.95), ("savings", 0.80), ("credit_card", 0.45), ("personal_loan", 0.05),
                  ("mortgage", 0.35), ("investment", 0.30)),
    ),
    PersonaSpec(
        name="credit_stressed", share=0.20, tenure_days=(730, 2190), income=(30_000, 60_000),
        credit_score=(480, 600), age_years=(25, 55), employment=("employed", "unemployed", "self_employed"),
        tx_multiplier=1.0, tx_count=None, leading_days=((3, 20),),
        windows=((1, 90, 0.12), (91, 180, 0.40), (181, 365, 0.38), (366, 730, 0.10)),
        same_day_repeat=0.05, ticket_median=60.0, ticket_sigma=0.3, refund_prob=0.01,
        categories=("groceries", "utilities", "fuel", "dining"), channels=("pos", "online", "mobile"),
        loans=LoanSpec(probability=0.95, count=(1, 2), principal=(2_000, 20_000), interest_rate=(0.12, 0.25),
                       terms_months=(24, 36, 48, 60), age_months=(6, 36), slipping=0.95, late_dues=0.35,
                       late_days=(30, 75), default=0.13, charged_off=0.3),
        products=(("current_account", 0.95), ("savings", 0.55), ("credit_card", 0.08), ("personal_loan", 0.60),
                  ("mortgage", 0.20), ("investment", 0.05)),  # planted gap: credit_card, never to be offered
    ),
    PersonaSpec(
        name="new_customer", share=0.15, tenure_days=(20, 90), income=(40_000, 80_000),
        credit_score=(620, 720), age_years=(20, 60), employment=("employed", "self_employed", "student"),
        tx_multiplier=0.25, tx_count=None, leading_days=((1, 10),), windows=((1, 90, 1.0),),
        same_day_repeat=0.1, ticket_median=50.0, ticket_sigma=0.35, refund_prob=0.0,
        categories=("groceries", "dining", "electronics", "fashion"), channels=("mobile", "online", "pos"),
        loans=LoanSpec(probability=0.18, count=(1, 1), principal=(2_000, 15_000), interest_rate=(0.07, 0.14),
                       terms_months=(12, 24, 36), age_months=(1, 3), slipping=0.15, late_dues=0.4,
                       late_days=(1, 20), default=0.0, charged_off=0.0),
        products=(("current_account", 0.99), ("savings", 0.60), ("credit_card", 0.50), ("personal_loan", 0.10),
                  ("mortgage", 0.10), ("investment", 0.10)),
    ),
)
assert tuple(s.name for s in SPECS) == PERSONAS and math.isclose(sum(s.share for s in SPECS), 1.0)
assert all(1 <= len(s.windows) <= MAX_WINDOWS for s in SPECS)
assert all(s.loans.late_days[1] <= MAX_LATE_DAYS and s.loans.count[1] <= MAX_LOANS_PER_CUSTOMER for s in SPECS)
assert all(tuple(p for p, _ in s.products) == PRODUCTS for s in SPECS)


@dataclass(frozen=True)
class GeneratedData:
    """The five input tables, the ground truth, and what `write_dataset` needs to dirty CSV output."""

    customers: DataFrame
    transactions: DataFrame
    loans: DataFrame
    loan_payments: DataFrame
    products: DataFrame
    truth: DataFrame  # customer_id, persona: kept separate, never in the inputs
    dirt_rate: float = 0.0
    seed: int = 0

    def inputs(self) -> dict[str, DataFrame]:
        return {"customers": self.customers, "transactions": self.transactions,
                "loans": self.loans, "loan_payments": self.loan_payments, "products": self.products}


# ---------------------------------------------------------------- deterministic draws


def uniform(seed: int, salt: str, *keys: Column) -> Column:
    """A uniform in (0, 1) from a hash of the keys: the same for the same row whatever the partitioning."""
    bits = F.xxhash64(*keys, F.lit(seed), F.lit(salt)).bitwiseAND(F.lit(_HASH_MASK))
    return (bits + F.lit(0.5)) / F.lit(float(1 << _HASH_BITS))


def standard_normal(seed: int, salt: str, *keys: Column) -> Column:
    """A N(0, 1) draw by Box-Muller from two hashed uniforms."""
    u1 = uniform(seed, salt + ":1", *keys)
    u2 = uniform(seed, salt + ":2", *keys)
    return F.sqrt(F.lit(-2.0) * F.log(u1)) * F.cos(F.lit(2 * math.pi) * u2)


def _by_persona(value: Callable[[PersonaSpec], Column]) -> Column:
    """CASE persona WHEN ... THEN value(spec): one branch per persona."""
    expr: Column | None = None
    for spec in SPECS:
        is_persona = F.col(_PERSONA) == spec.name
        expr = F.when(is_persona, value(spec)) if expr is None else expr.when(is_persona, value(spec))
    assert expr is not None
    return expr


def _persona_literal(pick: Callable[[PersonaSpec], object]) -> Column:
    return _by_persona(lambda s: F.lit(pick(s)))


def _persona_uniform(u: Column, pick: Callable[[PersonaSpec], tuple[float, float]]) -> Column:
    """A uniform on the persona's (low, high); the draw u is written once, only the bounds depend on the persona."""
    low = _persona_literal(lambda s: float(pick(s)[0]))
    high = _persona_literal(lambda s: float(pick(s)[1]))
    return low + u * (high - low)


def _persona_int(u: Column, pick: Callable[[PersonaSpec], tuple[int, int]]) -> Column:
    """An integer uniform on the persona's [low, high], both inclusive."""
    low = _persona_literal(lambda s: int(pick(s)[0]))
    high = _persona_literal(lambda s: int(pick(s)[1]))
    return (low + F.floor(u * (high - low + F.lit(1)))).cast("int")


def _persona_array(pick: Callable[[PersonaSpec], tuple[str, ...]]) -> Column:
    return _by_persona(lambda s: F.array(*[F.lit(o) for o in pick(s)]))


def _pick(options: Column, u: Column) -> Column:
    """One element of an array column, uniformly."""
    return F.element_at(options, (F.floor(u * F.size(options)) + F.lit(1)).cast("int"))


def _int_in_range(u: Column, bounds: tuple[int, int]) -> Column:
    """An integer uniform on [low, high], both inclusive."""
    low, high = bounds
    return (F.lit(low) + F.floor(u * F.lit(high - low + 1))).cast("int")


def _choice(u: Column, options: tuple[str, ...] | tuple[int, ...]) -> Column:
    return _pick(F.array(*[F.lit(o) for o in options]), u)


def padded_id(prefix: str, number: Column, width: int) -> Column:
    """prefix + number zero-padded to width digits (longer numbers are kept whole, never truncated)."""
    digits = number.cast("string")
    padded = F.when(F.length(digits) < width, F.lpad(digits, width, "0")).otherwise(digits)
    return F.concat(F.lit(prefix), padded)


def _epoch_seconds(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


# ---------------------------------------------------------------- customers


DEFAULT_PERSONA_WEIGHTS = {s.name: s.share for s in SPECS}


def persona_shares(persona_weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """The share of each persona: the given ones as they are, the others sharing the rest in their default ratio.

    `{"dormant": 0.7}` gives a dormant majority with the other four personas in their usual proportions.
    """
    weights = dict(persona_weights or {})
    unknown = sorted(set(weights) - set(PERSONAS))
    if unknown:
        raise ValueError(f"datagen: persona_weights has unknown personas {unknown}; known: {list(PERSONAS)}")
    if any(not 0.0 <= w <= 1.0 for w in weights.values()):
        raise ValueError(f"datagen: persona_weights must each be in [0, 1], got {weights}")
    given = sum(weights.values())
    rest = [name for name in PERSONAS if name not in weights]
    if given > 1.0 + 1e-9 or (not rest and not math.isclose(given, 1.0)):
        raise ValueError(f"datagen: persona_weights must sum to 1 (at most 1 if some personas are left out), "
                         f"got {given:g}")
    rest_default = sum(DEFAULT_PERSONA_WEIGHTS[name] for name in rest)
    scale = max(1.0 - given, 0.0) / rest_default if rest else 0.0
    return {name: weights[name] if name in weights else DEFAULT_PERSONA_WEIGHTS[name] * scale for name in PERSONAS}


def _persona_of(u: Column, shares: Mapping[str, float]) -> Column:
    """The persona whose slice of (0, 1), in PERSONAS order, holds u."""
    expr: Column | None = None
    cumulative = 0.0
    for name in PERSONAS[:-1]:
        cumulative += shares[name]
        expr = F.when(u < cumulative, name) if expr is None else expr.when(u < cumulative, name)
    assert expr is not None
    return expr.otherwise(PERSONAS[-1])


def _transaction_count(u: Column, transactions_per_customer: int) -> Column:
    """The persona's tx_count range, or multiplier * average * (1 +- TX_COUNT_SPREAD), at least 1."""
    def bounds(spec: PersonaSpec) -> tuple[int, int]:
        if spec.tx_count is not None:
            return spec.tx_count
        mean = transactions_per_customer * spec.tx_multiplier
        return (max(1, round(mean * (1 - TX_COUNT_SPREAD))), max(1, round(mean * (1 + TX_COUNT_SPREAD))))

    return _persona_int(u, bounds)


def max_transactions_per_customer(transactions_per_customer: int) -> int:
    """Upper bound of the generated (clean) transactions of one customer."""
    return max(
        spec.tx_count[1] if spec.tx_count else max(1, round(transactions_per_customer * spec.tx_multiplier
                                                            * (1 + TX_COUNT_SPREAD)))
        for spec in SPECS
    )


def _customer_plan(spark: SparkSession, n_customers: int, transactions_per_customer: int, as_of: date, seed: int,
                   num_partitions: int, shares: Mapping[str, float]) -> DataFrame:
    """One row per customer: the public columns plus idx, persona, tenure_days and n_tx used downstream."""
    idx = F.col("idx")

    def u(salt: str) -> Column:
        return uniform(seed, salt, idx)

    tenure_days = _persona_int(u("tenure"), lambda s: s.tenure_days)
    age_days = F.floor(_persona_uniform(u("age"), lambda s: s.age_years) * F.lit(365.25)).cast("int")
    return (
        spark.range(1, n_customers + 1, 1, num_partitions)
        .select(F.col("id").alias("idx"))
        .withColumn(_PERSONA, _persona_of(u("persona"), shares))
        .withColumn("tenure_days", tenure_days)
        .select(
            "idx",
            _PERSONA,
            "tenure_days",
            padded_id("C", idx, CUSTOMER_ID_DIGITS).alias("customer_id"),
            F.date_sub(F.lit(as_of), F.col("tenure_days")).alias("signup_date"),
            F.round(_persona_uniform(u("income"), lambda s: s.income)).cast("double").alias("annual_income"),
            _persona_int(u("credit"), lambda s: s.credit_score).alias("credit_score"),
            _choice(u("region"), REGIONS).alias("region"),
            _pick(_persona_array(lambda s: s.employment), u("employment")).alias("employment_status"),
            F.date_sub(F.lit(as_of), age_days).alias("birth_date"),
            _choice(u("sex"), SEXES).alias("sex"),
            F.concat(F.lit("Name "), idx.cast("string")).alias("name"),
            F.concat(F.lit("c"), idx.cast("string"), F.lit("@example.com")).alias("email"),
            padded_id("+1-555-", idx, 7).alias("phone"),
            _transaction_count(u("n_tx"), transactions_per_customer).alias("n_tx"),
        )
    )


CUSTOMER_COLUMNS = ("customer_id", "signup_date", "annual_income", "credit_score", "region", "employment_status",
                    "birth_date", "sex", "name", "email", "phone")


def with_customer_dirt(plan_df: DataFrame, dirt_rate: float, seed: int) -> DataFrame:
    """Null incomes and scores, out-of-range scores and duplicate rows (half exact, half conflicting)."""
    idx = F.col("idx")
    is_duplicated = uniform(seed, "dirt:dup_customer", idx) < dirt_rate
    is_conflicting_copy = (F.col("copy") == 1) & (uniform(seed, "dirt:dup_customer_kind", idx) < 0.5)
    bad_score = _choice(uniform(seed, "dirt:bad_score_value", idx), _BAD_CREDIT_SCORES)
    return (
        plan_df
        .withColumn("copy", F.explode(F.sequence(F.lit(0), F.when(is_duplicated, 1).otherwise(0))))
        .withColumn("annual_income", F.when(uniform(seed, "dirt:null_income", idx) < dirt_rate, F.lit(None))
                    .when(is_conflicting_copy, F.round(F.col("annual_income") * 1.1))
                    .otherwise(F.col("annual_income")))
        .withColumn("credit_score", F.when(uniform(seed, "dirt:null_score", idx) < dirt_rate, F.lit(None))
                    .when(uniform(seed, "dirt:bad_score", idx) < dirt_rate / 2, bad_score)
                    .otherwise(F.col("credit_score")).cast("int"))
        .withColumn("region", F.when(is_conflicting_copy, _choice(uniform(seed, "dirt:region", idx), REGIONS))
                    .otherwise(F.col("region")))
    )


# ---------------------------------------------------------------- transactions


def _padded_windows(spec: PersonaSpec) -> tuple[list[int], list[int], list[float]]:
    """Window lows, highs and cumulative weights, padded to MAX_WINDOWS with windows never picked."""
    total = sum(w for _, _, w in spec.windows)
    lows, highs, cumulative, running = [], [], [], 0.0
    for low, high, weight in spec.windows:
        running += weight / total
        lows.append(low)
        highs.append(high)
        cumulative.append(running)
    cumulative[-1] = 1.0
    padding = MAX_WINDOWS - len(spec.windows)
    return lows + [lows[-1]] * padding, highs + [highs[-1]] * padding, cumulative + [2.0] * padding


def with_purchase_params(plan_df: DataFrame) -> DataFrame:
    """Per-customer purchase parameters of the persona, so that the per-transaction code has no persona CASE.

    Keeping the per-row expressions small matters: a generated method over 8000 bytes is not JIT-compiled.
    """
    def windows(part: int) -> Callable[[PersonaSpec], Column]:
        return lambda s: F.array(*[F.lit(v) for v in _padded_windows(s)[part]])

    def leading(part: int) -> Callable[[PersonaSpec], Column]:
        return lambda s: F.array(*[F.lit(w[part]) for w in s.leading_days]).cast("array<int>")

    return plan_df.select(
        "idx", "customer_id", "tenure_days", "n_tx",
        _by_persona(windows(0)).alias("window_lo"),
        _by_persona(windows(1)).alias("window_hi"),
        _by_persona(windows(2)).alias("window_cum"),
        _by_persona(leading(0)).alias("leading_lo"),
        _by_persona(leading(1)).alias("leading_hi"),
        _persona_literal(lambda s: s.same_day_repeat).alias("repeat_prob"),
        _persona_literal(lambda s: math.log(s.ticket_median)).alias("ticket_mu"),
        _persona_literal(lambda s: s.ticket_sigma).alias("ticket_sigma"),
        _persona_literal(lambda s: s.refund_prob).alias("refund_prob"),
        _persona_array(lambda s: s.categories).alias("categories"),
        _persona_array(lambda s: s.channels).alias("channels"),
    )


def _days_back(seed: int) -> Column:
    """Days before as_of of a purchase: purchase k <= len(leading_days) in its leading window, the others in a
    window picked by weight; the window clipped to the tenure, then a uniform day in it.

    Draws are keyed on the purchase "day" (day_num), which a same-day repeat shares with the purchase
    before it, so repeats land on the same date.
    """
    day_num = F.col("day_num")
    u_window = uniform(seed, "window", day_num)
    index = F.lit(1)
    for j in range(1, MAX_WINDOWS):
        index = index + (u_window >= F.element_at(F.col("window_cum"), j)).cast("int")
    day_k = F.col("day_k")
    is_leading = day_k <= F.size(F.col("leading_lo"))
    low = F.when(is_leading, F.element_at(F.col("leading_lo"), day_k)).otherwise(
        F.element_at(F.col("window_lo"), index))
    high = F.when(is_leading, F.element_at(F.col("leading_hi"), day_k)).otherwise(
        F.element_at(F.col("window_hi"), index))
    low, high = F.least(low, F.col("tenure_days")), F.least(high, F.col("tenure_days"))
    return low + F.floor(uniform(seed, "day", day_num) * (high - low + F.lit(1))).cast("int")


def _amount(seed: int, tx_num: Column) -> Column:
    z = standard_normal(seed, "ticket", tx_num)
    ticket = F.exp(F.col("ticket_mu") + F.col("ticket_sigma") * z)
    is_refund = uniform(seed, "refund", tx_num) < F.col("refund_prob")
    amount = F.round(F.greatest(ticket, F.lit(0.5)), 2)
    return F.when(is_refund, -amount).otherwise(amount)


def _base_transactions(plan_df: DataFrame, as_of: date, seed: int, stride: int) -> DataFrame:
    """Clean transactions; tx_num = (idx - 1) * stride + k is unique and keys every draw of the row."""
    k = F.col("k")
    tx_num = F.col("tx_num")
    is_repeat = (k > 1) & (uniform(seed, "repeat", tx_num) < F.col("repeat_prob"))
    seconds = F.lit(_epoch_seconds(as_of)) - F.col("days_back") * F.lit(_SECONDS_PER_DAY) + F.floor(
        uniform(seed, "second", tx_num) * F.lit(_SECONDS_PER_DAY))
    return (
        plan_df
        .filter(F.col("n_tx") > 0)
        .transform(with_purchase_params)
        .withColumn("k", F.explode(F.sequence(F.lit(1), F.col("n_tx"))))
        .withColumn("tx_num", (F.col("idx") - F.lit(1)) * F.lit(stride) + k)
        .withColumn("day_k", F.when(is_repeat, k - 1).otherwise(k))
        .withColumn("day_num", tx_num - (k - F.col("day_k")))
        .withColumn("days_back", _days_back(seed))
        .select(
            "tx_num",
            "customer_id",
            F.timestamp_seconds(seconds).alias("transaction_ts"),
            _amount(seed, tx_num).alias("amount"),
            _pick(F.col("categories"), uniform(seed, "category", tx_num)).alias("category"),
            _pick(F.col("channels"), uniform(seed, "channel", tx_num)).alias("channel"),
        )
    )


TRANSACTION_DIRT = (  # (kind, share of dirt_rate)
    ("duplicate_exact", 0.3),
    ("duplicate_other_amount", 0.2),
    ("null_customer", 0.125),
    ("zero_amount", 0.125),
    ("unknown_customer", 0.125),
    ("after_as_of", 0.125),
)


def _transaction_dirt_kind(u: Column, dirt_rate: float) -> Column:
    expr: Column | None = None
    cumulative = 0.0
    for kind, share in TRANSACTION_DIRT:
        cumulative += share * dirt_rate
        expr = F.when(u < cumulative, kind) if expr is None else expr.when(u < cumulative, kind)
    assert expr is not None
    return expr


def with_transaction_dirt(tx_df: DataFrame, n_customers: int, stride: int, as_of: date, dirt_rate: float,
                          seed: int) -> DataFrame:
    """Adds one damaged copy of a share dirt_rate of the rows (kinds in TRANSACTION_DIRT)."""
    tx_num = F.col("tx_num")
    kind = F.col("dirt_kind")
    is_copy = F.col("copy") == 1
    keeps_id = kind.isin("duplicate_exact", "duplicate_other_amount")
    new_num = F.lit(n_customers * stride) + tx_num
    after_seconds = F.lit(_epoch_seconds(as_of)) + F.floor(
        uniform(seed, "dirt:after", tx_num) * F.lit(30 * _SECONDS_PER_DAY))
    unknown_id = padded_id("C", F.lit(n_customers + 1) + tx_num % F.lit(1000), CUSTOMER_ID_DIGITS)
    return (
        tx_df
        .withColumn("dirt_kind", _transaction_dirt_kind(uniform(seed, "dirt:transaction", tx_num), dirt_rate))
        .withColumn("copy", F.explode(F.sequence(F.lit(0), F.when(kind.isNull(), 0).otherwise(1))))
        .select(
            F.when(is_copy & ~keeps_id, new_num).otherwise(tx_num).alias("tx_num"),
            F.when(is_copy & (kind == "null_customer"), F.lit(None).cast("string"))
            .when(is_copy & (kind == "unknown_customer"), unknown_id)
            .otherwise(F.col("customer_id")).alias("customer_id"),
            F.when(is_copy & (kind == "after_as_of"), F.timestamp_seconds(after_seconds))
            .otherwise(F.col("transaction_ts")).alias("transaction_ts"),
            F.when(is_copy & (kind == "zero_amount"), F.lit(0.0))
            .when(is_copy & (kind == "duplicate_other_amount"), F.round(F.col("amount") * 1.1 + 1.0, 2))
            .otherwise(F.col("amount")).alias("amount"),
            "category",
            "channel",
        )
    )


# ---------------------------------------------------------------- loans and payments


def _loan_literal(pick: Callable[[LoanSpec], object]) -> Column:
    return _persona_literal(lambda s: pick(s.loans))


def _loan_plan(plan_df: DataFrame, as_of: date, seed: int) -> DataFrame:
    """One row per loan: its terms and how it is repaid, drawn once per loan from its persona's LoanSpec."""
    idx, j, age, term = F.col("idx"), F.col("j"), F.col("age_months"), F.col("term_months")

    def u(salt: str) -> Column:
        return uniform(seed, salt, F.col("loan_num"))

    max_age = F.floor(F.col("tenure_days") / F.lit(31)).cast("int")  # originated after signup
    has_loans = (uniform(seed, "has_loan", idx) < _loan_literal(lambda ls: ls.probability)) & (max_age >= 1)
    n_loans = F.when(has_loans, _persona_int(uniform(seed, "n_loans", idx), lambda s: s.loans.count)).otherwise(0)
    terms = _by_persona(lambda s: F.array(*[F.lit(t) for t in s.loans.terms_months]))
    is_running = term > age
    can_default = is_running & (age >= DEFAULT_UNPAID_MONTHS + 2)
    is_defaulted = can_default & (u("default") < _loan_literal(lambda ls: ls.default))
    is_charged_off = (is_defaulted & (age >= CHARGED_OFF_UNPAID_MONTHS + 2)
                      & (u("charged_off") < _loan_literal(lambda ls: ls.charged_off)))
    unpaid_months = (F.when(F.col("is_charged_off"), CHARGED_OFF_UNPAID_MONTHS)
                     .when(F.col("is_defaulted"), DEFAULT_UNPAID_MONTHS))
    monthly_rate = F.col("interest_rate") / F.lit(12.0)
    monthly = F.col("principal") * monthly_rate / (F.lit(1.0) - F.pow(F.lit(1.0) + monthly_rate, -term))
    return (
        plan_df
        .withColumn("n_loans", n_loans)
        .filter(F.col("n_loans") > 0)
        .select("idx", "customer_id", _PERSONA, "tenure_days",
                F.explode(F.sequence(F.lit(1), F.col("n_loans"))).alias("j"))
        .withColumn("loan_num", (idx - F.lit(1)) * F.lit(MAX_LOANS_PER_CUSTOMER) + j)
        .withColumn("age_months", F.least(_persona_int(u("age"), lambda s: s.loans.age_months), max_age))
        .withColumn("term_months", _pick(terms, u("term")).cast("int"))
        .withColumn("principal", F.round(_persona_uniform(u("principal"), lambda s: s.loans.principal), -2))
        .withColumn("interest_rate", F.round(_persona_uniform(u("rate"), lambda s: s.loans.interest_rate), 4))
        .withColumn("is_defaulted", is_defaulted)
        .withColumn("is_charged_off", is_charged_off)
        .select(
            "loan_num", "customer_id", "age_months", "term_months", "principal", "interest_rate",
            "is_defaulted", "is_charged_off",
            padded_id("L", F.col("loan_num"), LOAN_ID_DIGITS).alias("loan_id"),
            F.add_months(F.lit(as_of), -age).alias("origination_date"),
            F.add_months(F.lit(as_of), -unpaid_months).alias("stopped_date"),  # unpaid from then on
            (F.col("is_defaulted") | (u("slipping") < _loan_literal(lambda ls: ls.slipping))).alias("is_slipping"),
            F.round(monthly, 2).alias("amount_due"),
            _loan_literal(lambda ls: ls.late_dues).alias("late_dues"),
            _loan_literal(lambda ls: ls.late_days[0]).alias("late_days_lo"),
            _loan_literal(lambda ls: ls.late_days[1]).alias("late_days_hi"),
        )
    )


def _loan_payments(loan_plan_df: DataFrame, as_of: date, seed: int) -> DataFrame:
    """Monthly dues from origination up to maturity or as_of + FUTURE_DUE_MONTHS; paid only if before as_of.

    A due is unpaid from the loan's stopped_date on (defaulted loans), late with the share late_dues on a
    slipping loan, else paid 0-4 days early.
    """
    m = F.col("m")

    def u(salt: str) -> Column:
        return uniform(seed, salt, F.col("loan_num"), m)

    n_dues = F.least(F.col("term_months"), F.col("age_months") + F.lit(FUTURE_DUE_MONTHS))
    due = F.col("due_date")
    is_stopped = F.col("stopped_date").isNotNull() & (due >= F.col("stopped_date"))
    is_late = F.col("is_slipping") & (u("behaviour") < F.col("late_dues"))
    behaviour = F.when((due >= F.lit(as_of)) | is_stopped, "unpaid").when(is_late, "late").otherwise("on_time")
    late_lo, late_hi = F.col("late_days_lo"), F.col("late_days_hi")
    late_days = (late_lo + F.floor(u("late_days") * (late_hi - late_lo + F.lit(1)))).cast("int")
    paid_date = (F.when(F.col("behaviour") == "on_time", F.date_sub(due, _int_in_range(u("early_days"), (0, 4))))
                 .when(F.col("behaviour") == "late", F.date_add(due, late_days)))
    return (
        loan_plan_df
        .withColumn("m", F.explode(F.sequence(F.lit(1), n_dues)))
        .withColumn("due_date", F.add_months(F.col("origination_date"), m))
        .withColumn("behaviour", behaviour)
        .withColumn("paid_date", paid_date)
        .withColumn("paid_date", F.when(F.col("paid_date") < F.lit(as_of), F.col("paid_date")))
        .select(
            "loan_num", "m", "loan_id", "customer_id", "due_date", "amount_due", "paid_date",
            F.when(F.col("paid_date").isNotNull(), F.col("amount_due")).alias("amount_paid"),
        )
    )


def _loans(loan_plan_df: DataFrame, payments_df: DataFrame, as_of: date) -> DataFrame:
    """The loans with a status and balance that follow their (clean) payments as known at as_of."""
    is_unpaid = F.col("paid_date").isNull()
    repayment_df = payments_df.groupBy("loan_num").agg(
        F.count("paid_date").alias("n_paid"),
        F.count(F.when(is_unpaid, 1)).alias("n_unpaid"),
        F.count(F.when(is_unpaid & (F.col("due_date") < F.lit(as_of)), 1)).alias("n_overdue"),
    )
    status = (F.when(F.col("is_charged_off"), "charged_off")
              .when(F.col("is_defaulted"), "default")
              .when(F.col("n_overdue") > 0, "late")
              .when(F.col("n_unpaid") == 0, "paid_off")
              .otherwise("current"))
    growth = F.lit(1.0) + F.col("interest_rate") / F.lit(12.0)
    full, done = F.pow(growth, F.col("term_months")), F.pow(growth, F.coalesce(F.col("n_paid"), F.lit(0)))
    balance = F.col("principal") * (full - done) / (full - F.lit(1.0))  # annuity balance after n_paid payments
    return (
        loan_plan_df.join(repayment_df, on="loan_num", how="left")
        .withColumn("status", status)
        .withColumn("outstanding_balance",
                    F.when(F.col("status") == "paid_off", F.lit(0.0)).otherwise(F.round(balance, 2)))
    )


LOAN_COLUMNS = ("loan_id", "customer_id", "origination_date", "principal", "status", "outstanding_balance",
                "interest_rate", "term_months")


def with_payment_dirt(payments_df: DataFrame, dirt_rate: float, seed: int) -> DataFrame:
    """Adds a copy with a null due_date of a share dirt_rate of the payment rows."""
    is_dirty = uniform(seed, "dirt:payment", F.col("loan_num"), F.col("m")) < dirt_rate
    return (
        payments_df
        .withColumn("copy", F.explode(F.sequence(F.lit(0), F.when(is_dirty, 1).otherwise(0))))
        .withColumn("due_date", F.when(F.col("copy") == 1, F.lit(None).cast("date")).otherwise(F.col("due_date")))
    )


PAYMENT_COLUMNS = ("loan_id", "customer_id", "due_date", "amount_due", "paid_date", "amount_paid")
TRANSACTION_COLUMNS = ("transaction_id", "customer_id", "transaction_ts", "amount", "category", "channel")


# ---------------------------------------------------------------- products


def product_row_shares(spec: PersonaSpec) -> dict[str, tuple[float, float, float]]:
    """Per product, the share of the persona's customers with an open, a closed and a future row of it.

    The open share is the spec's: the planted share held at as_of. Closed and future rows go to customers who do
    not hold the product at as_of (one row per customer and product), so that counting rows instead of holdings
    overstates it. They make PRODUCT_CLOSED_SHARE and PRODUCT_FUTURE_SHARE of the persona's rows, spread in
    proportion to the open shares but never beyond the non-holders; what a near-universal product (the current
    account) cannot take goes to the others.
    """
    held = dict(spec.products)
    other = PRODUCT_CLOSED_SHARE + PRODUCT_FUTURE_SHARE
    left = sum(held.values()) * other / (1.0 - other)
    extra = dict.fromkeys(held, 0.0)
    uncapped = set(held)
    while left > 0 and (weight := sum(held[p] for p in uncapped)) > 0:
        capped = {p for p in uncapped if left * held[p] > (1.0 - held[p]) * weight}
        if not capped:
            extra.update({p: left * held[p] / weight for p in uncapped})
            break
        extra.update({p: 1.0 - held[p] for p in capped})
        left -= sum(extra[p] for p in capped)
        uncapped -= capped
    closed = PRODUCT_CLOSED_SHARE / other
    return {p: (held[p], extra[p] * closed, extra[p] * (1.0 - closed)) for p in PRODUCTS}


def _products(plan_df: DataFrame, as_of: date, seed: int) -> DataFrame:
    """One row per customer and product with a row (see product_row_shares), every date from signup on.

    Open: opened from signup to the day before as_of. Closed: opened likewise, closed from then to the day before
    as_of. Future: opened 0 to PRODUCT_FUTURE_DAYS days after as_of, not closed. Draws are keyed on (idx, product).
    """
    def u(salt: str) -> Column:
        return uniform(seed, salt, F.col("idx"), F.col("product"))

    def shares(part: int) -> Callable[[PersonaSpec], Column]:
        return lambda s: F.array(*[F.lit(v[part]) for v in product_row_shares(s).values()])

    def share(column: str) -> Column:
        return F.element_at(F.col(column), F.col("pos") + F.lit(1))

    u_row = u("product:row")
    open_until = share("open_shares")
    closed_until = open_until + share("closed_shares")
    state = (F.when(u_row < open_until, "open").when(u_row < closed_until, "closed")
             .when(u_row < closed_until + share("future_shares"), "future"))
    opened_back = F.lit(1) + F.floor(u("product:opened") * F.col("tenure_days")).cast("int")
    closed_back = F.lit(1) + F.floor(u("product:closed") * F.col("opened_back")).cast("int")  # on or after opening
    future_days = F.floor(u("product:future") * F.lit(PRODUCT_FUTURE_DAYS + 1)).cast("int")
    state_col = F.col("state")
    return (
        plan_df
        .select("idx", "customer_id", "tenure_days",
                _by_persona(shares(0)).alias("open_shares"),
                _by_persona(shares(1)).alias("closed_shares"),
                _by_persona(shares(2)).alias("future_shares"),
                F.posexplode(F.array(*[F.lit(p) for p in PRODUCTS])).alias("pos", "product"))
        .withColumn("state", state)
        .filter(state_col.isNotNull())
        .withColumn("opened_back", opened_back)
        .select(
            "idx", "customer_id", "product",
            F.when(state_col == "future", F.date_add(F.lit(as_of), future_days))
            .otherwise(F.date_sub(F.lit(as_of), F.col("opened_back"))).alias("opened_date"),
            F.when(state_col == "closed", F.date_sub(F.lit(as_of), closed_back)).alias("closed_date"),
        )
    )


def with_product_dirt(products_df: DataFrame, dirt_rate: float, seed: int) -> DataFrame:
    """Adds a copy with a null product of a share dirt_rate of the rows and an exact copy of dirt_rate / 2."""
    u = uniform(seed, "dirt:product", F.col("idx"), F.col("product"))
    is_null_copy = (F.col("copy") == 1) & (F.col("dirt_kind") == "null_product")
    return (
        products_df
        .withColumn("dirt_kind", F.when(u < dirt_rate, "null_product").when(u < 1.5 * dirt_rate, "duplicate"))
        .withColumn("copy", F.explode(F.sequence(F.lit(0), F.when(F.col("dirt_kind").isNull(), 0).otherwise(1))))
        .withColumn("product", F.when(is_null_copy, F.lit(None).cast("string")).otherwise(F.col("product")))
    )


PRODUCT_COLUMNS = ("customer_id", "product", "opened_date", "closed_date")


# ---------------------------------------------------------------- public API


def _validate(n_customers: int, transactions_per_customer: int, dirt_rate: float) -> None:
    if n_customers < 1:
        raise ValueError(f"datagen: n_customers must be >= 1, got {n_customers}")
    if transactions_per_customer < 1:
        raise ValueError(f"datagen: transactions_per_customer must be >= 1, got {transactions_per_customer}")
    if not 0.0 <= dirt_rate <= 0.5:
        raise ValueError(f"datagen: dirt_rate must be in [0, 0.5], got {dirt_rate}")


def default_partitions(n_customers: int, transactions_per_customer: int) -> int:
    """Partitions of the customer range: about ROWS_PER_PARTITION generated transactions each, at least 2."""
    return max(2, math.ceil(n_customers * transactions_per_customer * 1.2 / ROWS_PER_PARTITION))


def generate(spark: SparkSession, n_customers: int, transactions_per_customer: int, as_of: date, seed: int,
             dirt_rate: float = 0.0, num_partitions: int | None = None,
             persona_weights: Mapping[str, float] | None = None) -> GeneratedData:
    """Lazily define the synthetic tables; nothing runs until they are written or counted.

    `num_partitions` (default: `default_partitions`) only changes parallelism, never the rows.
    `persona_weights` sets the share of some personas (see `persona_shares`), e.g. {"dormant": 0.7}.
    """
    _validate(n_customers, transactions_per_customer, dirt_rate)
    shares = persona_shares(persona_weights)
    partitions = num_partitions or default_partitions(n_customers, transactions_per_customer)
    stride = 10 ** len(str(max_transactions_per_customer(transactions_per_customer)))
    plan_df = _customer_plan(spark, n_customers, transactions_per_customer, as_of, seed, partitions, shares)
    tx_df = _base_transactions(plan_df, as_of, seed, stride)
    loan_plan_df = _loan_plan(plan_df, as_of, seed)
    payments_df = _loan_payments(loan_plan_df, as_of, seed)
    loans_df = _loans(loan_plan_df, payments_df, as_of)
    products_df = _products(plan_df, as_of, seed)
    customers_df = plan_df
    if dirt_rate > 0:
        customers_df = with_customer_dirt(plan_df, dirt_rate, seed)
        tx_df = with_transaction_dirt(tx_df, n_customers, stride, as_of, dirt_rate, seed)
        payments_df = with_payment_dirt(payments_df, dirt_rate, seed)
        products_df = with_product_dirt(products_df, dirt_rate, seed)
    transactions_df = tx_df.select(padded_id("T", F.col("tx_num"), TRANSACTION_ID_DIGITS).alias("transaction_id"),
                                   *TRANSACTION_COLUMNS[1:])
    return GeneratedData(
        customers=customers_df.select(*CUSTOMER_COLUMNS),
        transactions=transactions_df,
        loans=loans_df.select(*LOAN_COLUMNS),
        loan_payments=payments_df.select(*PAYMENT_COLUMNS),
        products=products_df.select(*PRODUCT_COLUMNS),
        truth=plan_df.select("customer_id", _PERSONA),
        dirt_rate=dirt_rate,
        seed=seed,
    )


def with_csv_junk(df: DataFrame, junk: dict[str, str], rate: float, seed: int) -> DataFrame:
    """Dates and timestamps as formatted text, and a share `rate` of the `junk` columns' values replaced."""
    row_key = F.xxhash64(*[F.col(c) for c in df.columns])
    columns = []
    for field in df.schema.fields:
        column = F.col(field.name)
        if isinstance(field.dataType, TimestampType):
            column = F.date_format(column, CSV_TIMESTAMP_FORMAT)
        elif isinstance(field.dataType, DateType):
            column = F.date_format(column, CSV_DATE_FORMAT)
        if field.name in junk:
            is_junk = uniform(seed, f"csv:{field.name}", F.col(_ROW_KEY)) < rate
            column = F.when(is_junk, F.lit(junk[field.name])).otherwise(column.cast("string"))
        columns.append(column.alias(field.name))
    return df.withColumn(_ROW_KEY, row_key).select(*columns)


def _write(df: DataFrame, path: str, fmt: str) -> None:
    writer = df.write.mode("overwrite")
    if fmt == "delta":
        writer.format("delta").option("overwriteSchema", "true").save(path)
    elif fmt == "parquet":
        writer.parquet(path)
    else:
        (writer.option("header", "true").option("dateFormat", CSV_DATE_FORMAT)
         .option("timestampFormat", CSV_TIMESTAMP_FORMAT).csv(path))


def write_dataset(data: GeneratedData, out_dir: str, fmt: str) -> None:
    """Write out_dir/<table> for the five inputs and out_dir/truth, all in `fmt`, replacing what was there.

    CSV has a header, dates yyyy-MM-dd and timestamps yyyy-MM-dd HH:mm:ss; with dirt, some CSV values are junk
    (CSV_JUNK). The truth table is written in the same format, never with junk.
    """
    if fmt not in FORMATS:
        raise ValueError(f"datagen: format must be one of {FORMATS}, got {fmt!r}")
    base = out_dir.rstrip("/")

    def write(item: tuple[str, DataFrame]) -> None:
        table, df = item
        if fmt == "csv" and data.dirt_rate > 0 and table != TRUTH_TABLE:
            df = with_csv_junk(df, CSV_JUNK.get(table, {}), data.dirt_rate / 2, data.seed)
        _write(df, f"{base}/{table}", fmt)
        log.info("wrote %s/%s (%s)", base, table, fmt)

    # Every table is a pure function of its keys, computed from nothing shared: they can be written at once.
    in_parallel(write, [*data.inputs().items(), (TRUTH_TABLE, data.truth)])


def read_table(spark: SparkSession, path: str, fmt: str) -> DataFrame:
    """Read back one table written by `write_dataset` (CSV: every column as text, as written)."""
    if fmt not in FORMATS:
        raise ValueError(f"datagen: format must be one of {FORMATS}, got {fmt!r}")
    if fmt == "csv":
        return spark.read.option("header", "true").csv(path)
    return spark.read.format(fmt).load(path)
