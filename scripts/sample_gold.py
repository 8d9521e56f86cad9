"""Rule sample_gold: stratified, seeded gold-standard sample (see textgauge.data.gold)."""
from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors("draw the gold sample", snakemake.log[0]):
    stages.sample_gold_stage(snakemake.input.corpus, snakemake.params.gold,
                             snakemake.params.training, snakemake.output.sample,
                             snakemake.output.summary, snakemake.params.labels)
