"""Build the SparkSession from config: one place for local mode, tests and the cluster."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator

from pyspark import SparkContext, StorageLevel
from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from custseg.config import Config, SparkConf
from custseg.platform.driver_jvm import DriverJvm, driver_jvm
from custseg.platform.jars import jars_dir, resolved_jars

log = logging.getLogger(__name__)

SHUFFLE_PARTITIONS = "spark.sql.shuffle.partitions"
DRIVER_OPTIONS = "spark.driver.defaultJavaOptions"
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
    # Without Hadoop's native library, each file created or renamed on a local disk starts a chmod or readlink
    # process. Local (file:) paths skip Hadoop's .crc side files, and Delta's checksum file, on any store, is
    # renamed through FileSystem calls, which start none: half the processes per commit (benchmarks/README.md).
    "spark.hadoop.fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "org.apache.hadoop.fs.local.RawLocalFs",
    # A stage whose generated method is too long for the JVM's JIT (8,000 bytes of bytecode) runs operator by
    # operator instead, each compiled; else it would run in the bytecode interpreter (Spark's own advice for
    # HotSpot; benchmarks/README.md).
    "spark.sql.codegen.hugeMethodLimit": "8000",
    # PySpark's DataFrame debugging records the Python call site of every DataFrame, Column and function call (a
    # stack walk and four more round trips to the JVM each), only to name that line in a failed query's message:
    # off, a flow makes half the calls to the JVM (benchmarks/README.md). Errors keep their message and traceback.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
    "spark.sql.streaming.checkpointFileManagerClass":
        "org.apache.spark.sql.execution.streaming.checkpointing.FileSystemBasedCheckpointFileManager",
}


def session_conf(conf: SparkConf) -> dict[str, str]:
    """All Spark settings the session gets, in the order they are applied."""
    settings = {**DELTA_CONF, **BASE_CONF, SHUFFLE_PARTITIONS: str(conf.shuffle_partitions)}
    if conf.driver_memory:
        settings["spark.driver.memory"] = conf.driver_memory
    settings.update(conf.extra)
    return settings


def build_session(conf: SparkConf, jvm: DriverJvm | None = None) -> SparkSession:
    """Create (or reuse) the session described by the config, with Delta enabled.

    The driver JVM, when this starts one, is `jvm` (default: custseg.platform.driver_jvm's choice for the
    config): its JDK, Spark's logging and its ahead-of-time cache; the config's own options come after (they
    win). With `use_delta_pip` the Delta jars come from the folder scripts/setup_env.sh filled
    (custseg.platform.jars), or are resolved through Ivy when it is missing; on a cluster spark-submit
    brings them (scripts/submit.sh).
    """
    # Python workers must use this interpreter (the virtualenv), not whatever python3 is on the PATH.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    jvm = jvm or driver_jvm(conf.jvm_cache)
    starts_jvm = SparkContext._gateway is None
    if jvm.java_home and starts_jvm:  # Spark's launcher runs $JAVA_HOME/bin/java
        os.environ["JAVA_HOME"] = jvm.java_home
    builder = SparkSession.builder.appName(conf.app_name)
    if conf.master:
        builder = builder.master(conf.master)
    settings = session_conf(conf)
    settings[DRIVER_OPTIONS] = " ".join(filter(None, [*jvm.options, settings.get(DRIVER_OPTIONS)]))
    for key, value in settings.items():
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
    log.info("Spark %s session up, master=%s, Java %s%s", spark.version, spark.sparkContext.master,
             spark._jvm.java.lang.System.getProperty("java.version"),
             f", started from the AOT cache {jvm.cache}" if jvm.cache and starts_jvm else "")
    return spark


# Our own session setting, not Spark's: what cache_scope keeps is a local checkpoint (see Cache). A query that
# reads one is planned from the rows it holds, not from the inputs' reads and rules behind them
# (benchmarks/README.md).
LOCAL_CHECKPOINTS = "custseg.cache.localCheckpoints"

# On small inputs Spark runs each query as planned: expressions evaluated without generating Java for each query
# (compiling it costs more than it saves), and no adaptive re-planning between stages (it splits a query into
# more jobs, each planned again, to tune partition counts that do not matter at this size). The same results
# either way, the features' sums being exact (custseg.transforms.features); only speed differs
# (benchmarks/README.md).
SMALL_INPUT = {"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN",
               "spark.sql.adaptive.enabled": "false"}


def input_bytes(spark: SparkSession, conf: Config) -> int | None:
    """The size of the configured input files (a missing path counts 0); None when an input is a catalog table."""
    total = 0
    for table in conf.inputs.values():
        if table.path is None:
            return None
        path = spark._jvm.org.apache.hadoop.fs.Path(table.path)
        fs = path.getFileSystem(spark._jsc.hadoopConfiguration())
        if fs.exists(path):
            total += fs.getContentSummary(path).getLength()
    return total


def is_small_input(conf: Config, size: int | None) -> bool:
    """Whether inputs of `size` bytes get the SMALL_INPUT settings: smaller than spark.small_input_mb (0: never),
    and spark.conf sets none of those settings itself."""
    below = conf.spark.small_input_mb * 1024 * 1024
    return size is not None and size < below and not set(SMALL_INPUT) & set(conf.spark.extra)


def holds_local_checkpoints(conf: Config, size: int | None) -> bool:
    """Whether a run on inputs of `size` bytes keeps what it reuses as local checkpoints: smaller than
    spark.local_checkpoint_mb (0: never), and spark.conf does not decide it itself."""
    below = conf.spark.local_checkpoint_mb * 1024 * 1024
    return size is not None and size < below and LOCAL_CHECKPOINTS not in conf.spark.extra


def apply_small_input_settings(spark: SparkSession, conf: Config) -> None:
    """Give the session the SMALL_INPUT settings when the inputs are small (`is_small_input`), and at most one
    shuffle partition per core unless spark.conf sets spark.sql.shuffle.partitions; local checkpoints when they
    are under spark.local_checkpoint_mb (`holds_local_checkpoints`); else leave it."""
    if conf.spark.small_input_mb == 0 and conf.spark.local_checkpoint_mb == 0:
        return
    size = input_bytes(spark, conf)
    if holds_local_checkpoints(conf, size):
        spark.conf.set(LOCAL_CHECKPOINTS, "true")
        log.info("inputs of %.1f MB: what the run reuses is held as local checkpoints (spark.local_checkpoint_mb)",
                 size / 1024 / 1024)
    if is_small_input(conf, size):
        for key, value in SMALL_INPUT.items():
            spark.conf.set(key, value)
        # Without adaptive execution nothing merges small shuffle partitions, and each one is a task in every
        # stage that reads it: more partitions than cores only add tasks (benchmarks/README.md).
        if SHUFFLE_PARTITIONS not in conf.spark.extra:
            partitions = min(conf.spark.shuffle_partitions, spark.sparkContext.defaultParallelism)
            spark.conf.set(SHUFFLE_PARTITIONS, str(partitions))
        log.info("inputs of %.1f MB: interpreted expressions, no adaptive execution, %s shuffle partitions "
                 "(spark.small_input_mb)", size / 1024 / 1024, spark.conf.get(SHUFFLE_PARTITIONS))


class Cache:
    """Keeps DataFrames for the length of a cache_scope block; call it with a DataFrame to keep.

    By default a kept DataFrame is persisted (filled by its first action). In a session with LOCAL_CHECKPOINTS
    it is a local checkpoint, computed there and then: a query that reads it is planned from the rows held,
    not from the whole chain of reads and rules behind them, which on small inputs costs more than running
    it. A local checkpoint is not recomputed when an executor is lost, and holds a whole table: only runs on
    inputs under spark.local_checkpoint_mb take it. `counted` keeps a DataFrame and counts its rows; a local
    checkpoint counts them in its own job.
    """

    def __init__(self, spark: SparkSession) -> None:
        self.checkpoints = spark.conf.get(LOCAL_CHECKPOINTS, "false") == "true"
        self._persisted: list[DataFrame] = []
        self._checkpointed: list = []  # the JVM RDDs holding the local checkpoints' rows

    def __call__(self, df: DataFrame) -> DataFrame:
        if self.checkpoints:
            return self.cut_lineage(df)
        return self.persisted(df)

    def persisted(self, df: DataFrame) -> DataFrame:
        """df persisted, filled by its first action, in any session: for a small result whose first action
        plans it anyway (a write) and whose second reads it back."""
        self._persisted.append(df.persist(StorageLevel.MEMORY_AND_DISK))
        return self._persisted[-1]

    def counted(self, df: DataFrame) -> tuple[DataFrame, int]:
        """Keep df and count its rows: a local checkpoint counts them while it is computed, in the same job."""
        if not self.checkpoints:
            kept_df = self(df)
            return kept_df, kept_df.count()
        rows = Observation()
        kept_df = self.cut_lineage(df.observe(rows, F.count(F.lit(1)).alias("rows")))
        return kept_df, rows.get["rows"]

    def cut_lineage(self, df: DataFrame) -> DataFrame:
        """A local checkpoint of df in a session with LOCAL_CHECKPOINTS; else df as it is (read again where used)."""
        if not self.checkpoints:
            return df
        checkpoint_df = df.localCheckpoint(eager=True)
        self._checkpointed.append(checkpoint_df._jdf.queryExecution().analyzed().rdd())
        return checkpoint_df

    def release(self) -> None:
        for df in self._persisted:
            df.unpersist()
        for rdd in self._checkpointed:
            rdd.unpersist(False)


@contextlib.contextmanager
def cache_scope(spark: SparkSession) -> Iterator[Cache]:
    """Yield a Cache whose DataFrames are released when the block ends, also when it fails: a notebook or a
    driver that runs several jobs keeps no executor memory from a failed run."""
    cache = Cache(spark)
    try:
        yield cache
    finally:
        cache.release()
