"""Rule import_codes: validate the human codes, derive reference labels (textgauge.steps.gold.import_codes)."""
from textgauge.steps import gold, run

run(gold.import_codes, snakemake, "import the human codes")
