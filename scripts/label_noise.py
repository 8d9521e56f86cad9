"""Rule label_noise: review sheet of suspicious training labels (textgauge.steps.lora.label_noise)."""
from textgauge.steps import lora, run

run(lora.label_noise, snakemake, "check the training labels for noise")
