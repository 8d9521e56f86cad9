# Path helpers, config validation and input functions; no rules here.
import difflib
import importlib.util
import os
import types

import yaml
from snakemake.exceptions import WorkflowError

SCHEMA_FILE = "../schemas/config.schema.yaml"


def _secrets_module():
    """textgauge.secrets: the one place that finds key-like options and redacts URL
    credentials. Imported when textgauge is installed beside Snakemake; else loaded from this
    checkout's src/ (it needs the standard library only), since with --sdm conda the library
    may live only in the jobs' environments."""
    try:
        import textgauge.secrets as mod
    except ImportError:
        path = os.path.join(workflow.basedir, "src", "textgauge", "secrets.py")
        if not os.path.exists(path):
            raise WorkflowError(
                "textgauge is not importable and src/textgauge/secrets.py is not beside the "
                "Snakefile: install textgauge (pip install -e .) in Snakemake's environment."
            )
        spec = importlib.util.spec_from_file_location("textgauge_secrets", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return mod


SECRETS = _secrets_module()
#: a model's settings that never rerun anything (see _validate_config and model_limits)
RUN_SECTIONS = ("limits", "plan")
#: keys that look like a credential (api_key, hf_token, password ...): never in the config
SECRET_KEY = SECRETS.SECRET_KEY
#: options that no longer exist (batch APIs: one state per job since issue 14), what to do
REMOVED = {
    "batch_state": "is no longer used: every predict job (each shard, label order and prompt "
    "variant) keeps its own batch state beside its checkpoint, under "
    "results/predictions/MODEL/checkpoints/. Remove the option.",
    "batch_timeout": "is no longer used: no job waits for a batch to end. Use "
    "limits.batch_wait (seconds a collecting job may wait, default 0) and run snakemake "
    "again later to collect.",
}
#: options renamed when batch_size stopped meaning three things
RENAMED = {
    "batch_size": "train_batch_size (texts per training step) or "
    "limits.inference_batch_size (texts per forward pass at inference)",
}


def _model_key_problem(name, m, defs):
    """A readable message for an unknown or secret key in models.<name>, or None."""
    d = defs.get(f"{m.get('kind')}_model")
    if d is None:
        return None  # the schema names the allowed kinds
    top = d["properties"]
    # a kind without a `plan` (baseline: no GPU, no tokens) has only `limits`
    subs = {k: defs[os.path.basename(top[k]["$ref"])]["properties"]
            for k in RUN_SECTIONS if k in top}
    nodes = [(f"models.{name}", m, top)]
    nodes += [(f"models.{name}.{k}", m.get(k), subs[k]) for k in subs]
    for where, node, allowed in nodes:
        if not isinstance(node, dict):
            continue
        for key in node:
            if key in allowed:
                continue
            if SECRET_KEY.search(key):
                return (
                    f"{where}.{key}: API keys and other secrets are never written in the "
                    "config file; they come from the environment. Put the key in an "
                    "environment variable (OPENAI_API_KEY for backend openai, "
                    "ANTHROPIC_API_KEY for anthropic) or name your own variable with "
                    f"models.{name}.limits.api_key_env: MY_KEY_VARIABLE."
                )
            if where == f"models.{name}":
                for sub in subs:
                    if key in subs[sub]:
                        return (
                            f"{where}.{key}: this setting belongs under "
                            f"models.{name}.{sub} (it does not change the answers, so it "
                            f"never reruns the model): {sub}: {{{key}: ...}}."
                        )
            if key in RENAMED:
                return f"{where}.{key} was renamed: use {RENAMED[key]}."
            if key in REMOVED:
                return f"{where}.{key} {REMOVED[key]}"
            close = difflib.get_close_matches(key, list(allowed), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            return (
                f"{where}: unknown option {key!r} for kind: {m.get('kind')}.{hint} "
                f"Allowed: {', '.join(allowed)} (config/README.md explains each)."
            )
    return None


def _validate_config():
    with open(workflow.source_path(SCHEMA_FILE)) as fh:
        schema = yaml.safe_load(fh)
    for name, m in (config.get("models") or {}).items():
        problem = isinstance(m, dict) and _model_key_problem(name, m, schema["$defs"])
        if problem:
            raise WorkflowError(problem)
    # anywhere else (a top-level api_key, inference.token, extra_body.password ...)
    secret = SECRETS.find_secret_options(config, schema)
    if secret:
        raise WorkflowError(SECRETS.secret_option_message(secret[0]))
    if "batch_size" in (config.get("inference") or {}):
        raise WorkflowError(f"inference.batch_size was renamed: use {RENAMED['batch_size']} "
                            "of each model.")
    # names become paths and sheet headers: the library's name rule with its message (the
    # schema's $defs/name holds the same pattern, so it refuses them where textgauge is not
    # importable beside Snakemake)
    try:
        from textgauge.errors import ConfigError
        from textgauge.names import check_config_names
    except ImportError:
        pass
    else:
        try:
            check_config_names(config)
        except ConfigError as exc:
            raise WorkflowError(str(exc)) from None
    try:
        validate(config, workflow.source_path(SCHEMA_FILE))
    except WorkflowError as exc:
        try:  # one paragraph naming the option (textgauge.config_check), where installed
            from textgauge.config_check import schema_problem

            problem = schema_problem(config, workflow.source_path(SCHEMA_FILE))
        except ImportError:
            problem = None
        raise WorkflowError(problem or (
            "config.yaml does not match the schema (workflow/schemas/config.schema.yaml). "
            f"The first problem is shown above/below: fix that key and run again.\n{exc}"
        ))
    by_case = {}
    for lab in config["labels"]:
        by_case.setdefault(str(lab).strip().lower(), []).append(str(lab))
    clashes = ["; ".join(map(repr, v)) for v in by_case.values() if len(v) > 1]
    if clashes:
        raise WorkflowError(
            f"labels: the codebook has labels that differ only in case ({', '.join(clashes)}). "
            "Codes are matched to labels ignoring case, so these would be merged: give them "
            "names that differ in more than case."
        )
    if config["codebook"].get("scale") == "ordinal" and len(config["labels"]) < 3:
        raise WorkflowError(
            f"codebook.scale is ordinal, but the codebook has {len(config['labels'])} label(s); "
            "an ordered scale needs at least 3 labels, listed lowest first under `labels`. "
            "Add the missing scale points or set codebook.scale: nominal."
        )
    for s in config["gold"].get("strata", []):
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
#: codebook.scale (nominal/ordinal) and the kappa weights it implies: None (unweighted) for a
#: nominal codebook, so that codebook.kappa_weights (ignored then) reruns nothing
SCALE = config["codebook"].get("scale", "nominal")
KAPPA_WEIGHTS = config["codebook"].get("kappa_weights", "quadratic") if SCALE == "ordinal" else None
MODELS = list(config["models"])
CODERS = list(config["gold"]["coders"])
#: gold.sheet_formats: the coding sheets written per coder (xlsx, csv or both)
SHEET_FORMATS = list(config["gold"].get("sheet_formats") or ["xlsx", "csv"])


def coder_sheets(folder, fmt):
    """The coding sheets of one format (xlsx or csv) in ``folder``; [] when that format is off."""
    return expand(f"{folder}/{{coder}}.{fmt}", coder=CODERS) if fmt in SHEET_FORMATS else []
N_SHARDS = config["inference"]["shards"]
SHARDS = [f"{i:04d}" for i in range(N_SHARDS)]

#: the kinds fitted in this workflow: a training.json (+ model folder) under results/models/
TRAINED_KINDS = ("encoder", "lora", "baseline")


def models_of(kind=None, scope=None):
    return [
        n
        for n, m in config["models"].items()
        if (kind is None or m["kind"] == kind)
        and (scope is None or m.get("scope", "corpus") == scope)
    ]


GOLD_DESIGN = config["gold"].get("design", "proportional")


def _first_pass():
    """The coder whose corpus predictions design a model_assisted gold sample (or, named with
    a proportional design, let the gold step compare the designs); None without one."""
    name = config["gold"].get("first_pass")
    if name is None and GOLD_DESIGN == "model_assisted":
        found = models_of("baseline", scope="corpus") or models_of("encoder", scope="corpus")
        if not found:
            raise WorkflowError(
                "gold.design is model_assisted, but no coder can be its first pass: there is "
                "no baseline or encoder with scope: corpus. Add one (e.g. `baseline: {kind: "
                "baseline}` under models) or name a coder with scope: corpus in gold.first_pass."
            )
        name = found[0]
    if name is None:
        return None
    if name not in config["models"]:
        raise WorkflowError(
            f"gold.first_pass names {name!r}, which is not a configured model "
            f"({', '.join(config['models'])})."
        )
    scope = config["models"][name].get("scope", "corpus")
    if scope != "corpus":
        raise WorkflowError(
            f"gold.first_pass {name!r} has scope: {scope}; the first pass classifies the "
            "corpus before the gold sample exists: give it scope: corpus or name another coder."
        )
    return name


FIRST_PASS = _first_pass()


def gold_holdout(wildcards=None):
    """The gold sample the training split and the trainers keep out. With a first pass the
    gold sample is drawn AFTER training, from texts outside the split (rule sample_gold
    excludes them), so training cannot depend on it (that would be a cycle)."""
    if FIRST_PASS:
        return []
    return f"{RESULTS}/gold/sample.parquet"


def first_pass_inputs(wildcards=None):
    """The first pass as the gold sampler (sample_gold) reads it: its corpus predictions
    and, where any coder is fitted on (or shown few-shot examples from) the training split,
    that split's ids: not eligible for gold (the first pass never stratifies texts it learnt from, and
    no coder is tested on a text it was trained on)."""
    if not FIRST_PASS:
        return {}
    out = {"first_pass_predictions": f"{RESULTS}/predictions/{FIRST_PASS}.parquet"}
    # any coder trained on (or shown examples from) the split: gold_holdout no longer keeps
    # gold out of it, so the gold sample keeps out of the split
    if any(m["kind"] in TRAINED_KINDS or m.get("few_shot") for m in config["models"].values()):
        out["first_pass_train"] = f"{RESULTS}/training/train.parquet"
        out["first_pass_val"] = f"{RESULTS}/training/val.parquet"
    return out


def model_settings(wildcards):
    """What shapes the model's answers (every setting but `limits` and `plan`): a param, so
    changing one reruns that model's jobs, and the checkpoint fingerprint. Params are stored
    in .snakemake/metadata, so URL credentials are redacted (http://***@host/v1): a changed
    host reruns, a changed password does not; model_endpoint hands over the real values."""
    m = config["models"][wildcards.model]
    return SECRETS.redact_config({k: v for k, v in m.items() if k not in RUN_SECTIONS})


def model_endpoint(wildcards):
    """The real values of the settings model_settings redacted (base_url with user:password
    or a query): a types.SimpleNamespace, which Snakemake neither stores nor compares (see
    model_limits), so the credentials reach the step and no file."""
    m = config["models"][wildcards.model]
    real = {k: v for k, v in m.items() if k not in RUN_SECTIONS}
    shown = SECRETS.redact_config(real)
    return types.SimpleNamespace(**{k: v for k, v in real.items() if shown[k] != v})


#: the config as the report and the replication package write it (URL credentials redacted)
PUBLIC_CONFIG = SECRETS.redact_config(config)


# the audit rules (audit.smk) take the same settings
model_cfg = model_settings


def model_limits(wildcards):
    """How the model runs (batching, rates, retries, timeouts, batch API, engine memory).

    Handed over as a types.SimpleNamespace: Snakemake records only params it can represent
    (builtins, pandas objects) and silently leaves out the others, so a namespace is never
    compared and never reruns a job (checked by tests/workflow/test_rerun_triggers.py).
    """
    return types.SimpleNamespace(**config["models"][wildcards.model]["limits"])


#: the conda env of each prompted backend; encoder and LoRA models run in envs/train.yaml
BACKEND_ENVS = {"openai": "api", "anthropic": "api", "vllm": "vllm", "transformers": "train"}
#: the conda env of each trained kind (a baseline needs scikit-learn only: envs/core.yaml)
KIND_ENVS = {"encoder": "train", "lora": "train", "baseline": "core"}


def model_env(wildcards):
    """The conda env a model's inference runs in (relative to workflow/rules/)."""
    m = config["models"][wildcards.model]
    if m["kind"] == "prompt" or (m["kind"] == "lora" and m.get("backend") == "vllm"):
        env = BACKEND_ENVS[m["backend"]]  # a LoRA adapter served by vLLM: the vllm env
    else:
        env = KIND_ENVS[m["kind"]]
    return f"../../envs/{env}.yaml"


def prompt_file(wildcards):
    """The prompt template of prompted and LoRA models: an input, so editing it reruns them."""
    m = config["models"][wildcards.model]
    return m["prompt"] if m["kind"] in ("prompt", "lora") else []


def uses_gpu(wildcards):
    """GPU jobs: fine-tuned models and local decoders (transformers, vLLM); API calls and
    the baseline (TF-IDF + logistic regression, CPU) need none."""
    m = config["models"][wildcards.model]
    return int(m["kind"] in ("encoder", "lora") or m.get("backend") in ("transformers", "vllm"))


def model_artifact(wildcards):
    """What inference needs: the trained model (its training.json; the model folder sits
    beside it) for encoders, LoRA adapters and baselines, nothing for prompted coders."""
    kind = config["models"][wildcards.model]["kind"]
    if kind in TRAINED_KINDS:
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
REVAL = f"{RESULTS}/revalidation"


def revalidation_code_files(wildcards=None):
    """Filled stage-5 sheets: simulated for the synthetic example, else audits.revalidation_codes."""
    if config["gold"].get("simulate"):
        return {c: f"{REVAL}/coded/{c}.csv" for c in CODERS}
    return dict(AUDITS.get("revalidation_codes") or {})


def revalidation_adjudication_file(wildcards=None):
    if config["gold"].get("simulate"):
        return f"{REVAL}/coded/adjudication.csv"
    return AUDITS.get("revalidation_adjudication") or []


#: stage 5 completed: the re-validation sample is drawn and its sheets are coded (or simulated)
REVAL_CODED = bool(AUDITS["revalidation_size"] and REVAL_MODEL and revalidation_code_files())


#: prompted model -> paraphrased templates (audits.prompt_variants; rule predict_gold_variant)
#: (an empty list: none for that model; how a config merged into config.yaml turns them off)
PROMPT_VARIANTS = {m: list(v) for m, v in (AUDITS.get("prompt_variants") or {}).items() if v}


def prompt_variant(wildcards):
    """The paraphrased template number {variant} (1-based) of a model."""
    return PROMPT_VARIANTS[wildcards.model][int(wildcards.variant) - 1]


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
    if REVAL_CODED:
        t.append(f"{REVAL}/metrics.json")
    # round trips and stability audits (workflow/rules/review.smk), when configured
    for key, name in (
        ("error_codes", "error_patterns.json"),
        ("review_codes", "review.json"),
        ("retest", "retest.json"),
        ("prompt_variants", "prompt_stability.json"),
    ):
        t += [f"{RESULTS}/audits/{m}/{name}" for m, v in (AUDITS.get(key) or {}).items()
              if v or key != "prompt_variants"]
    return t


# the development sample (workflow/rules/development.smk; gold.development_size > 0)
DEV = f"{RESULTS}/development"
DEV_SIZE = int(config["gold"].get("development_size") or 0)
#: the development draw, sheet orders and tie seed: derived from gold.seed, never equal to it
DEV_SEED = int(config["gold"]["seed"]) + 1


def development_code_files(wildcards=None):
    """Filled development sheets: simulated for the synthetic example, else from config."""
    if config["gold"].get("simulate"):
        return {c: f"{DEV}/coded/{c}.csv" for c in CODERS}
    return dict(config["gold"].get("development_codes") or {})


def development_adjudication_file(wildcards=None):
    if config["gold"].get("simulate"):
        return f"{DEV}/coded/adjudication.csv"
    return config["gold"].get("development_adjudication") or []


def development_targets(wildcards=None):
    if not DEV_SIZE:
        raise WorkflowError(
            "snakemake development: the development sample is off (gold.development_size: 0). "
            "Set gold.development_size (e.g. 60) to draw a sample for prompt iteration."
        )
    return expand(f"{DEV}/{{model}}/metrics.json", model=MODELS)


wildcard_constraints:
    model="|".join(MODELS) if MODELS else "NO_MODEL",
    shard=r"\d{4}",
    coder="|".join(CODERS),
