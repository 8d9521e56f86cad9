"""Rules predict_shard / predict_gold: run one machine coder (see textgauge.steps.stages)."""
from pathlib import Path

from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors(f"run {snakemake.wildcards.model}", snakemake.log[0]):
    model_dir = None
    if snakemake.input.model:  # the training summary sits next to the model folder
        model_dir = str(Path(str(snakemake.input.model)).parent / "model")
    stages.predict_stage(snakemake.wildcards.model, snakemake.params.model_cfg,
                         snakemake.input.texts, snakemake.params.labels,
                         snakemake.params.codebook, snakemake.params.instructions,
                         snakemake.output.predictions, model_dir=model_dir,
                         checkpoint=snakemake.params.checkpoint,
                         local_only=snakemake.params.local_only, seed=snakemake.params.seed,
                         threads=snakemake.threads, batch_size=snakemake.params.batch_size,
                         label_order=snakemake.params.get("label_order"),
                         few_shot_pool=snakemake.input.get("few_shot_pool") or None)
