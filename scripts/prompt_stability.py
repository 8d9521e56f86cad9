"""Rule prompt_stability: Krippendorff's alpha across paraphrased prompts (textgauge.audits.core)."""
from textgauge.logs import friendly_errors
from textgauge.steps import audit_stages

with friendly_errors(f"audit prompt stability of {snakemake.wildcards.model}", snakemake.log[0]):
    i = snakemake.input
    audit_stages.prompt_stability_stage(snakemake.wildcards.model, i.base,
                                        snakemake.params.base_prompt, list(i.variants),
                                        list(snakemake.params.templates), i.reference,
                                        snakemake.params.validation, snakemake.params.seed,
                                        snakemake.output.audit)
