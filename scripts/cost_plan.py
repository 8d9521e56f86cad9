"""Rule cost_plan: tokens, money and GPU-hours of every machine coder, before running them (textgauge.steps.plan.cost_plan)."""
from textgauge.steps import plan, run

run(plan.cost_plan, snakemake, "plan the costs")
