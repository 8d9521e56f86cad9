# Served coders (serve: true): the helpers of rule serve_model (serve.smk) and of the
# predict rules that consume its service output (infer.smk, development.smk). No rules here.
import json
import sys

#: prompted coders served by the workflow (models.<name>.serve: true)
SERVED_MODELS = [m for m in PROMPT_MODELS if config["models"][m].get("serve")]


def _check_served():
    for name in SERVED_MODELS:
        m = config["models"][name]
        problem = None
        if m.get("backend", "transformers") != "openai":
            problem = (f"models.{name}: serve: true starts an OpenAI-compatible server and "
                       f"talks to it with backend: openai, not backend: {m.get('backend')}. "
                       "Set backend: openai (the default server is vLLM's OpenAI server on "
                       "`model`), or leave serve out.")
        elif m.get("base_url") or m.get("unix_socket"):
            problem = (f"models.{name}: serve: true gives the coder the managed server's "
                       "address; leave base_url and unix_socket out (or set serve: false to "
                       "use a server you started yourself at base_url).")
        elif (m.get("limits") or {}).get("batch_api"):
            problem = (f"models.{name}: serve: true and limits.batch_api: true do not go "
                       "together (a local server answers at once): set one of them.")
        if problem:
            raise WorkflowError(problem)


_check_served()


def model_server(wildcards):
    """The address file of a served coder's server (a service input of its predict jobs);
    nothing for every other model."""
    if wildcards.model in SERVED_MODELS:
        return f"{RESULTS}/serve/{wildcards.model}.json"
    return []


def predict_threads(wildcards):
    """Cores of a predict job: none for a served coder (an HTTP client in the server's
    group: a group's cores are summed and must fit --cores), else 2."""
    return 0 if wildcards.model in SERVED_MODELS else 2


def serve_runtime(wildcards, attempt):
    """Minutes the server asks for: it must outlive all of its predict jobs (the group's
    walltime is its longest member's), so every text they send (the corpus or the gold
    sample, plus the gold re-runs in other label orders and prompt variants) at the
    model's throughput (textgauge.planning.runtime, as the predict jobs of a local engine),
    plus limits.serve_timeout for loading the weights."""
    m = config["models"][wildcards.model]
    n = corpus_texts() if m.get("scope", "corpus") == "corpus" else gold_texts()
    n += gold_texts() * (len(ORDERS) + len(PROMPT_VARIANTS.get(wildcards.model, [])))
    thr, _ = RUNTIME.inference_throughput(m, measured_throughput(wildcards.model))
    startup = math.ceil(float((m.get("limits") or {}).get("serve_timeout", 600)) / 60)
    return (RUNTIME.runtime_minutes(n, thr) + startup) * attempt


def _serve_python():
    """The Python that runs the step: the conda env's under --sdm conda, else Snakemake's."""
    from snakemake.settings.types import DeploymentMethod

    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method:
        return "python"
    return sys.executable


def _serve_spec(wildcards):
    """The coder's settings (URL credentials redacted; a served coder has no URL) and
    limits, as one JSON argument of the step."""
    m = config["models"][wildcards.model]
    return json.dumps({"settings": model_settings(wildcards), "limits": m.get("limits") or {}})
