"""Dry-run cost and job plan for prompted coding (``textgauge plan``).

Counts the input tokens of rendered requests with the model's tokenizer, separates the shared
prefix (system prompt: codebook, instructions, examples; cacheable and discounted) from the
per-text tokens, adds the output tokens the answer schema needs, a margin for retries and
re-asks, and prices it all from a dated table (``prices.yaml``), with and without prompt
caching and the batch API.

Tokenizers:

* OpenAI models: ``tiktoken`` (``encoding_for_model``; unknown names fall back to
  ``o200k_base``). tiktoken downloads its BPE files once; offline, set ``TIKTOKEN_CACHE_DIR``
  to a folder holding them, or the plan falls back to characters / 4 and says so.
* Open models (vLLM, transformers): a Hugging Face tokenizer folder or name
  (``--tokenizer PATH``, via ``transformers.AutoTokenizer``; optional import).
* Anthropic: no public tokenizer; approximated as characters / 3.5 (Claude tokenizers give
  roughly 3-4 characters per token on English prose; the Messages API's ``count_tokens``
  endpoint gives exact numbers online). Treat the figure as an estimate.

Chat formatting overhead follows OpenAI's published rule of thumb: 3 tokens per message plus
the role, and 3 tokens to prime the reply. A Hugging Face tokenizer with a chat template counts
the rendered template instead (exact for local engines).

:func:`plan_models` plans every machine coder of a workflow config (rule ``cost_plan``,
``results/plan/plan.{json,md}``): requests rendered over each model's scope (the gold sample or
the whole corpus) plus the positional-audit re-runs, token counts, API prices with caching and
batch discounts, and GPU-hours of local engines from ``throughput_texts_per_s``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from textgauge.errors import InputDataError
from textgauge.escaping import md_escape
from textgauge.inference.backends.base import PromptRequest
from textgauge.options import EncoderModel, LoraModel, ModelOptions, PromptModel, model_options
from textgauge.planning import runtime as rt
from textgauge.planning.prices import find_price, guess_provider, load_prices
from textgauge.planning.runtime import DEFAULT_THROUGHPUT as RUNTIME_DEFAULTS
from textgauge.planning.tokens import (
    TOKENS_REPLY_PRIMING,
    hf_counter,
    make_counter,
    message_tokens,
    output_tokens,
)

# ---------------------------------------------------------------------------- plan

@dataclass
class CostPlan:
    """Token and cost plan for one model over a set of requests."""

    model: str
    provider: str
    tokenizer: str
    n_requests: int
    n_prefix_groups: int
    prefix_tokens_per_request: float
    input_tokens: int
    prefix_tokens: int
    text_tokens: int
    cacheable_prefix: bool
    output_tokens_per_request: int
    output_tokens: int
    retry_overhead: float
    batch_discount: float
    price_model: str | None = None
    price_as_of: str | None = None
    price_source: str | None = None
    cost_plain: float | None = None
    cost_cached: float | None = None
    cost_batch: float | None = None
    cost_cached_batch: float | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_markdown(self) -> str:
        m = 1 + self.retry_overhead

        def n(x: float) -> str:
            return f"{round(x):,}"

        def usd(x: float | None) -> str:
            return "n/a (no price)" if x is None else f"${x:,.2f}"

        rows = [
            ("requests (texts)", n(self.n_requests), n(self.n_requests * m)),
            ("input tokens", n(self.input_tokens), n(self.input_tokens * m)),
            ("  shared prefix (cacheable)" if self.cacheable_prefix
             else "  shared prefix (too short to cache)", n(self.prefix_tokens),
             n(self.prefix_tokens * m)),
            ("  per-text", n(self.text_tokens), n(self.text_tokens * m)),
            ("output tokens", n(self.output_tokens), n(self.output_tokens * m)),
        ]
        out = [f"## Cost plan: {md_escape(self.model)} ({self.provider})", "",
               f"Tokenizer: {md_escape(self.tokenizer)}. Prompt prefixes: {self.n_prefix_groups} distinct, "
               f"{self.prefix_tokens_per_request:,.0f} tokens each on average. Output: "
               f"{self.output_tokens_per_request} tokens per answer.", "",
               f"| | planned | with {self.retry_overhead:.0%} retry/re-ask margin |",
               "| --- | ---: | ---: |"]
        out += [f"| {a} | {b} | {c} |" for a, b, c in rows]
        out += ["", "| cost (with margin) | USD |", "| --- | ---: |",
                f"| online, no caching | {usd(self.cost_plain)} |",
                f"| online, prefix caching | {usd(self.cost_cached)} |",
                f"| batch API ({self.batch_discount:.0%} off) | {usd(self.cost_batch)} |",
                f"| batch API + caching | {usd(self.cost_cached_batch)} |", ""]
        if self.price_model:
            out.append(f"Prices: `{self.price_model}` as of {self.price_as_of}, from "
                       f"{self.price_source}. **Check before use**: prices change.")
        out += [f"- {x}" for x in self.notes]
        return "\n".join(out) + "\n"


def plan_cost(requests: Sequence[PromptRequest], model: str, provider: str | None = None,
              prices: dict[str, Any] | None = None, tokenizer: Any = None,
              structured: str = "json_schema", retry_overhead: float = 0.25,
              batch_discount: float | None = None, max_output_tokens: int | None = None,
              min_cache_tokens: int | None = None) -> CostPlan:
    """Plan tokens and cost of classifying ``requests`` with ``model``.

    The shared prefix of a request is its leading system message(s); requests with the same
    prefix form a group (rotated label orders make several). Within a group the first request
    writes the cache and the others read it: an optimistic bound (concurrency and cache
    expiry cause more misses).
    """
    if not requests:
        raise InputDataError("No requests to plan: the corpus or sample is empty.")
    if prices is None:
        prices = load_prices()
    provider = provider or guess_provider(model)
    count = make_counter(model, provider, tokenizer)
    prov = (prices.get("providers") or {}).get(provider, {})
    if batch_discount is None:
        batch_discount = float(prov.get("batch_discount", 0.5))
    if min_cache_tokens is None:
        min_cache_tokens = int(prov.get("min_cache_tokens", 1024))

    groups: dict[str, list[int]] = {}
    prefix_tok: list[int] = []
    text_tok: list[int] = []
    out_tok: list[int] = []
    cache: dict[str, int] = {}
    for r in requests:
        k = 0
        while k < len(r.messages) and r.messages[k].get("role") == "system":
            k += 1
        key = json.dumps(r.messages[:k], sort_keys=True)
        if count.chat is not None:  # exact: the chat template as the model sees it
            if key not in cache:
                cache[key] = count.chat(r.messages[:k], False) if k else 0
            p = cache[key]
            t = count.chat(r.messages, True) - p
        else:
            if key not in cache:
                cache[key] = sum(message_tokens(m, count) for m in r.messages[:k])
            p = cache[key]
            t = sum(message_tokens(m, count) for m in r.messages[k:]) + TOKENS_REPLY_PRIMING
        groups.setdefault(key, []).append(len(prefix_tok))
        prefix_tok.append(p)
        text_tok.append(t)
        o = max_output_tokens or output_tokens(r.labels, structured, count)
        out_tok.append(o)

    n = len(requests)
    prefix_total, text_total, out_total = sum(prefix_tok), sum(text_tok), sum(out_tok)
    input_total = prefix_total + text_total
    mean_prefix = prefix_total / n
    cacheable = mean_prefix >= min_cache_tokens and n > len(groups)
    notes = []
    if not count.exact:
        notes.append(f"Token counts are estimates ({count.description}).")
    if not cacheable:
        notes.append(f"The shared prefix ({mean_prefix:,.0f} tokens) is below the "
                     f"{min_cache_tokens:,}-token minimum the provider caches (or every prompt "
                     "differs): caching saves nothing.")
    if len(groups) > 1:
        notes.append(f"{len(groups)} distinct prefixes (e.g. rotated label orders): each is "
                     "cached separately.")
    notes.append("Caching assumes every request after the first of its prefix hits the cache "
                 "(optimistic; concurrency and 5-minute expiry add misses).")
    if provider == "anthropic":
        notes.append("Structured outputs add a system prompt on Anthropic's side that is not "
                     "counted here.")

    price_model, price = find_price(prices, model)
    plan = CostPlan(model=model, provider=provider, tokenizer=count.description, n_requests=n,
                    n_prefix_groups=len(groups), prefix_tokens_per_request=mean_prefix,
                    input_tokens=input_total, prefix_tokens=prefix_total, text_tokens=text_total,
                    cacheable_prefix=cacheable, output_tokens_per_request=max(out_tok),
                    output_tokens=out_total, retry_overhead=retry_overhead,
                    batch_discount=batch_discount, notes=notes)
    if price is None:
        plan.notes.append(f"No price for {model!r} in the price table (self-hosted models cost "
                          "compute time, not tokens); add it to prices.yaml to get costs.")
        return plan
    plan.price_model = price_model
    plan.price_as_of = str(price.get("as_of", prov.get("as_of", "unknown")))
    plan.price_source = str(price.get("source", prov.get("source", "unknown")))
    p_in = float(price["input"]) / 1e6
    p_out = float(price["output"]) / 1e6
    p_read = float(price.get("cached_input", price["input"])) / 1e6
    p_write = float(price.get("cache_write", price["input"])) / 1e6
    m = 1 + retry_overhead
    plain = input_total * p_in + out_total * p_out
    if cacheable:
        cached = text_total * p_in + out_total * p_out
        for idx in groups.values():
            first, rest = idx[0], idx[1:]
            cached += prefix_tok[first] * p_write + sum(prefix_tok[i] for i in rest) * p_read
    else:
        cached = plain
    plan.cost_plain = plain * m
    plan.cost_cached = cached * m
    plan.cost_batch = plain * m * (1 - batch_discount)
    plan.cost_cached_batch = cached * m * (1 - batch_discount)
    return plan


# ---------------------------------------------------------------------------- workflow plan

#: Texts per second of one GPU when a model sets no ``throughput_texts_per_s`` (and no earlier
#: run measured it): placeholders, see :mod:`textgauge.planning.runtime`. They are not
#: measurements of your model: time a pilot run (its benchmark files are read by the next
#: plan) or set ``throughput_texts_per_s`` per model.
DEFAULT_THROUGHPUT = RUNTIME_DEFAULTS
DEFAULT_ORDERS = ("reversed", "rotated")


def _fast_template(tpl: Any) -> Any:
    """The template with its jinja2 source compiled once (rendering recompiles per text,
    ~5 ms each: minutes for a large corpus)."""
    import copy

    compiled = tpl._template()
    fast = copy.copy(tpl)
    object.__setattr__(fast, "_template", lambda: compiled)
    return fast


def provider_and_tokenizer(m: PromptModel, tokenizers: Mapping[str, Any], name: str
                           ) -> tuple[str, Any, str | None]:
    """(provider, tokenizer for make_counter, note) for one prompted model."""
    from textgauge.inference.backends.openai import is_local_url

    backend = m.backend
    model = m.model
    given = tokenizers.get(name, m.plan.tokenizer)
    if backend in ("openai", "anthropic") and not m.serve:  # serve: the model's own tokenizer
        local = m.base_url and is_local_url(m.base_url, m.unix_socket)
        if not local:
            return backend, given, None
        if given is not None:
            return "local", given, None
        return "local", "approx:4", (f"{name}: a self-hosted server; set the model's "
                                     "`tokenizer:` (a Hugging Face tokenizer folder) for exact "
                                     "token counts")
    if given is not None:
        return "local", given, None
    from textgauge.inference.aliases import resolve

    try:
        return "local", hf_counter(resolve(model)), None
    except Exception as exc:  # noqa: BLE001 - the plan still runs, marked approximate
        return "local", "approx:4", (f"{name}: could not load the tokenizer of {model!r} "
                                     f"({type(exc).__name__}); token counts are characters / 4")


def engine_of(m: PromptModel | EncoderModel | LoraModel) -> str | None:
    """Which local engine runs the model (None: a remote API)."""
    from textgauge.inference.backends.openai import is_local_url

    if not isinstance(m, PromptModel):
        return m.kind
    if m.backend in ("transformers", "vllm"):
        return m.backend
    if m.serve or (m.base_url and is_local_url(m.base_url, m.unix_socket)):
        return "local-server"  # serve: true: the managed server of rule serve_model
    return None


def plan_models(models: Mapping[str, Any], labels: Mapping[str, str], corpus_df: Any,
                sample_df: Any, instructions: str = "", seed: int = 0,
                positional_orders: Sequence[str] = DEFAULT_ORDERS, shards: int = 4,
                name: str | None = None, prices: dict[str, Any] | None = None,
                tokenizers: Mapping[str, Any] | None = None, few_shot_pool: Any = None,
                prompt_variants: Mapping[str, Sequence[str]] | None = None,
                scale: str = "nominal", n_train: int | None = None,
                results: str | None = None) -> dict[str, Any]:
    """Plan every machine coder before running it (rule ``cost_plan``).

    ``models`` maps names to model settings (a config's ``models``, or typed options). For
    each ``kind: prompt`` model the requests are rendered with its template over its scope
    (``sample_df`` for ``scope: gold``, else ``corpus_df``; columns id, text), plus the
    positional-audit re-runs of the gold sample (``positional_orders``), and planned with
    :func:`plan_cost` (tiktoken for OpenAI, the model's Hugging Face tokenizer via
    :func:`textgauge.inference.aliases.resolve` for local engines, characters / 3.5 for
    Anthropic; the model's ``plan.tokenizer``, or ``tokenizers[name]``, instead). API models get
    costs from the dated price table (the expected cost assumes prompt caching, and the batch
    API where ``limits.batch_api: true``); local engines get GPU-hours from
    ``plan.throughput_texts_per_s`` (default :data:`DEFAULT_THROUGHPUT`). The inference jobs
    per rule follow from the settings; the whole DAG's job counts come from
    ``textgauge plan-jobs`` (a Snakemake dry run).

    Prompts are rendered as the predict jobs render them: with the model's few-shot examples
    (drawn from ``few_shot_pool``, the training split, with the run's seed; their tokens are in
    every prompt) and ``scale``; ``prompt_variants`` (model -> paraphrased templates, the
    prompt-stability audit) add one gold-sample run per template. GPU jobs also get the
    walltime they request (:mod:`textgauge.planning.runtime`: each job's texts at the model's
    throughput, configured or measured in the earlier run under ``results``, with a margin and
    a floor): ``gpu_hours_requested`` is what ``textgauge plan-jobs`` sums for the same run;
    ``n_train`` (training split rows) plans the training jobs of encoder and LoRA models.
    """
    from textgauge.inference.prompting import PromptTemplate

    if prices is None:
        prices = load_prices()
    tokenizers = dict(tokenizers or {})
    labels = dict(labels)
    orders = list(positional_orders)
    n_shards = int(shards)
    gold_items = list(zip(sample_df["id"].astype(str), sample_df["text"], strict=True))
    corpus_items = list(zip(corpus_df["id"].astype(str), corpus_df["text"], strict=True))
    out: dict[str, Any] = {"project": name,
                           "dry_run": "no request is sent; counts from rendered prompts",
                           "price_table_as_of": sorted({str(p.get("as_of")) for p in
                                                        (prices.get("providers") or {})
                                                        .values() if p.get("as_of")}),
                           "models": {}, "jobs": {}, "notes": []}
    jobs: dict[str, int] = {}
    variants_of = {k: list(v) for k, v in (prompt_variants or {}).items()}
    from textgauge.data.corpus import shard_corpus

    shard_n = [len(p) for p in shard_corpus(corpus_df, n_shards)] if n_shards else []
    for mname, raw in models.items():
        m = raw if isinstance(raw, ModelOptions) else model_options(raw, mname)
        raw_cfg = m.to_dict()  # the settings with defaults, as the workflow's resources see them
        kind = m.kind
        scope = m.scope
        items = gold_items if scope == "gold" else corpus_items
        engine = engine_of(m)
        prompted = isinstance(m, PromptModel)
        entry: dict[str, Any]
        if kind == "baseline":  # CPU, seconds: no GPU-hours, no tokens, no cost
            entry = {"kind": kind, "backend": "scikit-learn", "scope": scope,
                     "model": "TF-IDF + logistic regression", "texts": len(items),
                     "engine": "cpu", "gpu_hours": 0.0,
                     "note": "CPU only (seconds): no GPU, no tokens, no cost"}
        else:
            entry = {"kind": kind, "backend": m.backend if prompted else "transformers",
                     "scope": scope, "model": m.model if prompted else m.base_model,
                     "texts": len(items), "engine": engine or "api"}
        mjobs = {("predict_gold" if scope == "gold" else "predict_shard"):
                 1 if scope == "gold" else n_shards, "gather_predictions": 1}
        n_requests = len(items)
        if prompted:
            from textgauge.inference.prompting import select_examples

            examples = []
            if m.few_shot and few_shot_pool is not None:
                examples = select_examples(
                    list(zip(few_shot_pool["text"], few_shot_pool["label"], strict=True)),
                    m.few_shot, seed)
                entry["few_shot_examples"] = len(examples)
            elif m.few_shot:
                out["notes"].append(f"{mname}: few_shot is set but no training split was given "
                                    "to draw the examples from: planned without them")
            tpl = _fast_template(PromptTemplate.from_file(m.prompt, labels, instructions,
                                                          examples, scale=scale))
            reqs = tpl.requests(items, order=m.label_order, seed=seed)
            audit_reqs = [r for order in orders for r in tpl.requests(gold_items, order, seed)]
            variant_reqs = [
                r for path in variants_of.get(mname, [])
                for r in _fast_template(PromptTemplate.from_file(
                    path, labels, instructions, examples, scale=scale)).requests(
                        gold_items, order=m.label_order, seed=seed)]
            provider, tok, note = provider_and_tokenizer(m, tokenizers, mname)
            if note:
                out["notes"].append(note)
            count = make_counter(m.model, provider, tok)
            structured = m.structured or ("choice" if engine else "json_schema")
            retry = 0.0 if engine in ("transformers", "vllm") else 0.25
            kw = {"model": m.model, "provider": provider, "prices": prices,
                  "tokenizer": count, "structured": structured, "retry_overhead": retry}
            run = plan_cost(reqs, **kw)
            entry["run"] = run.to_dict()
            plans = [run]
            if audit_reqs:
                audit = plan_cost(audit_reqs, **kw)
                entry["positional_audit"] = audit.to_dict()
                entry["positional_audit_orders"] = orders
                plans.append(audit)
                mjobs["predict_gold_order"] = len(orders)
            if variant_reqs:
                variant = plan_cost(variant_reqs, **kw)
                entry["prompt_variants"] = variant.to_dict()
                entry["prompt_variant_templates"] = list(variants_of[mname])
                plans.append(variant)
                mjobs["predict_gold_variant"] = len(variants_of[mname])
            n_requests = sum(p.n_requests for p in plans)
            entry["requests"] = n_requests
            entry["input_tokens"] = sum(p.input_tokens for p in plans)
            entry["output_tokens"] = sum(p.output_tokens for p in plans)
            # prefix tokens read from the provider's cache (every request of a prefix group
            # after its first), where the prefix is long enough to be cached
            entry["cached_input_tokens"] = sum(
                p.prefix_tokens - round(p.prefix_tokens_per_request * p.n_prefix_groups)
                for p in plans if p.cacheable_prefix)
            entry["tokenizer"] = run.tokenizer
            if run.price_model and engine is None:
                batch = bool(m.limits.batch_api)
                entry["cost_mode"] = ("batch API + prompt caching" if batch
                                      else "online + prompt caching")
                entry["cost_expected_usd"] = sum(
                    (p.cost_cached_batch if batch else p.cost_cached) or 0.0 for p in plans)
                entry["cost_upper_usd"] = sum(p.cost_plain or 0.0 for p in plans)
            elif engine is None:
                entry["cost_expected_usd"] = None
                out["notes"].append(f"{mname}: no price for {m.model!r} in the price table")
        else:
            entry["requests"] = n_requests
        if engine is not None and kind != "baseline":
            measured = rt.measured_throughput(results, mname) if results else None
            thr, source = rt.inference_throughput(raw_cfg, measured)
            entry["throughput_texts_per_s"] = thr
            entry["throughput_source"] = source
            entry["gpu_hours"] = n_requests / thr / 3600
            if rt.gpu_engine(raw_cfg):
                # one job per shard (or the gold sample), one per label order and variant
                sizes = [len(gold_items)] if scope == "gold" else shard_n
                sizes += [len(gold_items)] * (mjobs.get("predict_gold_order", 0)
                                              + mjobs.get("predict_gold_variant", 0))
                minutes = [rt.runtime_minutes(n, thr) for n in sizes]
                entry["runtime_requests_min"] = minutes
                entry["gpu_hours_requested"] = sum(minutes) / 60
            elif getattr(m, "serve", False):
                # a managed server (rule serve_model, one GPU job): every text its predict
                # jobs send at the throughput, plus the time to load the weights
                startup = math.ceil(float(m.limits.serve_timeout) / 60)
                minutes = [rt.runtime_minutes(n_requests, thr) + startup]
                entry["runtime_requests_min"] = minutes
                entry["gpu_hours_requested"] = sum(minutes) / 60
                mjobs["serve_model"] = 1
            if kind in ("encoder", "lora"):
                entry["note"] = "inference and training"
                tthr, tsource = rt.training_throughput(raw_cfg)
                if n_train is not None:
                    texts = rt.training_texts(raw_cfg, n_train)
                    entry["training"] = {
                        "texts_x_epochs": texts, "throughput_texts_per_s": tthr,
                        "throughput_source": tsource, "gpu_hours": texts / tthr / 3600,
                        "runtime_request_min": rt.runtime_minutes(texts, tthr)}
                    entry["gpu_hours"] += entry["training"]["gpu_hours"]
                    entry["gpu_hours_requested"] = (entry.get("gpu_hours_requested", 0.0)
                                                    + entry["training"]["runtime_request_min"]
                                                    / 60)
                    mjobs[f"train_{kind}"] = 1
                else:
                    entry["note"] = "inference only; no training split given to plan training"
        entry["jobs"] = mjobs
        for rule, n in mjobs.items():
            jobs[rule] = jobs.get(rule, 0) + n
        out["models"][mname] = entry
    out["jobs"] = jobs
    ms = out["models"].values()
    out["totals"] = {
        "requests": sum(e.get("requests", 0) for e in ms),
        "input_tokens": sum(e.get("input_tokens", 0) for e in ms),
        "output_tokens": sum(e.get("output_tokens", 0) for e in ms),
        "cost_expected_usd": sum(e.get("cost_expected_usd") or 0.0 for e in ms),
        "cost_upper_usd": sum(e.get("cost_upper_usd") or 0.0 for e in ms),
        "gpu_hours": sum(e.get("gpu_hours") or 0.0 for e in ms),
        "gpu_hours_requested": sum(e.get("gpu_hours_requested") or 0.0 for e in ms),
        "inference_jobs": sum(jobs.values()),
    }
    if any(e.get("throughput_source", "").startswith("default") for e in ms):
        out["notes"].append("GPU-hours use placeholder throughputs for models without "
                            "`throughput_texts_per_s`: measure a pilot run and set it.")
    out["notes"].append("Job counts cover inference and training only; `textgauge plan-jobs` "
                        "gives every rule's jobs and requested GPU-hours from a Snakemake dry "
                        "run (the same requests for the GPU jobs).")
    return out


def plan_markdown(plan: dict[str, Any]) -> str:
    """The Markdown version of :func:`plan_config`'s result."""
    def n(x: Any) -> str:
        return "" if x is None else f"{round(x):,}"

    def usd(x: Any) -> str:
        return "" if x is None else f"${x:,.2f}"

    def hours(x: Any) -> str:
        return "" if x is None else (f"{x:,.1f}" if x >= 10 else f"{x:.2g}")

    # the project and model names are the user's: shown literally (escaping.md_escape)
    out = [f"# Cost and job plan: {md_escape(plan.get('project') or 'textgauge')}", "",
           f"Dry run: {plan['dry_run']}. Prices: the dated table (as of "
           f"{', '.join(plan['price_table_as_of']) or 'unknown'}); check before use.", "",
           "| model | kind | engine | scope | texts | requests | input tokens | "
           "output tokens | expected cost | upper cost | GPU-hours | GPU-hours requested |",
           "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, e in plan["models"].items():
        out.append(f"| {md_escape(name)} | {e['kind']} | {e['engine']} | {e['scope']} | {n(e['texts'])} "
                   f"| {n(e.get('requests'))} | {n(e.get('input_tokens'))} | "
                   f"{n(e.get('output_tokens'))} | {usd(e.get('cost_expected_usd'))} | "
                   f"{usd(e.get('cost_upper_usd'))} | {hours(e.get('gpu_hours'))} | "
                   f"{hours(e.get('gpu_hours_requested'))} |")
    t = plan["totals"]
    out.append(f"| **total** | | | | | {n(t['requests'])} | {n(t['input_tokens'])} | "
               f"{n(t['output_tokens'])} | {usd(t['cost_expected_usd'])} | "
               f"{usd(t['cost_upper_usd'])} | {hours(t['gpu_hours'])} | "
               f"{hours(t.get('gpu_hours_requested'))} |")
    out += ["", "Requests include the positional-audit (label-order) and prompt-variant re-runs "
            "of the gold sample; prompts include the few-shot examples. Expected "
            "cost: prompt caching (and the batch API where `batch_api: true`), with a 25% "
            "retry/re-ask margin; upper cost: no caching, no batch discount. GPU-hours: "
            "texts / throughput (training: epochs x training texts); requested: the walltime "
            f"the GPU jobs ask for (x{rt.MARGIN:g}, at least {rt.FLOOR_MINUTES} minutes per job; "
            "what `textgauge plan-jobs` sums).", "", "## Jobs per rule", "",
            "| rule | jobs |", "| --- | ---: |"]
    out += [f"| {r} | {k} |" for r, k in plan["jobs"].items()]
    out += [f"| **total** | {t['inference_jobs']} |", ""]
    for name, e in plan["models"].items():
        for key, what in (("run", "run"), ("positional_audit", "positional-audit re-runs"),
                          ("prompt_variants", "prompt-variant re-runs")):
            if e.get(key):
                md = CostPlan(**e[key]).to_markdown()
                out.append(md.replace("## Cost plan:", f"## {md_escape(name)} ({what}): cost "
                                      "plan:"))
        if e.get("throughput_source"):
            out.append(f"{name}: {e['throughput_texts_per_s']:g} texts/s "
                       f"({e['throughput_source']}).\n")
        if e.get("training"):
            tr = e["training"]
            out.append(f"{name} training: {tr['texts_x_epochs']:,} texts x epochs at "
                       f"{tr['throughput_texts_per_s']:g} texts/s ({tr['throughput_source']}): "
                       f"{tr['runtime_request_min']} minutes requested.\n")
    if plan["notes"]:
        out += ["## Notes", ""] + [f"- {x}" for x in plan["notes"]]
    return "\n".join(out) + "\n"
