# Stage: audits beyond one kappa (errors, confidence, biases, ensembles, corrected estimates).
# Steps: src/textgauge/steps/audit.py (keyword arguments named as input/output/params/wildcards).


rule audit_model:
    message:
        "{wildcards.model}: error sheet, calibration, review queue, asymmetry, strata, prevalence"
    input:
        predictions=f"{RESULTS}/predictions/{{model}}.parquet",
        reference=rules.import_codes.output.reference,
        codes=rules.import_codes.output.codes,
        sample=rules.sample_gold.output.sample,
        corpus=rules.ingest_corpus.output.corpus,
        # the strata audit reads the evaluation's per-stratum table: the same numbers
        per_stratum=rules.evaluate.output.per_stratum,
        # ids the gold sampler excluded (labelled training data): outside the population
        # of the corrected prevalence, as they are outside the gold sample's
        training_ids=training_file,
    output:
        audit=f"{RESULTS}/audits/{{model}}/audit.json",
        error_sheet=f"{RESULTS}/audits/{{model}}/error_sheet.csv",
        review_queue=f"{RESULTS}/audits/{{model}}/review_queue.csv",
        prevalence=f"{RESULTS}/audits/{{model}}/prevalence.csv",
    params:
        labels=LABELS,
        strata=lookup(dpath="corpus/strata", within=config),
        scope=lambda w: config["models"][w.model].get("scope", "corpus"),
        review_fraction=lookup(dpath="validation/review_fraction", within=config),
        kappa_threshold=lookup(dpath="validation/kappa_threshold", within=config),
        confidence=lookup(dpath="validation/confidence", within=config),
        bootstrap=lookup(dpath="validation/bootstrap", within=config),
        seed=lookup(dpath="project/seed", within=config),
        training_id_column=lookup(dpath="training/id_column", within=config),
        exclude_from_gold=lookup(dpath="training/exclude_from_gold", within=config),
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
        labels=LABELS,
        confidence=lookup(dpath="validation/confidence", within=config),
        bootstrap=lookup(dpath="validation/bootstrap", within=config),
        seed=lookup(dpath="project/seed", within=config),
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
        confidence=lookup(dpath="validation/confidence", within=config),
        bootstrap=lookup(dpath="validation/bootstrap", within=config),
        seed=lookup(dpath="project/seed", within=config),
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
        gold=rules.sample_gold.output.sample,
        train=lambda w: rules.split_training.output.train if models_of("encoder") else [],
    output:
        sample=f"{RESULTS}/revalidation/sample.parquet",
        sheets=expand(f"{RESULTS}/revalidation/sheets/{{coder}}.csv", coder=CODERS),
    params:
        model=REVAL_MODEL,
        revalidation_size=lookup(dpath="audits/revalidation_size", within=config),
        strata=lookup(dpath="corpus/strata", within=config),
        coders=CODERS,
        seed=lookup(dpath="project/seed", within=config),
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
