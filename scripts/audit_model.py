"""Rule audit_model: error sheet, calibration, review queue, asymmetry, strata, prevalence (textgauge.steps.audit)."""
from textgauge.steps import run
from textgauge.steps.audit import audit_model

run(audit_model, snakemake, "audit {model}")
