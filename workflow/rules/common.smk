# Path helpers, config validation and input functions; no rules here.
import hashlib
import json

from snakemake.exceptions import WorkflowError


def _validate_config():
    try:
        validate(config, workflow.source_path("../schemas/config.schema.yaml"))
    except WorkflowError as exc:
        raise WorkflowError(
            "config.yaml does not match the schema (workflow/schemas/config.schema.yaml). "
            f"The first problem is shown above/below: fix that key and run again.\n{exc}"
        )
    for name, m in config["models"].items():
        if not name.replace("_", "").replace("-", "").isalnum():
            raise WorkflowError(
                f"Model name {name!r}: use letters, digits, '-' and '_' only (it becomes a path)."
            )
        need = {"prompt": ["model", "prompt"], "encoder": ["base_model"], "lora": ["base_model"]}
        missing = [k for k in need[m["kind"]] if k not in m]
        if missing:
            raise WorkflowError(
                f"models.{name} (kind: {m['kind']}) needs {', '.join(missing)}."
            )
    for key in ("strata",):
        for s in config["gold"].get(key, []):
            if s not in config["corpus"]["strata"]:
                raise WorkflowError(
                    f"gold.strata lists {s!r}, which is not in corpus.strata "
                    f"{config['corpus']['strata']}."
                )


_validate_config()


def _expand_data_dir(node):
    """Replace {data_dir} in path options, so real data can stay outside the repository."""
    for key, value in list(node.items()):
        if isinstance(value, dict):
            _expand_data_dir(value)
        elif isinstance(value, str) and "{data_dir}" in value:
            node[key] = value.replace("{data_dir}", str(config["data_dir"]))


for _section in ("corpus", "gold", "training"):
    _expand_data_dir(config[_section])

RESULTS = config["results_dir"].rstrip("/")
LABELS = list(config["labels"])
MODELS = list(config["models"])
CODERS = list(config["gold"]["coders"])
N_SHARDS = config["inference"]["shards"]
SHARDS = [f"{i:04d}" for i in range(N_SHARDS)]


def models_of(kind=None, scope=None):
    return [
        n
        for n, m in config["models"].items()
        if (kind is None or m["kind"] == kind)
        and (scope is None or m.get("scope", "corpus") == scope)
    ]


def model_cfg(wildcards):
    """The model's settings: a param, so changing them reruns only that model's jobs."""
    return config["models"][wildcards.model]


def uses_gpu(wildcards):
    """GPU jobs: fine-tuned models and local decoders (transformers, vLLM); API calls need none."""
    m = config["models"][wildcards.model]
    return int(m["kind"] in ("encoder", "lora") or m.get("backend") in ("transformers", "vllm"))


def model_artifact(wildcards):
    """What inference needs: the fine-tuned model for encoders, nothing for prompted coders."""
    kind = config["models"][wildcards.model]["kind"]
    if kind in ("encoder", "lora"):
        return f"{RESULTS}/models/{wildcards.model}/training.json"
    return []


def few_shot_pool(wildcards):
    """Training items to draw few-shot examples from (never gold items), when asked for."""
    if config["models"][wildcards.model].get("few_shot"):
        return f"{RESULTS}/training/train.parquet"
    return []


def prediction_parts(wildcards):
    scope = config["models"][wildcards.model].get("scope", "corpus")
    if scope == "gold":
        return [f"{RESULTS}/predictions/{wildcards.model}/gold.parquet"]
    return expand(
        f"{RESULTS}/predictions/{wildcards.model}/shard-{{shard}}.parquet", shard=SHARDS
    )


def human_code_files(wildcards=None):
    """Filled coding sheets: simulated for the synthetic example, else from config."""
    if config["gold"].get("simulate"):
        return {c: f"{RESULTS}/gold/coded/{c}.csv" for c in CODERS}
    return dict(config["gold"].get("codes", {}))


def adjudication_file(wildcards=None):
    if config["gold"].get("simulate"):
        return f"{RESULTS}/gold/coded/adjudication.csv"
    return config["gold"].get("adjudication") or []


def long_codes_file(wildcards=None):
    long = config["gold"].get("codes_long")
    return long["path"] if long else []


def training_file(wildcards=None):
    return config["training"].get("labelled") or []


AUDITS = config["audits"]
PROMPT_MODELS = models_of("prompt")
ORDERS = AUDITS["positional_orders"] if PROMPT_MODELS else []
CORPUS_MODELS = models_of(scope="corpus")
REVAL_MODEL = AUDITS["revalidation_model"] or (CORPUS_MODELS[0] if CORPUS_MODELS else None)


def audit_targets():
    t = []
    if AUDITS["enabled"]:
        t += expand(f"{RESULTS}/audits/{{model}}/audit.json", model=MODELS)
    if ORDERS:
        t += expand(f"{RESULTS}/audits/{{model}}/positional.json", model=PROMPT_MODELS)
    if AUDITS["ensemble"] and len(MODELS) >= 2:
        t.append(f"{RESULTS}/audits/ensemble/ensemble.json")
    if AUDITS["revalidation_size"] and REVAL_MODEL:
        t.append(f"{RESULTS}/revalidation/sample.parquet")
    # round trips and stability audits (workflow/rules/review.smk), when configured
    for key, name in (
        ("error_codes", "error_patterns.json"),
        ("review_codes", "review.json"),
        ("retest", "retest.json"),
        ("prompt_variants", "prompt_stability.json"),
    ):
        t += [f"{RESULTS}/audits/{m}/{name}" for m in AUDITS.get(key) or {}]
    return t


wildcard_constraints:
    model="|".join(MODELS) if MODELS else "NO_MODEL",
    shard=r"\d{4}",
    coder="|".join(CODERS),
