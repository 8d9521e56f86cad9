# Stage: audits beyond one kappa (errors, confidence, biases, ensembles, corrected estimates).


rule audit_model:
    message:
        "{wildcards.model}: error sheet, calibration, review queue, asymmetry, strata, prevalence"
    input:
        predictions=f"{RESULTS}/predictions/{{model}}.parquet",
        reference=rules.import_codes.output.reference,
        codes=rules.import_codes.output.codes,
        sample=rules.sample_gold.output.sample,
        corpus=rules.ingest_corpus.output.corpus,
    output:
        audit=f"{RESULTS}/audits/{{model}}/audit.json",
        error_sheet=f"{RESULTS}/audits/{{model}}/error_sheet.csv",
        review_queue=f"{RESULTS}/audits/{{model}}/review_queue.csv",
        prevalence=f"{RESULTS}/audits/{{model}}/prevalence.csv",
    params:
        model_cfg=model_cfg,
        labels=LABELS,
        strata=config["corpus"]["strata"],
        validation=config["validation"],
        seed=config["project"]["seed"],
    log:
        f"{RESULTS}/logs/audit/{{model}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/audit_model.py"


rule predict_gold_order:
    message:
        "{wildcards.model}: the gold sample again, labels listed in {wildcards.order} order"
    input:
        texts=rules.sample_gold.output.sample,
        model=model_artifact,
        few_shot_pool=few_shot_pool,
    output:
        predictions=f"{RESULTS}/predictions/{{model}}/gold-order-{{order}}.parquet",
    params:
        model_cfg=model_cfg,
        labels=LABELS,
        codebook=config["labels"],
        instructions=config["codebook"]["instructions"],
        checkpoint=lambda w: f"{RESULTS}/predictions/{w.model}/checkpoints/gold-order-{w.order}.jsonl",
        local_only=config["privacy"]["local_only"],
        seed=config["project"]["seed"],
        batch_size=config["inference"]["batch_size"],
        label_order=lambda w: w.order,
    wildcard_constraints:
        model="|".join(PROMPT_MODELS) or "NO_PROMPT_MODEL",
        order="reversed|rotated|shuffled",
    log:
        f"{RESULTS}/logs/predict/{{model}}/gold-order-{{order}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=uses_gpu,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/predict.py"


rule positional_audit:
    message:
        "{wildcards.model}: positional-bias audit over label orders"
    input:
        fixed=f"{RESULTS}/predictions/{{model}}.parquet",
        others=expand(
            f"{RESULTS}/predictions/{{{{model}}}}/gold-order-{{order}}.parquet", order=ORDERS
        ),
        reference=rules.import_codes.output.reference,
        sample=rules.sample_gold.output.sample,
    output:
        audit=f"{RESULTS}/audits/{{model}}/positional.json",
    params:
        orders=ORDERS,
    wildcard_constraints:
        model="|".join(PROMPT_MODELS) or "NO_PROMPT_MODEL",
    log:
        f"{RESULTS}/logs/audit/{{model}}-positional.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/positional_audit.py"


rule ensemble:
    message:
        "Majority vote of {params.models} on the gold set"
    input:
        predictions=expand(f"{RESULTS}/predictions/{{model}}.parquet", model=MODELS),
        reference=rules.import_codes.output.reference,
        sample=rules.sample_gold.output.sample,
    output:
        audit=f"{RESULTS}/audits/ensemble/ensemble.json",
        votes=f"{RESULTS}/audits/ensemble/votes.parquet",
    params:
        models=MODELS,
        labels=LABELS,
        validation=config["validation"],
        seed=config["project"]["seed"],
    log:
        f"{RESULTS}/logs/audit/ensemble.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/ensemble.py"


rule revalidation_sample:
    message:
        "Stage 5: fresh stratified sample of the classified corpus for re-validation"
    input:
        predictions=f"{RESULTS}/predictions/{REVAL_MODEL}.parquet",
        corpus=rules.ingest_corpus.output.corpus,
        sample=rules.sample_gold.output.sample,
        train=lambda w: rules.split_training.output.train if models_of("encoder") else [],
    output:
        sample=f"{RESULTS}/revalidation/sample.parquet",
        sheets=expand(f"{RESULTS}/revalidation/sheets/{{coder}}.csv", coder=CODERS),
    params:
        model=REVAL_MODEL,
        n=AUDITS["revalidation_size"],
        strata=config["corpus"]["strata"],
        coders=CODERS,
        seed=config["project"]["seed"],
    log:
        f"{RESULTS}/logs/revalidation_sample.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/revalidation_sample.py"
