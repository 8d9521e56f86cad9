"""Rule import_review: the coded review queue in, final corpus labels out (textgauge.review)."""
from textgauge import audit_stages
from textgauge.logs import friendly_errors

with friendly_errors(f"import the review queue of {snakemake.wildcards.model}",
                     snakemake.log[0]):
    i = snakemake.input
    audit_stages.review_import_stage(snakemake.wildcards.model, i.coded, i.queue, i.predictions,
                                     i.reference, snakemake.params.labels,
                                     snakemake.output.final, snakemake.output.review)
