# Stage: label-noise check of the training data, and LoRA / QLoRA fine-tuning of decoders.


rule label_noise:
    message:
        "Checking training labels for noise (out-of-fold predictions + cleanlab)"
    input:
        train=rules.split_training.output.train,
    output:
        sheet=f"{RESULTS}/training/label_issues.csv",
        summary=f"{RESULTS}/training/label_issues.json",
    params:
        labels=LABELS,
        seed=lookup(dpath="training/seed", within=config),
        method=lookup(dpath="training/label_noise/method", within=config),
        folds=lookup(dpath="training/label_noise/folds", within=config),
        encoder=lookup(dpath="training/label_noise/encoder", within=config),
    log:
        f"{RESULTS}/logs/label_noise.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/label_noise.py"


rule train_lora:
    message:
        "LoRA fine-tuning of decoder {wildcards.model}"
    input:
        train=rules.split_training.output.train,
        val=rules.split_training.output.val,
        sample=gold_holdout,
        prompt=prompt_file,
    output:
        adapter=directory(f"{RESULTS}/models/{{model}}/adapter"),
        summary=f"{RESULTS}/models/{{model}}/training.json",
    params:
        settings=model_settings,
        labels=config["labels"],
        instructions=lookup(dpath="codebook/instructions", within=config),
        scale=SCALE,
    wildcard_constraints:
        model="|".join(models_of("lora")) or "NO_LORA",
    log:
        f"{RESULTS}/logs/train_lora/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_lora/{{model}}.tsv"
    threads: 2
    resources:
        mem_mb=16000,
        runtime=training_runtime,
        gpu=1,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/train_lora.py"
