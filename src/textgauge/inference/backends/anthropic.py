"""Anthropic Messages API backend (``AsyncAnthropic``).

The system prompt (codebook, instructions, examples) is sent as one text block marked
``cache_control: {"type": "ephemeral"}`` so the shared prefix is cached across texts.
Structured output uses ``output_config={"format": {"type": "json_schema", "schema": ...}}``
(``structured: json_schema``, default) or free text (``structured: none``). The API gives no
log-probabilities, so confidence is None. The key comes only from the environment
(``api_key_env``, default ``ANTHROPIC_API_KEY``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from textgauge.errors import BackendError, ConfigError
from textgauge.inference.backends.asyncengine import (
    Answer,
    AsyncEngine,
    EngineConfig,
    Redactor,
    parse_label,
    run_sync,
)
from textgauge.inference.backends.base import PromptBackend, PromptRequest, ResultCallback
from textgauge.inference.backends.openai import (
    api_key_from_env,
    is_local_url,
    label_schema,
    served_by,
)
from textgauge.secrets import redact_url, split_url

DEFAULT_BASE_URL = "https://api.anthropic.com"


def split_system(messages: Sequence[dict[str, str]]) -> tuple[str, list[dict[str, str]]]:
    """Anthropic takes the system prompt apart from the user/assistant turns."""
    system = "\n\n".join(m["content"] for m in messages if m.get("role") == "system")
    turns = [{"role": m["role"], "content": m["content"]} for m in messages
             if m.get("role") in ("user", "assistant")]
    return system, turns


def parse_message(body: dict[str, Any], labels: Sequence[str]) -> Answer:
    """Turn a Messages API response JSON into an :class:`Answer`."""
    text = "".join(b.get("text") or "" for b in body.get("content") or []
                   if b.get("type") == "text")
    u = body.get("usage") or {}
    inp = int(u.get("input_tokens") or 0)
    read = int(u.get("cache_read_input_tokens") or 0)
    write = int(u.get("cache_creation_input_tokens") or 0)
    usage = {"prompt_tokens": inp + read + write,
             "completion_tokens": int(u.get("output_tokens") or 0),
             "cached_tokens": read, "cache_creation_tokens": write}
    return Answer(text=text, label=parse_label(text, labels), probs=None, usage=usage,
                  served=served_by(body))


class AnthropicBackend(PromptBackend):
    """Prompted classification through the Anthropic Messages API."""

    name = "anthropic"

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = dict(cfg)
        self.model = cfg.get("model")
        if not self.model:
            raise ConfigError("The anthropic backend needs `model` (e.g. claude-haiku-4-5).")
        self.base_url = cfg.get("base_url") or DEFAULT_BASE_URL
        self.external = not is_local_url(self.base_url)
        self.structured = cfg.get("structured", "json_schema")
        if self.structured not in ("json_schema", "none"):
            raise ConfigError("structured must be json_schema or none for the anthropic "
                              f"backend, not {self.structured!r}.")
        self.api_key_env = cfg.get("api_key_env", "ANTHROPIC_API_KEY")
        self.max_tokens = int(cfg.get("max_tokens", 32))
        self.cache_prefix = bool(cfg.get("cache_prefix", True))
        self.timeout = float(cfg.get("timeout", 60.0))
        self.extra_body = dict(cfg.get("extra_body") or {})
        # this SDK has no `temperature` argument: an explicit setting travels in the body
        if cfg.get("temperature") is not None:
            self.extra_body.setdefault("temperature", cfg["temperature"])
        self.engine_cfg = EngineConfig.from_cfg(cfg)
        self.last_engine: AsyncEngine | None = None

    def _api_key(self) -> str:
        key = api_key_from_env(self.api_key_env, required=self.external, provider="anthropic")
        return key or "EMPTY"

    def request_params(self, req: PromptRequest,
                       messages: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Keyword arguments of ``messages.create`` (also the ``params`` of a batch request)."""
        system, turns = split_system(messages or req.messages)
        params: dict[str, Any] = {"model": self.model, "max_tokens": self.max_tokens,
                                  "messages": turns}
        if system:
            block: dict[str, Any] = {"type": "text", "text": system}
            if self.cache_prefix:
                block["cache_control"] = {"type": "ephemeral"}
            params["system"] = [block]
        if self.structured == "json_schema":
            params["output_config"] = {"format": {"type": "json_schema",
                                                  "schema": label_schema(req.labels)}}
        return params

    def parse(self, body: dict[str, Any], labels: Sequence[str]) -> Answer:
        return parse_message(body, labels)

    def async_client(self) -> Any:
        try:
            import anthropic
        except ImportError as exc:
            raise BackendError("The anthropic backend needs the `anthropic` package: "
                               "pip install 'textgauge[api]'.") from exc
        base_url, query = split_url(self.base_url)  # the query as default_query (openai.py)
        return anthropic.AsyncAnthropic(api_key=self._api_key(), base_url=base_url,
                                        default_query=query or None, max_retries=0,
                                        timeout=self.timeout)

    def sync_client(self) -> Any:
        import anthropic

        base_url, query = split_url(self.base_url)
        return anthropic.Anthropic(api_key=self._api_key(), base_url=base_url,
                                   default_query=query or None, max_retries=2,
                                   timeout=self.timeout)

    def classify(self, requests: Sequence[PromptRequest], on_results: ResultCallback) -> None:
        if not requests:
            return
        run_sync(lambda: self._classify(requests, on_results))

    async def _classify(self, requests: Sequence[PromptRequest],
                        on_results: ResultCallback) -> None:
        client = self.async_client()

        async def call(req: PromptRequest, messages: list[dict[str, str]]) -> Answer:
            params = self.request_params(req, messages)
            resp = await client.messages.create(**params, extra_body=self.extra_body or None)
            return self.parse(resp.model_dump(), req.labels)

        engine = AsyncEngine(call, self.engine_cfg, Redactor([os.environ.get(self.api_key_env)],
                                                             urls=[self.base_url]))
        self.last_engine = engine
        try:
            await engine.run(requests, on_results)
        finally:
            await client.close()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model, "base_url": redact_url(self.base_url),
                "structured": self.structured, "max_tokens": self.max_tokens,
                "cache_prefix": self.cache_prefix, "concurrency": self.engine_cfg.concurrency,
                "max_reasks": self.engine_cfg.max_reasks}
