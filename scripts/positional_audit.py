"""Rule positional_audit: label-order sensitivity of a prompted coder (textgauge.steps.audit)."""
from textgauge.steps import run
from textgauge.steps.audit import positional_audit

run(positional_audit, snakemake, "audit positions of {model}")
