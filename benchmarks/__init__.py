"""Benchmark of the pipeline against the floor (one Spark aggregation) and a pandas + scikit-learn peer."""
