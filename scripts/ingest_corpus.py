"""Rule ingest_corpus: validate the corpus (textgauge.steps.corpus.ingest_corpus)."""
from textgauge.steps import corpus, run

run(corpus.ingest_corpus, snakemake, "validate the corpus")
