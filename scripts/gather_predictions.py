"""Rule gather_predictions: one predictions table per model, with its manifest."""
from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors(f"gather {snakemake.wildcards.model}", snakemake.log[0]):
    stages.gather_stage(list(snakemake.input.parts), snakemake.output.predictions,
                        snakemake.output.manifest, snakemake.wildcards.model,
                        snakemake.params.model_cfg, config=snakemake.config)
