"""Rule import_error_sheet: the coded error sheet in, error patterns out (textgauge.audits.error_sheet)."""
from textgauge.logs import friendly_errors
from textgauge.steps import audit_stages

with friendly_errors(f"import the error sheet of {snakemake.wildcards.model}", snakemake.log[0]):
    audit_stages.error_patterns_stage(snakemake.wildcards.model, snakemake.input.coded,
                                      snakemake.input.sheet, snakemake.output.patterns)
