"""Rule simulate_coding (SYNTHETIC example only): simulated coders fill the sheets."""
from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors("simulate the coders", snakemake.log[0]):
    stages.simulate_stage(list(snakemake.input.sheets), snakemake.params.coders,
                          snakemake.input.truth, snakemake.input.coders,
                          snakemake.params.adjudicator_accuracy, snakemake.params.seed,
                          list(snakemake.output.coded), snakemake.output.adjudication)
