"""Rule import_error_sheet: the coded error sheet in, error patterns out (textgauge.errorsheet)."""
from textgauge import audit_stages
from textgauge.logs import friendly_errors

with friendly_errors(f"import the error sheet of {snakemake.wildcards.model}", snakemake.log[0]):
    audit_stages.error_patterns_stage(snakemake.wildcards.model, snakemake.input.coded,
                                      snakemake.input.sheet, snakemake.output.patterns)
