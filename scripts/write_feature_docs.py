"""Write docs/features.md from custseg.contract.features.FEATURES (the single source of the definitions)."""
from __future__ import annotations

from pathlib import Path

from custseg.contract.features import DESCRIPTIVE_COLUMNS, FEATURES

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
Nulls are imputed with the median in the model pipeline. Protected attributes (birth date, sex...) are
never features.

| feature | definition | unit |
|---|---|---|
"""

rows = [f"| `{name}` | {definition} | {unit} |" for name, (definition, unit) in FEATURES.items()]
rows += [f"| `{name}` | {comment} | text |" for name, comment in DESCRIPTIVE_COLUMNS.items()]
(ROOT / "docs" / "features.md").write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
