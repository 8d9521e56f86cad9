"""Rule spend: planned against actual tokens, cost and GPU hours (textgauge.steps.plan.spend)."""
from textgauge.steps import plan, run

run(plan.spend, snakemake, "sum the spend of the run")
