"""Rule ingest_corpus: validate the corpus (see textgauge.data.corpus)."""
from textgauge.logs import friendly_errors
from textgauge.steps import stages

with friendly_errors("validate the corpus", snakemake.log[0]):
    stages.ingest_stage(snakemake.input.corpus, snakemake.params.id_column,
                        snakemake.params.text_column, snakemake.params.strata,
                        snakemake.output.corpus, snakemake.output.rejects,
                        snakemake.output.summary)
