"""Rule coding_sheets: blinded coding sheets per coder (textgauge.steps.gold.coding_sheets)."""
from textgauge.steps import gold, run

run(gold.coding_sheets, snakemake, "write the coding sheets")
