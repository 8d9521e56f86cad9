"""Rule shard_corpus: split the corpus by id hash (textgauge.steps.corpus.shard_corpus)."""
from textgauge.steps import corpus, run

run(corpus.shard_corpus, snakemake, "shard the corpus")
