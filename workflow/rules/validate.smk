# Stage: hold every machine coder to the human standard on the gold test set.


rule evaluate:
    message:
        "{wildcards.model}: agreement and classification metrics on the gold set"
    input:
        predictions=f"{RESULTS}/predictions/{{model}}.parquet",
        reference=rules.import_codes.output.reference,
        codes=rules.import_codes.output.codes,
        sample=rules.sample_gold.output.sample,
        human=rules.human_agreement.output.metrics,
    output:
        metrics=f"{RESULTS}/validation/{{model}}/metrics.json",
        per_class=f"{RESULTS}/validation/{{model}}/per_class.csv",
        confusion=f"{RESULTS}/validation/{{model}}/confusion.csv",
        per_stratum=f"{RESULTS}/validation/{{model}}/per_stratum.csv",
        vs_coders=f"{RESULTS}/validation/{{model}}/vs_coders.csv",
    params:
        labels=LABELS,
        validation=config["validation"],
        strata=config["corpus"]["strata"],
        seed=config["project"]["seed"],
    log:
        f"{RESULTS}/logs/evaluate/{{model}}.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/evaluate.py"
