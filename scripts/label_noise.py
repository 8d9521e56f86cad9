"""Rule label_noise: review sheet of suspicious training labels (see textgauge.training.label_noise)."""
from textgauge.logs import friendly_errors
from textgauge.training.label_noise import label_noise_stage

with friendly_errors("label-noise check", snakemake.log[0]):
    label_noise_stage(snakemake.input.train, snakemake.params.labels, snakemake.output.sheet,
                      snakemake.output.summary, seed=snakemake.params.seed,
                      method=snakemake.params.method, folds=snakemake.params.folds,
                      encoder_cfg=snakemake.params.encoder_cfg)
