"""Rule retest: the current run against a stored earlier run of the same coder (audits)."""
from textgauge.logs import friendly_errors
from textgauge.steps import audit_stages

with friendly_errors(f"compare {snakemake.wildcards.model} with its earlier run",
                     snakemake.log[0]):
    i = snakemake.input
    stored = i.get("earlier_manifest") or []  # optional: [] or one path
    stored = [stored] if isinstance(stored, str) else list(stored)
    audit_stages.retest_stage(snakemake.wildcards.model, i.current, i.current_manifest,
                              i.earlier, stored[0] if stored else None, i.reference,
                              snakemake.params.validation, snakemake.params.seed,
                              snakemake.output.retest)
