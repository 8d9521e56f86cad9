# Stage: run every machine coder, one job per corpus shard (or on the gold sample only).


rule predict_shard:
    message:
        "{wildcards.model}: classifying corpus shard {wildcards.shard}"
    input:
        texts=f"{RESULTS}/corpus/shards/{{shard}}.parquet",
        model=model_artifact,
        few_shot_pool=few_shot_pool,
    output:
        predictions=f"{RESULTS}/predictions/{{model}}/shard-{{shard}}.parquet",
    params:
        model_cfg=model_cfg,
        labels=LABELS,
        codebook=config["labels"],
        instructions=config["codebook"]["instructions"],
        checkpoint=lambda w: f"{RESULTS}/predictions/{w.model}/checkpoints/shard-{w.shard}.jsonl",
        local_only=config["privacy"]["local_only"],
        seed=config["project"]["seed"],
        batch_size=config["inference"]["batch_size"],
    log:
        f"{RESULTS}/logs/predict/{{model}}/shard-{{shard}}.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=uses_gpu,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/predict.py"


rule predict_gold:
    message:
        "{wildcards.model}: classifying the gold sample"
    input:
        texts=rules.sample_gold.output.sample,
        model=model_artifact,
        few_shot_pool=few_shot_pool,
    output:
        predictions=f"{RESULTS}/predictions/{{model}}/gold.parquet",
    params:
        model_cfg=model_cfg,
        labels=LABELS,
        codebook=config["labels"],
        instructions=config["codebook"]["instructions"],
        checkpoint=lambda w: f"{RESULTS}/predictions/{w.model}/checkpoints/gold.jsonl",
        local_only=config["privacy"]["local_only"],
        seed=config["project"]["seed"],
        batch_size=config["inference"]["batch_size"],
    log:
        f"{RESULTS}/logs/predict/{{model}}/gold.log",
    threads: 2
    resources:
        mem_mb=8000,
        runtime=240,
        gpu=uses_gpu,
    conda:
        "../../envs/train.yaml"
    script:
        "../../scripts/predict.py"


rule gather_predictions:
    message:
        "{wildcards.model}: gathering predictions"
    input:
        parts=prediction_parts,
    output:
        predictions=f"{RESULTS}/predictions/{{model}}.parquet",
        manifest=f"{RESULTS}/predictions/{{model}}.manifest.json",
    params:
        model_cfg=model_cfg,
    log:
        f"{RESULTS}/logs/gather/{{model}}.log",
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/gather_predictions.py"
