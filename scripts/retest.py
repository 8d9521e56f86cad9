"""Rule retest: the current run against a stored earlier run of the same coder (textgauge.steps.review)."""
from textgauge.steps import run
from textgauge.steps.review import retest

run(retest, snakemake, "compare {model} with its earlier run")
