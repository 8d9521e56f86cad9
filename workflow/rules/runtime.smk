# Helpers of the plan (no rules here): walltime requests of GPU jobs from their input size
# (textgauge.planning.runtime), and the inputs of rule spend (plan.smk).
# A GPU job asks for max(floor, texts / throughput x margin) minutes, with the model's
# plan.throughput_texts_per_s, else the texts/s measured by an earlier run's benchmark files
# (results/benchmarks/predict/{model}/), else a placeholder per engine. The cost plan
# (rule cost_plan) sums the same requests, so `textgauge plan-jobs` and the cost plan agree on
# GPU-hours. Texts come from the job's input when it exists, else from the configured data
# (corpus rows / shards, gold.size, labelled rows): a dry run of a fresh run needs no results.
import math


def _runtime_module():
    try:
        import textgauge.planning.runtime as mod
    except ImportError:
        path = os.path.join(workflow.basedir, "src", "textgauge", "planning", "runtime.py")
        spec = importlib.util.spec_from_file_location("textgauge_runtime", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return mod


RUNTIME = _runtime_module()
_MEASURED = {}


def measured_throughput(model):
    """Texts/s of a model's prediction jobs in an earlier run (memoized per process)."""
    if model not in _MEASURED:
        _MEASURED[model] = RUNTIME.measured_throughput(RESULTS, model)
    return _MEASURED[model]
#: minutes an API coder's job asks for (no GPU; the provider's rate limits set its pace)
API_RUNTIME = 240
_ROWS = {}


def _rows(path):
    """Rows of a data file (memoized per process; None when absent)."""
    if path not in _ROWS:
        _ROWS[path] = RUNTIME.count_rows(path)
    return _ROWS[path]


def corpus_texts():
    """Texts of the corpus: the ingested corpus, else the configured file's rows."""
    n = _rows(f"{RESULTS}/corpus/corpus.parquet")
    return n if n is not None else (_rows(config["corpus"]["path"]) or 0)


def gold_texts():
    n = _rows(f"{RESULTS}/gold/sample.parquet")
    return n if n is not None else min(int(config["gold"]["size"]), corpus_texts())


def shard_texts(shard):
    n = _rows(f"{RESULTS}/corpus/shards/{shard}.parquet")
    return n if n is not None else math.ceil(corpus_texts() / max(1, N_SHARDS))


def train_texts():
    """Training texts: the train split, else the labelled rows less the validation part."""
    n = _rows(f"{RESULTS}/training/train.parquet")
    if n is not None:
        return n
    labelled = training_file()
    rows = _rows(labelled) if labelled else None
    if rows is None:
        return 0
    return math.ceil(rows * (1 - float(config["training"].get("val_fraction", 0.2))))


def inference_runtime(wildcards, attempt):
    """Minutes a predict job asks for: its texts at the model's throughput, with the margin
    and floor of textgauge.planning.runtime (x attempt on a retry). API coders: the floor."""
    m = config["models"][wildcards.model]
    shard = getattr(wildcards, "shard", None)
    n = shard_texts(shard) if shard else gold_texts()
    if m["kind"] == "baseline":  # TF-IDF + logistic regression on a CPU: seconds
        return RUNTIME.FLOOR_MINUTES * attempt
    if not RUNTIME.gpu_engine(m):
        return API_RUNTIME * attempt  # API calls: rate limits, not a GPU, set the pace
    thr, _ = RUNTIME.inference_throughput(m, measured_throughput(wildcards.model))
    return RUNTIME.runtime_minutes(n, thr) * attempt


def training_runtime(wildcards, attempt):
    """Minutes a train_encoder / train_lora job asks for: epochs x training texts."""
    m = config["models"][wildcards.model]
    thr, _ = RUNTIME.training_throughput(m)
    return RUNTIME.runtime_minutes(RUNTIME.training_texts(m, train_texts()), thr) * attempt


def spend_parts(wildcards=None):
    """Every prediction file of every model: shards or gold, label orders, prompt variants."""
    out = []
    for m in MODELS:
        out += prediction_parts(types.SimpleNamespace(model=m))
    out += expand(
        f"{RESULTS}/predictions/{{model}}/gold-order-{{order}}.parquet",
        model=PROMPT_MODELS,
        order=ORDERS,
    )
    for m, templates in PROMPT_VARIANTS.items():
        out += [
            f"{RESULTS}/predictions/{m}/gold-variant-{i}.parquet"
            for i in range(1, len(templates) + 1)
        ]
    return out
