"""Build the SparkSession from config: one place for local mode, tests and the cluster."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from custseg.config import SparkConf
from custseg.platform.jars import jars_dir, resolved_jars

log = logging.getLogger(__name__)

DELTA_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
}

# Defaults sized for a small machine; the YAML's spark.conf overrides any of them.
BASE_CONF = {
    "spark.sql.adaptive.enabled": "true",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    # Dates and timestamps must not depend on the machine's zone: outputs are identical everywhere.
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
    "spark.ui.showConsoleProgress": "false",
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
}


def session_conf(conf: SparkConf) -> dict[str, str]:
    """All Spark settings the session gets, in the order they are applied."""
    settings = {**DELTA_CONF, **BASE_CONF, "spark.sql.shuffle.partitions": str(conf.shuffle_partitions)}
    if conf.driver_memory:
        settings["spark.driver.memory"] = conf.driver_memory
    settings.update(conf.extra)
    return settings


def build_session(conf: SparkConf) -> SparkSession:
    """Create (or reuse) the session described by the config, with Delta enabled.

    With `use_delta_pip` the Delta jars come from the folder scripts/setup_env.sh filled
    (custseg.platform.jars), or are resolved through Ivy when it is missing; on a cluster spark-submit
    brings them (scripts/submit.sh).
    """
    # Python workers must use this interpreter (the virtualenv), not whatever python3 is on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # Spark's own logging at WARN (log4j2.properties beside this module), unless the user has a conf dir.
    os.environ.setdefault("SPARK_CONF_DIR", os.path.dirname(os.path.abspath(__file__)))
    builder = SparkSession.builder.appName(conf.app_name)
    if conf.master:
        builder = builder.master(conf.master)
    for key, value in session_conf(conf).items():
        builder = builder.config(key, value)
    if conf.use_delta_pip:
        jars = resolved_jars()
        if jars:
            builder = builder.config("spark.jars", ",".join(jars))
        else:
            log.warning("Delta's jars are not in %s: resolving them through Ivy (scripts/setup_env.sh does it once)",
                        jars_dir())
            from delta import configure_spark_with_delta_pip

            builder = configure_spark_with_delta_pip(builder)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    log.info("Spark %s session up, master=%s", spark.version, spark.sparkContext.master)
    return spark


Persist = Callable[[DataFrame], DataFrame]


@contextlib.contextmanager
def cache_scope() -> Iterator[Persist]:
    """Yield a function that persists a DataFrame for the length of the block.

    Every DataFrame it persisted is released when the block ends, also when it fails: a notebook or
    a driver that runs several jobs keeps no executor memory from a failed run.
    """
    persisted: list[DataFrame] = []

    def persist(df: DataFrame) -> DataFrame:
        persisted.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return persisted[-1]

    try:
        yield persist
    finally:
        for df in persisted:
            df.unpersist()
