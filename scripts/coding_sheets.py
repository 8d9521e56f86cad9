"""Rule coding_sheets: blinded sheets per coder (see textgauge.data.coding)."""
from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors("write the coding sheets", snakemake.log[0]):
    stages.sheets_stage(snakemake.input.sample, snakemake.params.coders, snakemake.params.seed,
                        snakemake.params.codebook, snakemake.params.instructions,
                        list(snakemake.output.sheets), snakemake.output.codebook)
