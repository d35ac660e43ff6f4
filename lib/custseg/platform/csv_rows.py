"""Rows of a CSV file that a quote left open took into another row's value: given back as rows of their own.

Read with `multiLine` (quoted fields may span lines), a field that opens a quote and never closes it takes
every line up to the next quote into its value: those rows vanish into one record, which may even have the
right field count. Each such line that reads as a row (at least as many fields as the header) becomes a row
again, with its fields as the header names them, marked malformed: the rows are counted and rejected with
their own ids, and the record that opened the quote is marked too. Nothing vanishes into one value.
"""
from __future__ import annotations

from pyspark.sql import Column as SparkColumn
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

TAKEN_IN = "_taken_in"  # why a record is malformed when its field count is not the reason, else null
_POSITION = "_position"
_LINE = "_line"
# Spark's CSV options that change how one line splits into fields: from_csv must split the lines as the file was.
_LINE_OPTIONS = ("sep", "delimiter", "quote", "escape", "chartoescapequoteescaping", "ignoreleadingwhitespace",
                 "ignoretrailingwhitespace", "nullvalue", "emptyvalue")


def split_rows_taken_into_quotes(df: DataFrame, corrupt_column: str, options: dict[str, str]) -> DataFrame:
    """`df` (every column text, `corrupt_column` last) with each row hidden in a quoted value as a row of its own.

    Adds TAKEN_IN: for the record whose value took rows in, how many; for each row given back, that it was
    taken in; null elsewhere. Both kinds of row also get `corrupt_column` set, so they are rejected as malformed.
    """
    fields = [c for c in df.columns if c != corrupt_column]
    lowered = {key.lower(): value for key, value in options.items()}  # Spark's option names ignore case
    sep = lowered.get("sep", lowered.get("delimiter", ","))
    # A malformed record's raw text, else its fields joined again: a line split between a quoted value and the
    # fields after it is whole again either way.
    text = F.coalesce(F.col(f"`{corrupt_column}`"), F.concat_ws(sep, *[F.col(f"`{c}`") for c in fields]))
    lines = _lines_read_as_rows(text, sep, len(fields))
    exploded = df.select("*", F.posexplode(F.concat(F.array(F.lit(None).cast("string")), lines))
                         .alias(_POSITION, _LINE), F.size(lines).alias("_taken"))
    schema = ", ".join(f"`{c.replace('`', '``')}` STRING" for c in fields)
    line_options = {key: value for key, value in options.items() if key.lower() in _LINE_OPTIONS}
    parsed = F.from_csv(F.col(_LINE), schema, line_options)
    given_back = F.col(_POSITION) > 0
    took_in = (F.col(_POSITION) == 0) & (F.col("_taken") > 0)
    taken_in = (F.when(given_back, F.lit("a line inside a quote left open on an earlier row"))
                .when(took_in, F.format_string("a quote left open here took in %d lines that read as rows",
                                               F.col("_taken"))))
    corrupt = (F.when(given_back, F.col(_LINE))
               .when(took_in, F.coalesce(F.col(f"`{corrupt_column}`"), F.lit("")))
               .otherwise(F.col(f"`{corrupt_column}`")))
    return exploded.select(*[F.when(given_back, parsed[c]).otherwise(F.col(f"`{c}`")).alias(c) for c in fields],
                           corrupt.alias(corrupt_column), taken_in.alias(TAKEN_IN))


def _lines_read_as_rows(value: SparkColumn, sep: str, field_count: int) -> SparkColumn:
    """The lines after the text's first that hold at least `field_count` fields."""
    following = F.slice(F.split(value, r"\r?\n"), 2, 1 << 30)
    pieces = f"\\Q{sep}\\E"  # the separator as literal text in Java's regex
    rows = F.filter(following, lambda line: F.size(F.split(line, pieces)) >= field_count)
    return F.when(value.contains("\n"), rows).otherwise(F.array().cast("array<string>"))
