"""Rule import_review: the coded review queue in, final corpus labels out (textgauge.audits.review_queue)."""
from textgauge.logs import friendly_errors
from textgauge.steps import audit_stages

with friendly_errors(f"import the review queue of {snakemake.wildcards.model}",
                     snakemake.log[0]):
    i = snakemake.input
    audit_stages.review_import_stage(snakemake.wildcards.model, i.coded, i.queue, i.predictions,
                                     i.reference, snakemake.params.labels,
                                     snakemake.output.final, snakemake.output.review)
