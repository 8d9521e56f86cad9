"""Rule import_review: the coded review queue in, final corpus labels out (textgauge.steps.review)."""
from textgauge.steps import run
from textgauge.steps.review import import_review

run(import_review, snakemake, "import the review queue of {model}")
