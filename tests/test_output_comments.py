"""Every column of every output carries a comment, and every table a description: BI users see them."""
from __future__ import annotations

import pytest

from custseg.contract import outputs
from custseg.platform.locations import absolute_location
from custseg.platform.storage import read_delta


@pytest.mark.parametrize("table", outputs.OUTPUT_TABLES)
def test_every_column_of_every_output_has_a_comment(spark, golden, table):
    schema = read_delta(spark, golden.conf.table_path(table)).schema
    missing = [field.name for field in schema.fields if not field.metadata.get("comment")]
    assert missing == [], f"{table}: columns without a comment: {missing}"


@pytest.mark.parametrize("table", outputs.OUTPUT_TABLES)
def test_every_output_table_has_a_description(spark, golden, table):
    location = absolute_location(golden.conf.table_path(table))
    detail = spark.sql(f"DESCRIBE DETAIL delta.`{location}`").first()
    assert detail["description"], f"{table} has no table comment"
