"""Generate the synthetic customer-segmentation dataset (customers, transactions, loans, payments, truth).

Example, from the repository root:
    .venv/bin/python scripts/generate_data.py --customers 1000 --out /tmp/gen
    .venv/bin/python scripts/generate_data.py --customers 1000 --persona-weights dormant=0.7 --out /tmp/dormant
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from datetime import date

from custseg_sample import datagen

from custseg.config import SparkConf
from custseg.contract.inputs import INPUT_TABLES
from custseg.platform.session import build_session

log = logging.getLogger("generate_data")


def persona_weights(text: str) -> dict[str, float]:
    """"dormant=0.7,new_customer=0.1" -> {"dormant": 0.7, "new_customer": 0.1}, checked by datagen.persona_shares."""
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected persona=share, got {item!r}") from None
    try:
        datagen.persona_shares(weights)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("datagen: ")) from None
    return weights


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_mix = ",".join(f"{name}={share:g}" for name, share in datagen.DEFAULT_PERSONA_WEIGHTS.items())
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000, help="number of customers (default 1000)")
    parser.add_argument("--transactions-per-customer", type=int, default=25,
                        help="average transactions per customer; personas scale it (default 25)")
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2024, 6, 30),
                        help="snapshot date YYYY-MM-DD: clean events are strictly before it (default 2024-06-30)")
    parser.add_argument("--seed", type=int, default=42, help="same seed, same rows (default 42)")
    parser.add_argument("--dirt-rate", type=float, default=0.0,
                        help="share of dirty rows per kind of dirt, 0 = clean (default 0)")
    parser.add_argument("--persona-weights", type=persona_weights, default=None, metavar="PERSONA=SHARE,...",
                        help="shares of some personas, e.g. dormant=0.7; the others share the rest in their usual "
                             f"proportions (default {default_mix})")
    parser.add_argument("--format", choices=datagen.FORMATS, default="delta", help="output format (default delta)")
    parser.add_argument("--out", required=True, help="output directory; each table goes to <out>/<table>")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument("--partitions", type=int, default=None,
                        help="partitions of the customer range (default: about one per million transactions)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    spark = build_session(SparkConf(master=args.master, app_name="generate", shuffle_partitions=8,
                                    driver_memory="4g", use_delta_pip=True, extra={}))
    try:
        started = time.monotonic()
        data = datagen.generate(spark, args.customers, args.transactions_per_customer, args.as_of, args.seed,
                                args.dirt_rate, num_partitions=args.partitions, persona_weights=args.persona_weights)
        datagen.write_dataset(data, args.out, args.format)
        log.info("wrote %s data to %s in %.1fs", args.format, args.out, time.monotonic() - started)
        for table in (*INPUT_TABLES, datagen.TRUTH_TABLE):
            df = datagen.read_table(spark, f"{args.out.rstrip('/')}/{table}", args.format)
            log.info("%-14s %12d rows", table, df.count())
            if table == datagen.TRUTH_TABLE:
                for row in df.groupBy("persona").count().orderBy("persona").collect():
                    log.info("  %-16s %10d customers", row["persona"], row["count"])
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
