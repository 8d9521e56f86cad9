"""Rule gather_predictions: one predictions table per model, with its manifest (textgauge.steps.infer.gather_predictions)."""
from textgauge.steps import infer, run

run(infer.gather_predictions, snakemake, "gather {model}")
