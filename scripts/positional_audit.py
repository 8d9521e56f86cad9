"""Rule positional_audit: label-order sensitivity of a prompted coder (textgauge.audits.core)."""
from textgauge.logs import friendly_errors
from textgauge.steps import audit_stages

with friendly_errors(f"audit positions of {snakemake.wildcards.model}", snakemake.log[0]):
    parts = {"fixed": snakemake.input.fixed}
    parts.update(zip(snakemake.params.orders, snakemake.input.others, strict=True))
    audit_stages.positional_stage(snakemake.wildcards.model, parts, snakemake.input.reference,
                                  snakemake.input.sample, snakemake.output.audit)
