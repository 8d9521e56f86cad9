"""Rule revalidation_sample: stage-5 sample and coding sheets (textgauge.stats.prevalence)."""
from textgauge.logs import friendly_errors
from textgauge.steps import audit_stages

with friendly_errors("draw the re-validation sample", snakemake.log[0]):
    audit_stages.revalidation_stage(
        snakemake.params.model, snakemake.input.predictions, snakemake.input.corpus,
        snakemake.input.sample, snakemake.input.train or None, snakemake.params.n,
        snakemake.params.strata, snakemake.params.coders, snakemake.params.seed,
        snakemake.output.sample, list(snakemake.output.sheets))
