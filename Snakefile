# textgauge: validated measurement instruments for text classification.
# Run:  snakemake --cores 2            (the bundled SYNTHETIC example)
#       snakemake --cores 8 --configfile my_config.yaml
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/runtime.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/gold.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/lora.smk"
include: "workflow/rules/batch_common.smk"
include: "workflow/rules/batch.smk"
include: "workflow/rules/serve_common.smk"
include: "workflow/rules/serve.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/validate.smk"
include: "workflow/rules/development.smk"
include: "workflow/rules/audit.smk"
include: "workflow/rules/review.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/replication.smk"
include: "workflow/rules/plan.smk"


rule all:
    default_target: True
    input:
        rules.report.output.html,
