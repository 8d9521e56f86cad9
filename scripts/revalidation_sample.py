"""Rule revalidation_sample: stage-5 sample and coding sheets (textgauge.steps.audit)."""
from textgauge.steps import run
from textgauge.steps.audit import revalidation_sample

run(revalidation_sample, snakemake, "draw the re-validation sample")
