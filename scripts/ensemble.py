"""Rule ensemble: majority vote of the machine coders (textgauge.steps.audit)."""
from textgauge.steps import run
from textgauge.steps.audit import ensemble

run(ensemble, snakemake, "build the ensemble")
