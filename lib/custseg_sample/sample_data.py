"""The built-in sample data: generated once from the conf's sample_data section when missing."""
from __future__ import annotations

import logging

from pyspark.sql import SparkSession

from custseg.config import Config
from custseg.contract.inputs import INPUT_TABLES
from custseg.platform.locations import join_uri
from custseg.platform.storage import path_exists

log = logging.getLogger(__name__)


def ensure_sample_data(spark: SparkSession, conf: Config) -> bool:
    """Generate the sample inputs (and the hidden personas under <path>/truth) unless every one is already there
    in the configured format (sample data of an earlier release may lack a table added since, or be Delta tables
    where Parquet is asked for now: it is generated again)."""
    sample = conf.sample_data
    if sample is None:
        raise ValueError("config: --generate-sample needs a 'sample_data' section")

    def there(table: str) -> bool:
        location = join_uri(sample.path, table)
        is_delta = path_exists(spark, join_uri(location, "_delta_log"))
        return path_exists(spark, location) and is_delta == (sample.format == "delta")

    if all(there(table) for table in INPUT_TABLES):
        log.info("sample data already at %s", sample.path)
        return False
    from custseg_sample.datagen import generate, write_dataset

    data = generate(spark, sample.customers, sample.transactions_per_customer, conf.as_of_date, conf.seed,
                    sample.dirt_rate)
    write_dataset(data, sample.path, sample.format)
    log.info("generated sample data for %d customers at %s", sample.customers, sample.path)
    return True
