"""Rule split_training: train/validation split with the gold set held out (textgauge.steps.finetune.split_training)."""
from textgauge.steps import finetune, run

run(finetune.split_training, snakemake, "split the training data")
