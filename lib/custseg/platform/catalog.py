"""Register the Delta outputs as tables of a catalog database (config `output.database`).

The tables stay path-based Delta tables; registering adds a name that BI tools and SQL users can
browse (`SHOW TABLES IN custseg`), with the comments stored in the Delta log.
"""
from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from custseg.config import Config
from custseg.contract.outputs import OUTPUT_TABLES
from custseg.platform.locations import absolute_location
from custseg.platform.storage import delta_exists

log = logging.getLogger(__name__)


def register_outputs(spark: SparkSession, conf: Config) -> list[str]:
    """Create the database and one external table per existing output; return the registered names."""
    database = conf.output_database
    if not database:
        return []
    spark.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    registered = []
    for table in OUTPUT_TABLES:
        path = conf.table_path(table)
        if not delta_exists(spark, path):
            continue
        location = absolute_location(path).replace("'", "\\'")
        spark.sql(f"CREATE TABLE IF NOT EXISTS `{database}`.`{table}` USING DELTA LOCATION '{location}'")
        registered.append(f"{database}.{table}")
    log.info("registered %d tables in database %s", len(registered), database)
    return registered
