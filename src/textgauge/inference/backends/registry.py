"""``make_backend(cfg)``: build a prompted-classification backend from a config dict.

Each backend is imported lazily (its SDK is an optional extra). Adding one is one line in
``_BACKENDS``: ``"name": "module.path:ClassName"``.
"""

from __future__ import annotations

import importlib
from typing import Any

from textgauge.errors import BackendError, ConfigError
from textgauge.inference.backends.base import PromptBackend

_BACKENDS: dict[str, str] = {
    "openai": "textgauge.inference.backends.openai:OpenAIBackend",
    "anthropic": "textgauge.inference.backends.anthropic:AnthropicBackend",
    "vllm": "textgauge.inference.backends.vllm:VLLMBackend",
}


def available_backends() -> list[str]:
    return sorted(_BACKENDS)


def make_backend(cfg: dict[str, Any], local_only: bool = False) -> PromptBackend:
    """Build the backend named by ``cfg["backend"]``.

    With ``local_only=True`` a backend whose requests leave this machine (the OpenAI or
    Anthropic hosts, any ``base_url`` other than localhost/127.0.0.1/::1 or a unix socket) is
    refused with a :class:`BackendError` before any request is sent. ``batch_api: true``
    wraps an openai/anthropic backend in the provider's batch API (see ``batch.py``).
    """
    name = cfg.get("backend")
    if name not in _BACKENDS:
        raise ConfigError(f"Unknown backend {name!r}. Choose one of: "
                          f"{', '.join(available_backends())}.")
    module, _, cls_name = _BACKENDS[name].partition(":")
    try:
        cls = getattr(importlib.import_module(module), cls_name)
    except ImportError as exc:
        raise BackendError(f"The {name} backend cannot be imported ({exc}). Install its extra, "
                           "e.g. pip install 'textgauge[api]'.") from exc
    backend = cls(cfg)
    if local_only and getattr(backend, "external", False):
        from textgauge.inference.backends.openai import public_url

        where = public_url(getattr(backend, "base_url", None)) or "an external API"
        raise BackendError(f"Local-only mode refuses the {name} backend: its requests would go "
                           f"to {where}, off this machine. Point `base_url` at a server on "
                           "localhost (e.g. vLLM) or switch local-only mode off for this model.")
    if cfg.get("batch_api"):
        from textgauge.inference.backends.batch import BatchBackend

        backend = BatchBackend(backend, cfg)
    return backend
