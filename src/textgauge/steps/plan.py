"""Rule of workflow/rules/plan.smk: the dry-run cost and job plan (no request is sent)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from textgauge.io import write_text_atomic


def cost_plan(*, corpus: str, sample: str, plan_json: str, plan_md: str,
              models: Mapping[str, Any], labels: Mapping[str, str], instructions: str = "",
              seed: int = 0, positional_orders: Sequence[str] = (), shards: int = 4,
              name: str | None = None) -> dict[str, Any]:
    """Rule cost_plan: results/plan/plan.json and plan.md (see planning.cost.plan_models)."""
    from textgauge.planning.cost import plan_markdown, plan_models

    plan = plan_models(models, labels, pd.read_parquet(corpus), pd.read_parquet(sample),
                       instructions=instructions, seed=seed,
                       positional_orders=positional_orders, shards=shards, name=name)
    write_text_atomic(json.dumps(plan, indent=1, default=str), plan_json)
    write_text_atomic(plan_markdown(plan), plan_md)
    return plan
