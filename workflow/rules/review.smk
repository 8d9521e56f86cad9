# Stage: human round trips and stability audits, each switched on by its audits.* key
# (steps: src/textgauge/steps/review.py):
#   audits.error_codes      {model: coded error_sheet.csv}      -> error_patterns.json
#   audits.review_codes     {model: coded review_queue.csv}     -> final_labels.parquet, review.json
#   audits.retest           {model: earlier predictions .parquet} -> retest.json
#   audits.prompt_variants  {model: [paraphrased templates]}    -> prompt_stability.json
import os

from snakemake.exceptions import WorkflowError

ERROR_CODES = dict(AUDITS.get("error_codes") or {})
REVIEW_CODES = dict(AUDITS.get("review_codes") or {})
RETEST = dict(AUDITS.get("retest") or {})
PROMPT_VARIANTS = {m: list(v) for m, v in (AUDITS.get("prompt_variants") or {}).items() if v}

for _key, _models in (
    ("error_codes", ERROR_CODES),
    ("review_codes", REVIEW_CODES),
    ("retest", RETEST),
    ("prompt_variants", PROMPT_VARIANTS),
):
    for _m in _models:
        if _m not in MODELS:
            raise WorkflowError(
                f"audits.{_key} names the model {_m!r}, which is not in models "
                f"({', '.join(MODELS)})."
            )
for _m, _templates in PROMPT_VARIANTS.items():
    if config["models"][_m]["kind"] != "prompt":
        raise WorkflowError(
            f"audits.prompt_variants.{_m}: only prompted models (kind: prompt) have a prompt."
        )


rule import_error_sheet:
    message:
        "{wildcards.model}: importing the coded error sheet"
    input:
        coded=lambda w: ERROR_CODES[w.model],
        sheet=f"{RESULTS}/audits/{{model}}/error_sheet.csv",
    output:
        patterns=f"{RESULTS}/audits/{{model}}/error_patterns.json",
    wildcard_constraints:
        model="|".join(ERROR_CODES) or "NO_MODEL",
    log:
        f"{RESULTS}/logs/audit/{{model}}-error-patterns.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/import_error_sheet.py"


rule import_review:
    message:
        "{wildcards.model}: importing the coded review queue; final corpus labels"
    input:
        coded=lambda w: REVIEW_CODES[w.model],
        queue=f"{RESULTS}/audits/{{model}}/review_queue.csv",
        predictions=f"{RESULTS}/predictions/{{model}}.parquet",
        reference=rules.import_codes.output.reference,
    output:
        final=f"{RESULTS}/audits/{{model}}/final_labels.parquet",
        review=f"{RESULTS}/audits/{{model}}/review.json",
    params:
        labels=LABELS,
        confidence=lookup(dpath="validation/confidence", within=config),
    wildcard_constraints:
        model="|".join(REVIEW_CODES) or "NO_MODEL",
    log:
        f"{RESULTS}/logs/audit/{{model}}-review.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/import_review.py"


rule retest:
    message:
        "{wildcards.model}: test-retest against the stored earlier run"
    input:
        current=f"{RESULTS}/predictions/{{model}}.parquet",
        current_manifest=f"{RESULTS}/predictions/{{model}}.manifest.json",
        earlier=lambda w: RETEST[w.model],
        # <name>.manifest.json next to the earlier predictions, when it was kept
        earlier_manifest=lambda w: [
            p
            for p in [os.path.splitext(RETEST[w.model])[0] + ".manifest.json"]
            if os.path.exists(p)
        ],
        reference=rules.import_codes.output.reference,
    output:
        retest=f"{RESULTS}/audits/{{model}}/retest.json",
    params:
        labels=LABELS,
        scale=SCALE,
        kappa_weights=KAPPA_WEIGHTS,
        confidence=lookup(dpath="validation/confidence", within=config),
        bootstrap=lookup(dpath="validation/bootstrap", within=config),
        seed=lookup(dpath="project/seed", within=config),
    wildcard_constraints:
        model="|".join(RETEST) or "NO_MODEL",
    log:
        f"{RESULTS}/logs/audit/{{model}}-retest.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/retest.py"


rule prompt_stability:
    message:
        "{wildcards.model}: prompt stability across paraphrased prompts"
    input:
        base=f"{RESULTS}/predictions/{{model}}.parquet",
        variants=lambda w: [
            f"{RESULTS}/predictions/{w.model}/gold-variant-{i}.parquet"
            for i in range(1, len(PROMPT_VARIANTS[w.model]) + 1)
        ],
        reference=rules.import_codes.output.reference,
        # the gold design: a model-assisted sample's alpha and change rates are weighted
        sample=rules.sample_gold.output.sample,
    output:
        audit=f"{RESULTS}/audits/{{model}}/prompt_stability.json",
    params:
        base_prompt=lambda w: config["models"][w.model]["prompt"],
        templates=lambda w: PROMPT_VARIANTS[w.model],
        labels=LABELS,
        scale=SCALE,
        confidence=lookup(dpath="validation/confidence", within=config),
        bootstrap=lookup(dpath="validation/bootstrap", within=config),
        seed=lookup(dpath="project/seed", within=config),
    wildcard_constraints:
        model="|".join(PROMPT_VARIANTS) or "NO_MODEL",
    log:
        f"{RESULTS}/logs/audit/{{model}}-prompt-stability.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/prompt_stability.py"
