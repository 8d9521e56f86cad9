# Stage: run every machine coder, one job per corpus shard (or on the gold sample only).
# One rule, predict_gold, and its variants (`use rule ... with:` restates only what differs):
#   predict_shard         a corpus shard                       (scope: corpus)
#   predict_gold_order    the gold sample, labels in another order (positional-bias audit)
#   predict_gold_variant  the gold sample under a paraphrased prompt (prompt-stability audit)
# `settings` (what shapes the answers) is a param: changing it reruns the model. `limits`
# (rates, retries, batching ...) is handed over as a namespace that Snakemake never compares
# (common.smk, model_limits): changing it reruns nothing and keeps the checkpoint.
# `settings` hold URLs with credentials redacted (params are stored in .snakemake/metadata);
# the real `base_url` travels in `endpoint`, a namespace Snakemake never stores
# (common.smk, model_endpoint).


rule predict_gold:
    message:
        "{wildcards.model}: classifying the gold sample"
    input:
        texts=rules.sample_gold.output.sample,
        trained=model_artifact,
        few_shot_pool=few_shot_pool,
        prompt=prompt_file,
        # batch API models: the receipt of the job's submit_batch (batch.smk); this job collects
        submitted=batch_receipt,
        # serve: true: the managed server's address file (serve.smk; a service: one group)
        server=model_server,
    output:
        predictions=f"{RESULTS}/predictions/{{model}}/gold.parquet",
    params:
        settings=model_settings,
        limits=model_limits,
        endpoint=model_endpoint,
        labels=config["labels"],
        instructions=lookup(dpath="codebook/instructions", within=config),
        scale=SCALE,
        local_only=lookup(dpath="privacy/local_only", within=config),
        seed=lookup(dpath="project/seed", within=config),
        checkpoint=lambda w, output: os.path.join(
            os.path.dirname(output.predictions),
            "checkpoints",
            os.path.basename(output.predictions).replace(".parquet", ".jsonl"),
        ),
    log:
        f"{RESULTS}/logs/predict/{{model}}/gold.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{model}}/gold.tsv"
    threads: predict_threads
    resources:
        mem_mb=8000,
        runtime=inference_runtime,
        gpu=uses_gpu,
    conda:
        model_env
    script:
        "../../scripts/predict.py"


use rule predict_gold as predict_shard with:
    message:
        "{wildcards.model}: classifying corpus shard {wildcards.shard}"
    input:
        texts=f"{RESULTS}/corpus/shards/{{shard}}.parquet",
        trained=model_artifact,
        few_shot_pool=few_shot_pool,
        prompt=prompt_file,
        submitted=batch_receipt,
        server=model_server,
    output:
        predictions=f"{RESULTS}/predictions/{{model}}/shard-{{shard}}.parquet",
    log:
        f"{RESULTS}/logs/predict/{{model}}/shard-{{shard}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{model}}/shard-{{shard}}.tsv"


use rule predict_gold as predict_gold_order with:
    message:
        "{wildcards.model}: the gold sample again, labels listed in {wildcards.order} order"
    output:
        predictions=f"{RESULTS}/predictions/{{model}}/gold-order-{{order}}.parquet",
    params:
        # the model's settings with this label order (params merge by name)
        settings=lambda w: {**model_settings(w), "label_order": w.order},
    wildcard_constraints:
        model="|".join(PROMPT_MODELS) or "NO_PROMPT_MODEL",
        order="reversed|rotated|shuffled",
    log:
        f"{RESULTS}/logs/predict/{{model}}/gold-order-{{order}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{model}}/gold-order-{{order}}.tsv"


use rule predict_gold as predict_gold_variant with:
    message:
        "{wildcards.model}: the gold sample again under paraphrased prompt {wildcards.variant}"
    input:
        texts=rules.sample_gold.output.sample,
        trained=model_artifact,
        few_shot_pool=few_shot_pool,
        prompt=lambda w: prompt_variant(w),
        submitted=batch_receipt,
        server=model_server,
    output:
        predictions=f"{RESULTS}/predictions/{{model}}/gold-variant-{{variant}}.parquet",
    params:
        # the model's settings with the paraphrase as its prompt
        settings=lambda w: {**model_settings(w), "prompt": prompt_variant(w)},
    wildcard_constraints:
        model="|".join(PROMPT_VARIANTS) or "NO_MODEL",
        variant=r"\d+",
    log:
        f"{RESULTS}/logs/predict/{{model}}/gold-variant-{{variant}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/predict/{{model}}/gold-variant-{{variant}}.tsv"


rule gather_predictions:
    message:
        "{wildcards.model}: gathering predictions"
    input:
        parts=prediction_parts,
        prompt=prompt_file,
    output:
        predictions=f"{RESULTS}/predictions/{{model}}.parquet",
        manifest=f"{RESULTS}/predictions/{{model}}.manifest.json",
    params:
        settings=model_settings,
    log:
        f"{RESULTS}/logs/gather/{{model}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/gather_predictions/{{model}}.tsv"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/core.yaml"
    script:
        "../../scripts/gather_predictions.py"
