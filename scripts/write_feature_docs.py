"""Write docs/features.md from custseg.contract.features.FEATURES (the single source of the definitions)."""
from __future__ import annotations

from pathlib import Path

from custseg.contract.features import DESCRIPTIVE_COLUMNS, FEATURES, null_rule

ROOT = Path(__file__).resolve().parents[1]

HEADER = """# Customer features

One row per customer signed up before the as-of date, in the Delta table `customer_features`
(partitioned by `as_of_date`). Only events strictly before the as-of date count (transactions by
`transaction_ts` < as-of 00:00 UTC, loans by `origination_date`, payments by `due_date`; a payment paid
on or after the as-of date counts as unpaid then). The lookback window (`features.lookback_days`, default
365), the trend window (`features.trend_window_days`, 90), the late-payment window (365) and the default
threshold (90 days past due) come from the config. A purchase is a transaction with amount > 0, a refund
one with amount < 0 (zero amounts are rejected at validation).

How it is computed: transactions are scanned and shuffled once, and only the columns the features
need cross the shuffle (customer, time, amount, category, a digital-channel flag and a 64-bit hash of
the transaction id that orders transactions with equal timestamps). A window partitioned by customer
and ordered by time gives each purchase its gap since the previous purchase and whether it is the first
of its calendar month; then a two-level grouped aggregation (customer x category, then customer), on the
same partitioning and so without another shuffle, gives every other transaction feature with
conditional sums, including the category mix and the active months (a count of month starts).
Loans and payments are aggregated separately and joined. No Python UDFs.

Customers without transactions get 0 for counts and amounts, `recency_days` = `tenure_days` and null
for ratios and gaps; customers without loans get 0 for loan counts and days past due and null rates.
Without a loans table every loan feature is null for everyone, and with loans but no loan_payments table
every repayment feature (utilisation, on-time rate, days past due, late payments) is: no evidence is
never a 0 that reads as good repayment. A loan's `status` is the loans table's, as of its extraction: for an
as-of date well before that, `has_default` can tell of a default that came later (the payments' days past due
are point-in-time; the status is not). Protected attributes (birth date, sex...) are never features.

## Missing versus not applicable

A null in `customer_features` means one of two things, and the clustering model (docs/model.md) treats them
differently; the table keeps the null either way, so segment statistics are over the customers for whom
the feature is defined.

- **Not applicable**: the feature is undefined by construction (no gap without a second purchase, no on-time
  rate without a payment due). The model gives it the defined value in the last column
  (`custseg.contract.features.NOT_APPLICABLE`), which keeps its meaning: a one-time buyer gets a gap of
  the lookback window, "no repeat purchase within it", with `is_repeat_buyer` = 0; a non-borrower gets an
  on-time rate of 1, "nothing was late" as its `max_dpd` of 0 says, and `n_loans` = 0 tells it from a
  borrower. Never the median of the customers for whom it is defined: on real data 78 % of the customers
  were one-time buyers, and the median gap of the repeat buyers made them look like regular ones.
- **Unknown**: the inputs did not give the value (`annual_income`, `credit_score` null in the customers
  table; purchases none of whose channel is known). The model imputes the exact median of the training
  customers (the mean of the two middle values for an even count), learned once and saved with the model.
- A feature null for every customer (no loans table; transactions without a channel column) is left out of
  the clustering and listed in `runs.metrics_json.features_dropped`.

Sums are exact, so a feature does not depend on how rows are partitioned (local mode, a cluster, any number
of shuffle partitions): transaction amounts are summed as whole 1/10,000ths of the currency unit (each amount
rounded to 4 decimals) and purchase gaps as whole seconds; loan amounts as decimals.

| feature | definition | unit | when null (clustering model) |
|---|---|---|---|
"""

rows = [f"| `{name}` | {definition} | {unit} | {null_rule(name)} |" for name, (definition, unit) in FEATURES.items()]
KINDS = {"spend_by_category": "array of (category, amount)", "products_held": "array of text"}
rows += [f"| `{name}` | {comment} | {KINDS.get(name, 'text')} | not a clustering feature |"
         for name, comment in DESCRIPTIVE_COLUMNS.items()]
(ROOT / "docs" / "features.md").write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
