# Helpers of the batch-API rules (workflow/rules/batch.smk) and of the predict rules'
# `submitted` input (infer.smk, development.smk): which jobs of which models go through a
# provider's batch API, and what each submit_batch job reads.

#: prompted coders run through a provider's batch API
BATCH_MODELS = [
    n
    for n, m in config["models"].items()
    if m.get("kind") == "prompt" and (m.get("limits") or {}).get("batch_api")
]


def batch_job(wildcards):
    """The predict job a predict rule's wildcards name (as its output file is named)."""
    for key, prefix in (("shard", "shard-"), ("order", "gold-order-"),
                        ("variant", "gold-variant-")):
        value = getattr(wildcards, key, None)
        if value is not None:
            return f"{prefix}{value}"
    return "gold"


def batch_receipt(wildcards, job=None):
    """Input of a batch model's predict job: the receipt of its submit_batch job ([] else)."""
    if wildcards.model not in BATCH_MODELS:
        return []
    return f"{RESULTS}/predictions/{wildcards.model}/batch/{job or batch_job(wildcards)}.json"


def _batch_wildcards(wildcards):
    """submit_batch's {job} as the wildcards of the predict rule that runs that job."""
    job, out = wildcards.job, {"model": wildcards.model}
    for key, prefix in (("shard", "shard-"), ("order", "gold-order-"),
                        ("variant", "gold-variant-")):
        if job.startswith(prefix):
            out[key] = job[len(prefix):]
    return types.SimpleNamespace(**out)


def batch_texts(wildcards):
    job = wildcards.job
    if job.startswith("shard-"):
        return f"{RESULTS}/corpus/shards/{job[len('shard-'):]}.parquet"
    if job == "development":
        return f"{RESULTS}/development/sample.parquet"
    return f"{RESULTS}/gold/sample.parquet"


def batch_prompt(wildcards):
    w = _batch_wildcards(wildcards)
    return prompt_variant(w) if hasattr(w, "variant") else prompt_file(w)


def batch_settings(wildcards):
    """The answer settings of the predict job (its label order, its paraphrased prompt)."""
    w = _batch_wildcards(wildcards)
    settings = model_settings(w)
    if hasattr(w, "order"):
        return {**settings, "label_order": w.order}
    if hasattr(w, "variant"):
        return {**settings, "prompt": prompt_variant(w)}
    return settings
