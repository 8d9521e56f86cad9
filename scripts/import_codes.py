"""Rule import_codes: validate human codes and derive reference labels (textgauge.data.coding)."""
from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors("import the human codes", snakemake.log[0]):
    adjudication = snakemake.input.adjudication or None
    stages.import_codes_stage(snakemake.input.sample, snakemake.params.labels,
                              snakemake.params.gold, dict(snakemake.params.sheet_files),
                              adjudication if isinstance(adjudication, str) else None,
                              snakemake.output.codes, snakemake.output.reference,
                              snakemake.output.adjudication_sheet, snakemake.output.summary)
