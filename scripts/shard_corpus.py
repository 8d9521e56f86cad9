"""Rule shard_corpus: split the corpus by id hash (see textgauge.data.corpus.shard_corpus)."""
from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors("shard the corpus", snakemake.log[0]):
    stages.shard_stage(snakemake.input.corpus, list(snakemake.output.shards))
