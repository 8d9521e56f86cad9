# Stage: provider batch APIs (a prompted coder with limits.batch_api: true), two steps per job.
#   submit_batch   sends one predict job's requests (gold, development, shard-NNNN,
#                  gold-order-ORDER, gold-variant-N) to the provider's batch API and exits;
#                  the batch ids go to the job's own state file, beside its checkpoint
#                  (results/predictions/MODEL/checkpoints/JOB.<fingerprint>.batch.json)
#   predict_*      (infer.smk) collects: it waits at most limits.batch_wait seconds, then
#                  writes the job's predictions, or stops with "not ready yet, run again
#                  later" (Snakemake leaves the output missing; a rerun collects, and sends
#                  nothing twice: requests already in a batch are never resubmitted).
# The submit job renders its requests with the same step as the predict job
# (textgauge.steps.infer.submit_batch calls predict), so the two always agree.
# Helpers (BATCH_MODELS, batch_receipt ...): workflow/rules/batch_common.smk.

rule submit_batch:
    message:
        "{wildcards.model}: sending {wildcards.job} to the provider's batch API"
    input:
        texts=batch_texts,
        few_shot_pool=few_shot_pool,
        prompt=batch_prompt,
    output:
        receipt=f"{RESULTS}/predictions/{{model}}/batch/{{job}}.json",
    params:
        settings=batch_settings,
        limits=model_limits,
        endpoint=model_endpoint,
        labels=config["labels"],
        instructions=lookup(dpath="codebook/instructions", within=config),
        scale=SCALE,
        local_only=lookup(dpath="privacy/local_only", within=config),
        seed=lookup(dpath="project/seed", within=config),
        # the predict job's checkpoint (its batch state sits beside it)
        checkpoint=lambda w: os.path.join(
            RESULTS, "predictions", w.model, "checkpoints", f"{w.job}.jsonl"
        ),
    wildcard_constraints:
        model="|".join(BATCH_MODELS) or "NO_BATCH_MODEL",
        job=r"gold|development|shard-\d+|gold-order-(reversed|rotated|shuffled)|gold-variant-\d+",
    log:
        f"{RESULTS}/logs/submit_batch/{{model}}/{{job}}.log",
    # every job's batches are sent before any predict job looks for results
    priority: 10
    threads: 1
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/api.yaml"
    script:
        "../../scripts/submit_batch.py"
