"""Rule split_training: train/validation split with the gold set held out (textgauge.data.splits)."""
from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors("split the training data", snakemake.log[0]):
    stages.split_stage(snakemake.input.corpus, snakemake.input.sample, snakemake.params.training,
                       snakemake.params.labels, snakemake.output.train, snakemake.output.val,
                       snakemake.output.summary, snakemake.input.rejects)
