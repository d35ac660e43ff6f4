"""BI views over the Delta outputs: the SELECTs in custseg/sql/*.sql, rendered for one output location.

The SQL files read path-based tables (delta.`${output}/segment_profiles`), so any Spark SQL endpoint
(Spark Thrift server, Databricks SQL with paths) can use them as they are once `${output}` is filled in.
"""
from __future__ import annotations

import logging
import pkgutil

from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

VIEWS = ("segment_overview", "customer_lookup", "segment_history", "k_selection_record")
PLACEHOLDER = "${output}"


def sql_text(name: str) -> str:
    """The unrendered SELECT of one view."""
    if name not in VIEWS:
        raise ValueError(f"unknown BI view {name!r}; known views: {', '.join(VIEWS)}")
    # Package data: found the same way in a checkout, an installed wheel and the --py-files zip.
    return pkgutil.get_data(__package__ or "custseg", f"sql/{name}.sql").decode("utf-8")


def render_sql(name: str, output_path: str) -> str:
    """The view's SELECT with `${output}` replaced by the output location (a path or URI, no backticks)."""
    if "`" in output_path:
        raise ValueError(f"output path {output_path!r} contains a backtick, which cannot be quoted in SQL")
    return sql_text(name).replace(PLACEHOLDER, output_path.rstrip("/"))


def create_views(spark: SparkSession, output_path: str, names: tuple[str, ...] = VIEWS) -> list[str]:
    """Create (or replace) the views as temporary views in the session; returns their names.

    SQL temporary views keep their text, not a resolved plan, so they show the newest Delta version
    each time they are queried.
    """
    for name in names:
        spark.sql(f"CREATE OR REPLACE TEMPORARY VIEW {name} AS\n{render_sql(name, output_path)}")
        log.info("temporary view %s over %s", name, output_path)
    return list(names)
