"""Customer attributes as groups: one value per customer and attribute, for the fairness audit (protected
attributes) and the segments' descriptions (descriptive ones). A birth date or an age becomes an age band."""
from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

UNKNOWN_GROUP = "unknown"
# Minors are a band of their own (some banks' account holders include them), not unknown.
AGE_BANDS = ((0, "under 18"), (18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-54"), (55, "55-64"),
             (65, "65+"))
AGE_SOURCES = ("birth_date", "date_of_birth", "dob", "age")  # in order of preference for age_band
MAX_AGE = 120  # an older "age" is a placeholder birth date (1/1/1800 and the like), not a customer's age
AGE_BAND = "age_band"


def has_two_digit_years(date_format: str) -> bool:
    return "yy" in date_format and "yyyy" not in date_format


class AgeSource(NamedTuple):
    """A column an age band is derived from: a birth date, or an age in whole years."""
    column: str
    is_birth_date: bool


def age_band(age_years: Column) -> Column:
    """The band of an age in whole years; unknown when missing, negative (a birth date after the as-of date) or
    above MAX_AGE."""
    band = F.lit(UNKNOWN_GROUP)
    for low, label in AGE_BANDS:
        band = F.when(age_years >= low, F.lit(label)).otherwise(band)
    return F.when(age_years <= MAX_AGE, band).otherwise(F.lit(UNKNOWN_GROUP))


def attribute_groups(customers_df: DataFrame, id_column: str, attributes: dict[str, str | AgeSource],
                     as_of: dt.date, date_format: str = "yyyy-MM-dd") -> DataFrame:
    """customer_id, attribute, group: one row per customer and attribute present.

    `attributes` maps the attribute name to its source column. An AgeSource becomes an age band at the as-of
    date: a birth date (text in `date_format`, the customers table's, or ISO, or a date) or an age in years; any
    other value is its trimmed text (a band a table already holds stays as it is). A customer listed twice keeps
    the smallest group (deterministic); a missing value is the group "unknown".
    """
    groups = []
    for name, source in attributes.items():
        column = source.column if isinstance(source, AgeSource) else source
        text = F.trim(F.col(f"`{column}`").cast("string"))
        if isinstance(source, AgeSource) and source.is_birth_date:
            born = F.coalesce(F.try_to_date(text, date_format), text.try_cast("date"))  # the table's format, else ISO
            if has_two_digit_years(date_format):  # yy reads 2000-2099: a birth after the as-of date was a century back
                born = F.when(born > F.lit(as_of), F.add_months(born, -1200)).otherwise(born)
            group = age_band(F.floor(F.months_between(F.lit(as_of), born) / 12))
        elif isinstance(source, AgeSource):
            group = age_band(text.try_cast("double"))
        else:
            group = F.when(text != "", text).otherwise(F.lit(UNKNOWN_GROUP))
        groups.append(F.struct(F.lit(name).alias("attribute"), F.coalesce(group, F.lit(UNKNOWN_GROUP)).alias("group")))
    exploded = customers_df.select(F.trim(F.col(f"`{id_column}`").cast("string")).alias("customer_id"),
                                   F.explode(F.array(*groups)).alias("g"))
    return (exploded.groupBy("customer_id", "g.attribute").agg(F.min("g.group").alias("group"))
            .select("customer_id", "attribute", "group"))
