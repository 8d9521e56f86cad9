"""Rule revalidation_metrics: stage-5 metrics vs the gold set (textgauge.steps.audit)."""
from textgauge.steps import run
from textgauge.steps.audit import revalidation_metrics

run(revalidation_metrics, snakemake, "score the re-validation sample")
