# Stage: train/validation split (gold held out), fine-tuning of encoder models and the
# TF-IDF + logistic-regression baseline.


rule split_training:
    message:
        "Splitting labelled data into train/validation (gold test set held out)"
    input:
        corpus=rules.ingest_corpus.output.corpus,
        rejects=rules.ingest_corpus.output.rejects,
        sample=gold_holdout,
        labelled=training_file,
    output:
        train=f"{RESULTS}/training/train.parquet",
        val=f"{RESULTS}/training/val.parquet",
        summary=f"{RESULTS}/training/split.json",
    params:
        id_column=lookup(dpath="training/id_column", within=config),
        label_column=lookup(dpath="training/label_column", within=config),
        label_map=lookup(dpath="training/label_map", within=config),
        val_fraction=lookup(dpath="training/val_fraction", within=config),
        seed=lookup(dpath="training/seed", within=config),
        labels=LABELS,
    log:
        f"{RESULTS}/logs/split_training.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/split_training.py"


rule train_encoder:
    message:
        "Fine-tuning encoder {wildcards.model}"
    input:
        train=rules.split_training.output.train,
        val=rules.split_training.output.val,
        sample=gold_holdout,
    output:
        model_dir=directory(f"{RESULTS}/models/{{model}}/model"),
        summary=f"{RESULTS}/models/{{model}}/training.json",
    params:
        settings=model_settings,
        labels=LABELS,
    wildcard_constraints:
        model="|".join(models_of("encoder")) or "NO_ENCODER",
    log:
        f"{RESULTS}/logs/train_encoder/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_encoder/{{model}}.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=training_runtime,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/train_encoder.py"


rule train_baseline:
    message:
        "Fitting baseline {wildcards.model} (TF-IDF + logistic regression)"
    input:
        train=rules.split_training.output.train,
        val=rules.split_training.output.val,
        sample=gold_holdout,
    output:
        model_dir=directory(f"{RESULTS}/models/{{model}}/model"),
        summary=f"{RESULTS}/models/{{model}}/training.json",
    params:
        settings=model_settings,
        labels=LABELS,
    wildcard_constraints:
        model="|".join(models_of("baseline")) or "NO_BASELINE",
    log:
        f"{RESULTS}/logs/train_baseline/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_baseline/{{model}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/train_baseline.py"
