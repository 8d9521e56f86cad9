"""Rule train_encoder: fine-tune an encoder (see textgauge.training.encoder)."""
from pathlib import Path

from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors(f"train {snakemake.wildcards.model}", snakemake.log[0]):
    import torch

    torch.set_num_threads(snakemake.threads)
    stages.train_encoder_stage(snakemake.input.train, snakemake.input.val, snakemake.input.sample,
                               snakemake.params.labels, snakemake.params.model_cfg,
                               str(Path(snakemake.output.model).parent), snakemake.output.summary,
                               config=snakemake.config)
