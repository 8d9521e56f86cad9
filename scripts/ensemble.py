"""Rule ensemble: majority vote of the machine coders (textgauge.audits.ensemble)."""
from textgauge.logs import friendly_errors
from textgauge.steps import audit_stages

with friendly_errors("build the ensemble", snakemake.log[0]):
    audit_stages.ensemble_stage(snakemake.params.models, list(snakemake.input.predictions),
                                snakemake.input.reference, snakemake.input.sample,
                                snakemake.params.labels, snakemake.params.validation,
                                snakemake.params.seed, snakemake.output.audit,
                                snakemake.output.votes)
