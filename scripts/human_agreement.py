"""Rule human_agreement: the human ceiling (textgauge.steps.validate.human_agreement)."""
from textgauge.steps import run
from textgauge.steps.validate import human_agreement

run(human_agreement, snakemake, "measure human agreement")
