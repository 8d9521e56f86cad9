"""Rule evaluate: one machine coder against the gold standard (textgauge.steps.validate.evaluate)."""
from textgauge.steps import run
from textgauge.steps.validate import evaluate

run(evaluate, snakemake, "evaluate {model}")
