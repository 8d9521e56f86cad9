"""Rule human_agreement: the human ceiling (see textgauge.steps.validation)."""
from textgauge.logs import friendly_errors
from textgauge.steps import validation

with friendly_errors("measure human agreement", snakemake.log[0]):
    validation.human_agreement_stage(
        snakemake.input.codes, snakemake.input.sample, snakemake.params.labels,
        snakemake.params.validation, snakemake.params.seed, snakemake.output.metrics,
        snakemake.output.pairwise, truth=snakemake.input.truth or None,
        simulated_coders=snakemake.input.coders or None)
