"""Rule replication: the replication package (textgauge.steps.replication.replication)."""
from textgauge.steps import replication, run

run(replication.replication, snakemake, "write the replication package")
