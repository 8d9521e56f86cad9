# Stage: hold every coder, human or machine, to the same statistics on the gold test set.
# Steps: src/textgauge/steps/validate.py (one function per rule, keyword arguments named as
# the rule's input/output/params/wildcards; options keep their config names).

#: the gold-set ledger: one line per distinct coder configuration ever evaluated on gold. A
#: param, not an output: evaluate updates it in place (locked) and it outlives reruns and
#: config edits (src/textgauge/reporting/ledger.py).
LEDGER = f"{RESULTS}/validation/ledger.jsonl"


rule human_agreement:
    message:
        "Human-human agreement (the ceiling)"
    input:
        codes=rules.import_codes.output.codes,
        sample=rules.sample_gold.output.sample,
        truth=lambda w: (config["gold"]["simulate"] or {}).get("truth", []),
        coders=lambda w: (config["gold"]["simulate"] or {}).get("coders", []),
    output:
        metrics=f"{RESULTS}/validation/human/metrics.json",
        pairwise=f"{RESULTS}/validation/human/pairwise.csv",
    params:
        labels=LABELS,
        scale=SCALE,
        kappa_weights=KAPPA_WEIGHTS,
        seed=lookup(dpath="project/seed", within=config),
        kappa_threshold=lookup(dpath="validation/kappa_threshold", within=config),
        confidence=lookup(dpath="validation/confidence", within=config),
        bootstrap=lookup(dpath="validation/bootstrap", within=config),
    log:
        f"{RESULTS}/logs/human_agreement.log",
    benchmark:
        f"{RESULTS}/benchmarks/human_agreement.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/human_agreement.py"


rule evaluate:
    message:
        "{wildcards.model}: agreement and classification metrics on the gold set"
    input:
        predictions=f"{RESULTS}/predictions/{{model}}.parquet",
        reference=rules.import_codes.output.reference,
        codes=rules.import_codes.output.codes,
        sample=rules.sample_gold.output.sample,
        human=rules.human_agreement.output.metrics,
        # a fine-tuned coder's training summary: part of its configuration in the ledger
        training=model_artifact,
    output:
        metrics=f"{RESULTS}/validation/{{model}}/metrics.json",
        per_class=f"{RESULTS}/validation/{{model}}/per_class.csv",
        confusion=f"{RESULTS}/validation/{{model}}/confusion.csv",
        per_stratum=f"{RESULTS}/validation/{{model}}/per_stratum.csv",
        vs_coders=f"{RESULTS}/validation/{{model}}/vs_coders.csv",
    params:
        labels=LABELS,
        scale=SCALE,
        kappa_weights=KAPPA_WEIGHTS,
        strata=lookup(dpath="corpus/strata", within=config),
        seed=lookup(dpath="project/seed", within=config),
        kappa_threshold=lookup(dpath="validation/kappa_threshold", within=config),
        confidence=lookup(dpath="validation/confidence", within=config),
        bootstrap=lookup(dpath="validation/bootstrap", within=config),
        # what shapes the answers, hashed into the coder's ledger key
        settings=model_settings,
        ledger=LEDGER,
    log:
        f"{RESULTS}/logs/evaluate/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate/{{model}}.tsv"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/evaluate.py"


rule compare:
    message:
        "Paired comparisons: machine coders against each other and against the human coders"
    input:
        predictions=expand(f"{RESULTS}/predictions/{{model}}.parquet", model=MODELS),
        reference=rules.import_codes.output.reference,
        codes=rules.import_codes.output.codes,
        sample=rules.sample_gold.output.sample,
    output:
        comparisons=f"{RESULTS}/validation/comparisons.json",
        table=f"{RESULTS}/validation/comparisons.csv",
    params:
        models=MODELS,
        labels=LABELS,
        scale=SCALE,
        kappa_weights=KAPPA_WEIGHTS,
        seed=lookup(dpath="project/seed", within=config),
        confidence=lookup(dpath="validation/confidence", within=config),
        bootstrap=lookup(dpath="validation/bootstrap", within=config),
    log:
        f"{RESULTS}/logs/compare.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/compare.py"
