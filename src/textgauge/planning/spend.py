"""Spend after the run: what the machine coders used, beside what the cost plan planned.

Every prompted answer records the usage its backend reported (``usage_*`` columns of the
prediction files: input/prompt tokens, output tokens, cached input tokens read and written,
seconds). :func:`usage_totals` sums them over every prediction file a model produced (the
gold sample or the corpus shards, the label-order and prompt-variant re-runs); answers reused
from a checkpoint (``answer_reused``: a resumed or re-run job that did not ask again) are
summed apart, since they were not paid for by this run. :func:`price_usage` prices the tokens
with the same dated table the plan uses (cached reads and cache writes at their own prices,
the batch discount where the batch API ran).

:func:`benchmark_summary` sums Snakemake's benchmark files (``results/benchmarks/``) into wall
hours per rule and per model, and GPU-hours for the jobs that requested a GPU. A missing
benchmark file is counted and said, never filled in.

Pure functions: the rule ``spend`` (``textgauge.steps.plan.spend``) reads the files.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from textgauge.planning.prices import find_price, guess_provider

#: token fields of a spend record -> the usage column of a prediction file
USAGE_COLUMNS = {"input_tokens": "usage_prompt_tokens",
                 "output_tokens": "usage_completion_tokens",
                 "cached_tokens": "usage_cached_tokens",
                 "cache_write_tokens": "usage_cache_creation_tokens"}
#: the column that marks an answer taken from the checkpoint instead of asked in this run
REUSED_COLUMN = "answer_reused"
#: the rules whose jobs request a GPU when their model runs on a local engine
GPU_RULES = ("predict_gold", "predict_shard", "predict_gold_order", "predict_gold_variant",
             "train_encoder", "train_lora")
#: rules whose jobs always request a GPU: a served coder's server (its predict jobs are clients)
ALWAYS_GPU_RULES = ("serve_model",)


def part_of(path: str) -> tuple[str, str]:
    """(rule, part) of a prediction file or its benchmark file, from the file name:
    gold -> predict_gold, shard-0001 -> predict_shard, gold-order-X -> predict_gold_order,
    gold-variant-N -> predict_gold_variant."""
    stem = re.sub(r"\.(parquet|tsv)$", "", path.replace("\\", "/").rsplit("/", 1)[-1])
    if stem.startswith("shard-"):
        return "predict_shard", stem
    if stem.startswith("gold-order-"):
        return "predict_gold_order", stem
    if stem.startswith("gold-variant-"):
        return "predict_gold_variant", stem
    return "predict_gold", stem


def usage_totals(df: pd.DataFrame) -> dict[str, Any]:
    """Usage of one prediction file, split into answers asked in this run and answers reused
    from the checkpoint. ``recorded``: whether the backend reported token usage at all."""
    reused = (df[REUSED_COLUMN].fillna(False).astype(bool) if REUSED_COLUMN in df.columns
              else pd.Series(False, index=df.index))
    out: dict[str, Any] = {"recorded": any(c in df.columns for c in USAGE_COLUMNS.values())}
    for name, mask in (("asked", ~reused), ("reused", reused)):
        part = {"answers": int(mask.sum())}
        for key, col in USAGE_COLUMNS.items():
            part[key] = (int(pd.to_numeric(df.loc[mask, col], errors="coerce").fillna(0).sum())
                         if col in df.columns else 0)
        out[name] = part
    return out


def add_usage(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """The sum of two :func:`usage_totals` results."""
    out: dict[str, Any] = {"recorded": bool(a.get("recorded")) or bool(b.get("recorded"))}
    for name in ("asked", "reused"):
        x, y = a.get(name) or {}, b.get(name) or {}
        out[name] = {k: int(x.get(k, 0)) + int(y.get(k, 0))
                     for k in ("answers", *USAGE_COLUMNS)}
    return out


def price_usage(tokens: Mapping[str, int], model: str, provider: str | None = None,
                prices: Mapping[str, Any] | None = None, batch: bool = False
                ) -> dict[str, Any]:
    """The cost of ``tokens`` (input/output/cached/cache-write counts) at the dated table's
    prices: uncached input at the input price, cached reads and cache writes at theirs, output
    at the output price, less the provider's batch discount when ``batch``. ``cost_usd`` is
    None when the table has no price for the model (self-hosted engines cost GPU time)."""
    from textgauge.planning.prices import load_prices

    prices = dict(prices) if prices is not None else load_prices()
    provider = provider or guess_provider(model)
    prov = (prices.get("providers") or {}).get(provider, {})
    price_model, price = find_price(prices, model)
    if price is None:
        return {"cost_usd": None, "price_model": None, "price_as_of": None}
    p_in = float(price["input"]) / 1e6
    p_out = float(price["output"]) / 1e6
    p_read = float(price.get("cached_input", price["input"])) / 1e6
    p_write = float(price.get("cache_write", price["input"])) / 1e6
    cached = int(tokens.get("cached_tokens", 0))
    write = int(tokens.get("cache_write_tokens", 0))
    plain = max(0, int(tokens.get("input_tokens", 0)) - cached - write)
    cost = plain * p_in + cached * p_read + write * p_write \
        + int(tokens.get("output_tokens", 0)) * p_out
    discount = float(prov.get("batch_discount", 0.5)) if batch else 0.0
    return {"cost_usd": cost * (1 - discount), "price_model": price_model,
            "price_as_of": str(price.get("as_of", prov.get("as_of", "unknown"))),
            "batch_discount": discount}


def model_spend(name: str, usage: Mapping[str, Any], parts: Mapping[str, int],
                planned: Mapping[str, Any] | None, model: str, backend: str | None,
                provider: str | None = None, prices: Mapping[str, Any] | None = None,
                batch: bool = False) -> dict[str, Any]:
    """Planned against actual for one prompted coder (one row of the report's table)."""
    asked, reused = dict(usage["asked"]), dict(usage["reused"])
    price = price_usage(asked, model, provider, prices, batch)
    asked["cost_usd"] = price["cost_usd"]
    reused["cost_usd"] = price_usage(reused, model, provider, prices, batch)["cost_usd"]
    plan = planned or {}
    keep = ("requests", "input_tokens", "output_tokens", "cached_input_tokens",
            "cost_expected_usd", "cost_upper_usd", "cost_mode", "gpu_hours",
            "gpu_hours_requested")
    out: dict[str, Any] = {
        "model": name, "model_id": model, "backend": backend, "parts": dict(parts),
        "usage_recorded": bool(usage.get("recorded")),
        "planned": {k: plan.get(k) for k in keep} if planned else None,
        "actual": asked, "reused": reused, "price_model": price["price_model"],
        "price_as_of": price["price_as_of"], "batch_api": bool(batch)}
    # the plan covers every answer of the run: compare it with all answers' usage
    total_in = asked["input_tokens"] + reused["input_tokens"]
    p_in = plan.get("input_tokens")
    out["input_tokens_vs_plan"] = ((total_in - p_in) / p_in
                                   if p_in and usage.get("recorded") and total_in else None)
    total_out = asked["output_tokens"] + reused["output_tokens"]
    p_out = plan.get("output_tokens")
    out["output_tokens_vs_plan"] = ((total_out - p_out) / p_out
                                    if p_out and usage.get("recorded") and total_out else None)
    return out


def benchmark_rule(path: str) -> tuple[str, str | None]:
    """(rule, model) of a benchmark file under results/benchmarks/: ``predict/{model}/X.tsv``
    (the rule from X, see :func:`part_of`), ``{rule}/{model}.tsv`` or ``{rule}.tsv``."""
    p = path.replace("\\", "/")
    rel = p.split("/benchmarks/", 1)[-1]
    bits = rel.split("/")
    if bits[0] == "predict" and len(bits) >= 3:
        return part_of(bits[-1])[0], bits[1]
    if len(bits) >= 2:
        return bits[0], re.sub(r"\.tsv$", "", bits[-1])
    return re.sub(r"\.tsv$", "", bits[0]), None


def benchmark_summary(records: Sequence[Mapping[str, Any]], gpu_models: Mapping[str, Any],
                      expected: Sequence[str] = ()) -> dict[str, Any]:
    """Wall, CPU and GPU hours per rule and per model from benchmark ``records``
    ({"path", "s", "cpu_time"}; see :func:`textgauge.planning.runtime.read_benchmark}`).

    A job counts GPU-hours (wall x 1 GPU) when its rule is a GPU rule and its model runs on a
    GPU (``gpu_models[model]`` true, as the rule's ``gpu`` resource). ``expected`` lists the
    benchmark files the finished jobs should have written; those absent are counted, not
    filled in."""
    rules: dict[str, dict[str, Any]] = {}
    models: dict[str, dict[str, Any]] = {}
    seen = set()
    for r in records:
        rule, model = benchmark_rule(str(r["path"]))
        seen.add(str(r["path"]))
        wall = float(r["s"]) / 3600
        gpu = wall if model and (rule in ALWAYS_GPU_RULES or (
            rule in GPU_RULES and int(gpu_models.get(model) or 0))) else 0.0
        cpu = float(r.get("cpu_time") or 0.0) / 3600
        for key, table in ((rule, rules), (model, models)):
            if key is None or (table is models and model not in gpu_models):
                continue
            t = table.setdefault(key, {"jobs": 0, "wall_hours": 0.0, "gpu_hours": 0.0,
                                       "cpu_hours": 0.0})
            t["jobs"] += 1
            t["wall_hours"] += wall
            t["gpu_hours"] += gpu
            t["cpu_hours"] += cpu
    missing = [p for p in expected if p not in seen]
    total = {k: sum(t[k] for t in rules.values())
             for k in ("jobs", "wall_hours", "gpu_hours", "cpu_hours")}
    notes = []
    if not records:
        notes.append("No benchmark files were found under results/benchmarks/ (the jobs ran "
                     "before benchmarks were recorded, or the files were deleted): wall and "
                     "GPU hours are unknown.")
    elif missing:
        notes.append(f"{len(missing)} of {len(expected)} prediction/training jobs have no "
                     "benchmark file (run before benchmarks were recorded, or deleted): their "
                     "hours are not counted.")
    return {"files": len(records), "rules": dict(sorted(rules.items())),
            "models": dict(sorted(models.items())), "total": total,
            "missing": missing, "notes": notes}
