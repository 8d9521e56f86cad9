"""Rule train_encoder: fine-tune an encoder (textgauge.steps.finetune.train_encoder)."""
from textgauge.steps import finetune, run

run(finetune.train_encoder, snakemake, "train {model}")
