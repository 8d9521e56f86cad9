"""Rule train_baseline: fit a TF-IDF + logistic-regression baseline (textgauge.steps.finetune.train_baseline)."""
from textgauge.steps import finetune, run

run(finetune.train_baseline, snakemake, "fit baseline {model}")
