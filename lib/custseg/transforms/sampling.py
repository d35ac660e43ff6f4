"""Seeded, layout-independent samples of customers: the same rows for a seed whatever the partitioning."""
from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

HASH_BUCKETS = 1 << 30


def seeded_rank(seed: int, key: str = "customer_id") -> Column:
    """A seeded hash of `key` in [0, HASH_BUCKETS): a fixed pseudo-random order of the rows."""
    return F.pmod(F.xxhash64(F.lit(seed), F.col(key)), F.lit(HASH_BUCKETS))


def bounded_sample(df: DataFrame, cap: int, seed: int, total: int | None = None,
                   key: str = "customer_id") -> DataFrame:
    """At most `cap` rows, the same ones on every call: those with the smallest seeded hash of `key`.

    The choice depends on neither partitioning nor Spark's sampler. The ordered limit is a per-partition
    top-N; when the row count is known, a filter on the same hash first keeps about 3 x cap rows, which
    changes nothing in the result unless fewer than cap rows pass (then fewer points are plotted).
    """
    ranked_df = df.withColumn("_sample_rank", seeded_rank(seed, key))
    if total and total > 3 * cap:
        ranked_df = ranked_df.filter(F.col("_sample_rank") < F.lit(int(HASH_BUCKETS * 3 * cap / total)))
    return ranked_df.orderBy("_sample_rank", key).limit(cap).drop("_sample_rank")


def sample_per_group(df: DataFrame, group: str, sizes: dict[int, int], cap: int, seed: int) -> DataFrame:
    """About `cap` rows of each group (all of a smaller one), the same on every call: a row is kept
    when its seeded hash, as a fraction, falls below cap / the group's size in `sizes`."""
    rates = {value: min(1.0, cap / size) for value, size in sizes.items() if size}
    if all(rate >= 1.0 for rate in rates.values()):
        return df
    rate_of = F.create_map(*[F.lit(v) for item in sorted(rates.items()) for v in item])
    return df.filter(seeded_rank(seed) < F.coalesce(rate_of[F.col(group)], F.lit(1.0)) * F.lit(HASH_BUCKETS))
