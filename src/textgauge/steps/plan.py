"""Rule of workflow/rules/plan.smk: the dry-run cost and job plan (no request is sent)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.io import write_text_atomic


def cost_plan(*, corpus: str, sample: str, plan_json: str, plan_md: str,
              models: Mapping[str, Any], labels: Mapping[str, str], instructions: str = "",
              seed: int = 0, positional_orders: Sequence[str] = (), shards: int = 4,
              name: str | None = None, train: str | None = None,
              variants: Sequence[str] | None = None,
              prompt_variants: Mapping[str, Sequence[str]] | None = None,
              scale: str = "nominal", results: str | None = None) -> dict[str, Any]:
    """Rule cost_plan: results/plan/plan.json and plan.md (see planning.cost.plan_models).

    ``train`` is the training split (few-shot examples are drawn from it, training jobs are
    sized by it); ``variants`` the paraphrased templates (inputs, so an edit replans);
    ``results`` the results folder, whose earlier benchmark files give measured throughputs.
    """
    from textgauge.planning.cost import plan_markdown, plan_models

    del variants  # the same files as prompt_variants, listed as inputs
    pool = pd.read_parquet(train) if train else None
    plan = plan_models(models, labels, pd.read_parquet(corpus), pd.read_parquet(sample),
                       instructions=instructions, seed=seed,
                       positional_orders=positional_orders, shards=shards, name=name,
                       few_shot_pool=pool, prompt_variants=prompt_variants, scale=scale,
                       n_train=len(pool) if pool is not None else None, results=results)
    write_text_atomic(json.dumps(plan, indent=1, default=str), plan_json)
    write_text_atomic(plan_markdown(plan), plan_md)
    return plan


def spend(*, plan: str, predictions: str | Sequence[str] | None, spend: str,
          models: Mapping[str, Mapping[str, Any]], batch_api: Any,
          gpu: Mapping[str, Any], results: str,
          after: str | Sequence[str] | None = None) -> dict[str, Any]:
    """Rule spend: results/plan/spend.json, planned against actual (planning.spend).

    ``predictions`` are every prediction file of every model (shards or gold, label orders,
    prompt variants: ``predictions/{model}/X.parquet``); ``results`` the results folder whose
    ``benchmarks/`` hold the jobs' benchmark files (read if present); ``gpu`` says which
    models' jobs requested a GPU; ``batch_api`` which ran through the batch API. ``after``
    (the gathered predictions, metrics, human agreement) only orders the rule after the
    benchmarked jobs.
    """
    del after
    batch_api = dict(batch_api) if isinstance(batch_api, Mapping) else dict(vars(batch_api))
    import glob
    import os

    from textgauge.options import model_options
    from textgauge.planning import spend as sp
    from textgauge.planning.cost import engine_of
    from textgauge.planning.runtime import read_benchmark

    paths = [predictions] if isinstance(predictions, str) else list(predictions or [])
    planned = json.loads(Path(plan).read_text(encoding="utf-8"))
    usage: dict[str, dict[str, Any]] = {}
    parts: dict[str, dict[str, int]] = {}
    backends: dict[str, str | None] = {}
    expected = []
    for p in paths:
        model = Path(p).parent.name
        rule, stem = sp.part_of(p)
        df = pd.read_parquet(p)
        usage[model] = sp.add_usage(usage.get(model, {}), sp.usage_totals(df))
        parts.setdefault(model, {})
        parts[model][rule] = parts[model].get(rule, 0) + 1
        if model not in backends and "backend" in df.columns and len(df):
            backends[model] = str(df["backend"].iloc[0])
        expected.append(os.path.join(results, "benchmarks", "predict", model, stem + ".tsv"))
    for name, m in models.items():
        if m.get("kind") in ("encoder", "lora", "baseline"):
            expected.append(os.path.join(results, "benchmarks", f"train_{m['kind']}",
                                         f"{name}.tsv"))
    prompted = {}
    for name, m in models.items():
        if m.get("kind") != "prompt" or name not in usage:
            continue
        # a local engine or self-hosted server costs GPU time, not tokens (as in the plan)
        local = engine_of(model_options(m, name)) is not None
        prompted[name] = sp.model_spend(
            name, usage[name], parts[name], planned["models"].get(name), str(m.get("model")),
            backends.get(name), provider="local" if local else None,
            prices={"providers": {}, "models": {}} if local else None,
            batch=bool(batch_api.get(name)))
    records = []
    for f in sorted(glob.glob(os.path.join(results, "benchmarks", "**", "*.tsv"),
                              recursive=True)):
        rec = read_benchmark(f)
        if rec is not None:
            records.append({"path": f, **rec})
    bench = sp.benchmark_summary(records, dict(gpu), expected)
    for name, b in bench["models"].items():
        b["gpu_hours_planned"] = (planned["models"].get(name) or {}).get("gpu_hours")
        b["gpu_hours_requested"] = (planned["models"].get(name) or {}).get(
            "gpu_hours_requested")
    costs = [e["actual"]["cost_usd"] for e in prompted.values()]
    out = {
        "models": prompted,
        "totals": {
            "answers_asked": sum(e["actual"]["answers"] for e in prompted.values()),
            "answers_reused": sum(e["reused"]["answers"] for e in prompted.values()),
            "input_tokens": sum(e["actual"]["input_tokens"] for e in prompted.values()),
            "output_tokens": sum(e["actual"]["output_tokens"] for e in prompted.values()),
            "cached_tokens": sum(e["actual"]["cached_tokens"] for e in prompted.values()),
            # None when no coder has a token price (local engines cost GPU time)
            "cost_usd": (sum(c for c in costs if c is not None)
                         if any(c is not None for c in costs) else None),
            "cost_planned_usd": (planned.get("totals", {}).get("cost_expected_usd")
                                 if any(e.get("cost_expected_usd") is not None
                                        for e in planned["models"].values()) else None),
            "gpu_hours": bench["total"]["gpu_hours"],
            "gpu_hours_planned": planned.get("totals", {}).get("gpu_hours"),
            "gpu_hours_requested": planned.get("totals", {}).get("gpu_hours_requested"),
        },
        "benchmarks": bench,
        "price_table_as_of": planned.get("price_table_as_of"),
    }
    write_text_atomic(json.dumps(out, indent=1, default=str), spend)
    return out
