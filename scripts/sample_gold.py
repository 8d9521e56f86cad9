"""Rule sample_gold: the stratified, seeded gold-standard sample (textgauge.steps.gold.sample_gold)."""
from textgauge.steps import gold, run

run(gold.sample_gold, snakemake, "draw the gold sample")
