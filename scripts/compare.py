"""Rule compare: paired comparisons of the coders on the gold set (textgauge.steps.validate.compare)."""
from textgauge.steps import run
from textgauge.steps.validate import compare

run(compare, snakemake, "compare")
