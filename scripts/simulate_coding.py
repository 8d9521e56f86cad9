"""Rule simulate_coding: SYNTHETIC example only, simulated coders fill the sheets (textgauge.steps.gold.simulate_coding)."""
from textgauge.steps import gold, run

run(gold.simulate_coding, snakemake, "simulate the coders")
