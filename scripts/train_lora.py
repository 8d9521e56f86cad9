"""Rule train_lora: LoRA / QLoRA fine-tuning of a decoder (see textgauge.training.lora)."""
from pathlib import Path

from textgauge.logs import friendly_errors

with friendly_errors(f"train {snakemake.wildcards.model}", snakemake.log[0]):
    import torch

    from textgauge.training.lora import train_lora_stage

    torch.set_num_threads(snakemake.threads)
    train_lora_stage(snakemake.input.train, snakemake.input.val, snakemake.input.sample,
                     snakemake.params.labels, snakemake.params.model_cfg,
                     snakemake.params.codebook, snakemake.params.instructions,
                     str(Path(snakemake.output.adapter).parent), snakemake.output.summary,
                     config=snakemake.config)
