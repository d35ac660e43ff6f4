"""custseg: customer segmentation with K-means on Spark, Delta outputs for BI."""
