"""Rule shard_corpus: split the corpus by id hash (see textgauge.corpus.shard_corpus)."""
from textgauge import stages
from textgauge.logs import friendly_errors

with friendly_errors("shard the corpus", snakemake.log[0]):
    stages.shard_stage(snakemake.input.corpus, list(snakemake.output.shards))
