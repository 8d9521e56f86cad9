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
        scale=SCALE,
        kappa_weights=KAPPA_WEIGHTS,
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
        scale=SCALE,
        kappa_weights=KAPPA_WEIGHTS,
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
        scale=SCALE,
        kappa_weights=KAPPA_WEIGHTS,
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
        train=lambda w: (
            rules.split_training.output.train
            if any(models_of(k) for k in TRAINED_KINDS)
            else []
        ),
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


# Stage 5 completed: the coded re-validation sheets are imported like the gold codes (same
# reference rule, ties and missing codes counted) and the model is scored on the fresh sample
# with its design weights, beside the gold-set metrics (audits.revalidation_codes; simulated
# coders fill the sheets in the synthetic example).
if config["gold"].get("simulate") and REVAL_CODED:

    use rule simulate_coding as simulate_revalidation_coding with:
        message:
            "SYNTHETIC example: simulated coders fill the stage-5 sheets"
        input:
            sheets=rules.revalidation_sample.output.sheets,
            truth=lookup(dpath="gold/simulate/truth", within=config),
            confusions=lookup(dpath="gold/simulate/coders", within=config),
        output:
            coded=expand(f"{REVAL}/coded/{{coder}}.csv", coder=CODERS),
            adjudication=f"{REVAL}/coded/adjudication.csv",
        params:
            seed=lookup(dpath="project/seed", within=config),
        log:
            f"{RESULTS}/logs/revalidation/simulate_coding.log",


if REVAL_CODED:

    use rule import_codes as import_revalidation_codes with:
        message:
            "Stage 5: importing and validating the re-validation codes"
        input:
            sample=rules.revalidation_sample.output.sample,
            sheets=lambda w: list(revalidation_code_files().values()),
            adjudication=revalidation_adjudication_file,
        output:
            codes=f"{REVAL}/codes.parquet",
            reference=f"{REVAL}/reference.parquet",
            adjudication_sheet=f"{REVAL}/adjudication_sheet.csv",
            summary=f"{REVAL}/codes.json",
        params:
            codes_long=None,  # stage-5 codes come as sheets (audits.revalidation_codes)
            sheet_files=revalidation_code_files(),
            seed=lookup(dpath="project/seed", within=config),
            to_adjudicate=f"{REVAL}/to_adjudicate.csv",
            adjudication_option="audits.revalidation_adjudication",
        log:
            f"{RESULTS}/logs/revalidation/import_codes.log",

    rule revalidation_metrics:
        message:
            "Stage 5: {params.model} on the re-validation sample (design-weighted) vs the gold set"
        input:
            sample=rules.revalidation_sample.output.sample,
            reference=rules.import_revalidation_codes.output.reference,
            codes=rules.import_revalidation_codes.output.summary,
            predictions=f"{RESULTS}/predictions/{REVAL_MODEL}.parquet",
            gold_reference=rules.import_codes.output.reference,
            gold_sample=rules.sample_gold.output.sample,
            corpus=rules.ingest_corpus.output.corpus,
        output:
            metrics=f"{REVAL}/metrics.json",
            table=f"{REVAL}/metrics.csv",
        params:
            model=REVAL_MODEL,
            labels=LABELS,
            strata=lookup(dpath="corpus/strata", within=config),
            scale=SCALE,
            kappa_weights=KAPPA_WEIGHTS,
            confidence=lookup(dpath="validation/confidence", within=config),
            bootstrap=lookup(dpath="validation/bootstrap", within=config),
            seed=lookup(dpath="project/seed", within=config),
        log:
            f"{RESULTS}/logs/revalidation/metrics.log",
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        conda:
            "../../envs/core.yaml"
        script:
            "../../scripts/revalidation_metrics.py"
