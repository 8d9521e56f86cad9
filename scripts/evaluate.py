"""Rule evaluate: a machine coder against the gold standard (see textgauge.steps.validation)."""
from textgauge.logs import friendly_errors
from textgauge.steps import validation

with friendly_errors(f"evaluate {snakemake.wildcards.model}", snakemake.log[0]):
    validation.evaluate_stage(snakemake.wildcards.model, snakemake.input.predictions,
                              snakemake.input.reference, snakemake.input.codes,
                              snakemake.input.sample, snakemake.input.human,
                              snakemake.params.labels, snakemake.params.validation,
                              snakemake.params.strata, snakemake.params.seed,
                              {k: v for k, v in snakemake.output.items()})
