"""Customer segmentation on Spark: installable library (lib/custseg) plus jobs."""
from setuptools import find_packages, setup

setup(
    name="custseg",
    version="0.1.0",
    description="Customer segmentation with K-means on Spark, Delta outputs for BI",
    python_requires=">=3.11",
    # custseg is what jobs need (the --py-files zip carries only it); custseg_sample is the data generator;
    # benchmarks holds the benchmark's workloads, floors and peer, run by scripts/benchmark.py.
    package_dir={"": "lib", "benchmarks": "benchmarks"},
    packages=[*find_packages("lib"), "benchmarks"],
    package_data={"custseg": ["py.typed", "bi/sql/*.sql", "report/templates/*.j2", "platform/log4j2.properties"]},
    install_requires=[
        # Spark 4.2 + Delta 4.4.0: the newest pair whose Delta jar
        # (io.delta:delta-spark_4.2_2.13:4.4.0) resolves from Maven Central.
        "pyspark==4.2.0",
        "delta-spark==4.4.0",
        "pyyaml>=6",
        "pydantic>=2.6",
        "pandas>=2.2,<3",  # pyspark 4.2 supports pandas 2.x
        "numpy>=1.26",
        "pyarrow>=15",
        "matplotlib>=3.8",
        "jinja2>=3.1",  # the report page template
        "scikit-learn>=1.4",  # the K sweep on the bounded sample, on the driver
    ],
    entry_points={"console_scripts": ["custseg=custseg.cli:main"]},
    extras_require={
        # pytest 9 ignores the groups pytest-xdist 3.8 gives tests (its --dist loadgroup sends them anywhere).
        "test": ["pytest>=8,<9", "pytest-xdist>=3.5", "chispa>=0.10", "deltalake>=0.20", "mlflow-skinny>=2.10"],
        "mlflow": ["mlflow-skinny>=2.10"],  # optional tracking of training runs (config tracking.uri)
    },
)
