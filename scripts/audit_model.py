"""Rule audit_model: error sheet, confidence, asymmetry, strata, prevalence (textgauge.steps.audit_stages)."""
from textgauge.logs import friendly_errors
from textgauge.steps import audit_stages

with friendly_errors(f"audit {snakemake.wildcards.model}", snakemake.log[0]):
    i = snakemake.input
    audit_stages.model_audit_stage(
        snakemake.wildcards.model, snakemake.params.model_cfg, i.predictions, i.reference,
        i.codes, i.sample, i.corpus, snakemake.params.labels, snakemake.params.strata,
        snakemake.params.validation, snakemake.params.seed,
        {k: v for k, v in snakemake.output.items()})
