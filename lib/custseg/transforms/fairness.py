"""The fairness audit: how each protected group fares in the segments' credit decisions (docs/model.md, Fairness).

Protected attributes never enter the features or any other output; they are read from the customers table
here only. For each attribute and group, overall and per segment: the count and share, the share in a segment
with a favourable credit action (risk tier low: pre-approval and the best rate band) and with an adverse one
(tier high: manual review, tighter limits, no credit offers), and two disparity ratios against the
best-treated group: of favourable shares, and of shares spared an adverse action (1 - adverse share). The
four-fifths rule flags a group when either is below 0.8. Groups smaller than the configured minimum are
suppressed: their row says so, with no count or share.
"""
from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from custseg.transforms.attributes import AGE_BAND, AGE_SOURCES, AgeSource

FAVOURABLE_TIERS = ("low",)
ADVERSE_TIERS = ("high",)
FOUR_FIFTHS = 0.8
AUDIT_SCHEMA = ("attribute string, group string, segment_id int, segment_name string, customers long, "
                "share double, favourable_share double, adverse_share double, disparity_ratio double, "
                "adverse_disparity_ratio double, "
                "is_flagged boolean, is_suppressed boolean")
AUDIT_COLUMNS = tuple(part.split()[0] for part in AUDIT_SCHEMA.split(", "))
# A suppressed group's row shows only that it exists: none of these.
SUPPRESSED_COLUMNS = ("customers", "share", "favourable_share", "adverse_share", "disparity_ratio",
                      "adverse_disparity_ratio")


def audited_attributes(columns: list[str], protected: tuple[str, ...],
                       mapped: dict[str, str] | None = None) -> dict[str, str | AgeSource]:
    """attribute -> source column, for the protected attributes the table has: a contract column through its
    mapping (`mapped`: contract name -> source column, e.g. birth_date held in CustomerDOB), any other by its
    name (names compared case-folded); a birth date, else an age, becomes age_band, unless the table holds an
    age_band of its own."""
    by_name = {c.strip().casefold(): c for c in columns}
    by_contract = {name.casefold(): column for name, column in (mapped or {}).items()}
    wanted = dict.fromkeys(p.strip().casefold() for p in protected)  # in the configuration's order
    found = {name: by_contract.get(name) or by_name.get(name) for name in wanted}
    present = {name: column for name, column in found.items() if column}
    attributes = {name: column for name, column in present.items() if name not in AGE_SOURCES}
    age = next((AgeSource(present[a], a != "age") for a in AGE_SOURCES if a in present), None)
    return ({AGE_BAND: age} if age else {}) | attributes


def fairness_audit(groups_df: DataFrame, assignments_df: DataFrame, min_group_size: int) -> DataFrame:
    """AUDIT_SCHEMA rows from attributes.attribute_groups and customer_id, segment_id, segment_name, risk_tier: overall
    (segment_id null) and per segment."""
    joined_df = groups_df.join(assignments_df, on="customer_id", how="inner").withColumns({
        "_favourable": F.col("risk_tier").isin(*FAVOURABLE_TIERS).cast("int"),
        "_adverse": F.col("risk_tier").isin(*ADVERSE_TIERS).cast("int"),
    })
    overall_df = _by_group(joined_df, []).withColumns({"segment_id": F.lit(None).cast("int"),
                                                       "segment_name": F.lit("all customers")})
    counted_df = overall_df.unionByName(_by_group(joined_df, ["segment_id", "segment_name"]))
    scope = Window.partitionBy("attribute", "segment_id")
    shown = F.col("customers") >= min_group_size

    def against_best(rate: Column) -> Column:
        best = F.max(F.when(shown, rate)).over(scope)
        return F.when(shown & (best > 0), rate / best)

    favourable = against_best(F.col("favourable_share"))
    # Where no group met an adverse action, every group is spared by default: no ratio, as for favourable ones.
    any_adverse = F.max(F.when(shown, F.col("adverse_share"))).over(scope) > 0
    spared = F.when(any_adverse, against_best(1 - F.col("adverse_share")))
    audited_df = counted_df.withColumns({
        "share": F.col("customers") / F.sum("customers").over(scope),
        "disparity_ratio": favourable,
        "adverse_disparity_ratio": spared,
        "is_flagged": F.coalesce((favourable < FOUR_FIFTHS) | (spared < FOUR_FIFTHS), F.lit(False)),
        "is_suppressed": ~shown,
    })
    return audited_df.select(*[F.when(shown, F.col(c)).alias(c) if c in SUPPRESSED_COLUMNS else F.col(c)
                               for c in AUDIT_COLUMNS])


def _by_group(joined_df: DataFrame, keys: list[str]) -> DataFrame:
    return joined_df.groupBy("attribute", "group", *keys).agg(
        F.count("*").alias("customers"), F.avg("_favourable").alias("favourable_share"),
        F.avg("_adverse").alias("adverse_share"))
