"""The dated price table (``prices.yaml``) and model-name lookups for the cost plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from textgauge.errors import ConfigError

PRICES_PATH = Path(__file__).with_name("prices.yaml")


def load_prices(path: str | Path | None = None) -> dict[str, Any]:
    p = Path(path) if path else PRICES_PATH
    if not p.exists():
        raise ConfigError(f"Price table {p} does not exist.")
    data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    if "models" not in data:
        raise ConfigError(f"Price table {p} needs a `models:` mapping (see the packaged "
                          "prices.yaml).")
    return data


def find_price(prices: dict[str, Any], model: str) -> tuple[str | None, dict[str, Any] | None]:
    """Exact model name, else the longest known name the model starts with."""
    models = prices.get("models") or {}
    if model in models:
        return model, models[model]
    cands = [m for m in models if model.startswith(m)]
    if not cands:
        return None, None
    best = max(cands, key=len)
    return best, models[best]


def guess_provider(model: str) -> str:
    m = model.lower()
    if m.startswith(("gpt-", "o1", "o3", "o4", "chatgpt", "text-embedding")):
        return "openai"
    if m.startswith("claude"):
        return "anthropic"
    return "local"
