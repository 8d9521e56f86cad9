"""Rule report: HTML report, methods section and run manifest (textgauge.steps.report)."""
from textgauge.steps import run
from textgauge.steps.report import report

run(report, snakemake, "write the report")
