"""Rule import_error_sheet: the coded error sheet in, error patterns out (textgauge.steps.review)."""
from textgauge.steps import run
from textgauge.steps.review import import_error_sheet

run(import_error_sheet, snakemake, "import the error sheet of {model}")
