"""Rule train_lora: LoRA / QLoRA fine-tuning of a decoder (textgauge.steps.lora.train_lora)."""
from textgauge.steps import lora, run

run(lora.train_lora, snakemake, "train {model}")
