"""OpenAI-compatible chat backend: OpenAI, vLLM, SGLang, Ollama, any ``base_url``.

Structured output (config ``structured``):

* ``json_schema`` (default): ``response_format`` with a JSON schema whose ``label`` is an
  enum of the labels (OpenAI strict mode, vLLM/SGLang with xgrammar);
* ``choice``: vLLM's ``extra_body={"structured_outputs": {"choice": labels}}``;
* ``none``: free text, mapped onto the labels by :func:`parse_label`.

When the server returns ``logprobs``/``top_logprobs``, per-label probabilities are read off
the tokens of the answer (inside the JSON in ``json_schema`` mode) and renormalised over the
labels; when they cannot be read, confidence is None. The API key comes only from the
environment (``api_key_env``, default ``OPENAI_API_KEY``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

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
from textgauge.secrets import redact_url, split_url

STRUCTURED_MODES = ("json_schema", "choice", "none")
OFFICIAL_OPENAI_HOSTS = {"api.openai.com"}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"}


def label_schema(labels: Sequence[str]) -> dict[str, Any]:
    """The JSON schema of an answer: ``{"label": <one of labels>}``."""
    return {"type": "object",
            "properties": {"label": {"type": "string", "enum": list(labels)}},
            "required": ["label"], "additionalProperties": False}


def is_local_url(url: str | None, unix_socket: str | None = None) -> bool:
    """True for a unix socket or a base_url on this machine (localhost, 127.x, ::1)."""
    if unix_socket:
        return True
    if not url:
        return False
    p = urlparse(url)
    if p.scheme in ("unix", "http+unix"):
        return True
    host = (p.hostname or "").lower()
    return host in LOCAL_HOSTS or host.startswith("127.")


def public_url(url: str | None) -> str | None:
    """The URL as it may be written (manifests, messages): credentials replaced by ``***``
    (:func:`textgauge.secrets.redact_url`)."""
    return redact_url(url) if url else url


def api_key_from_env(env_name: str, required: bool, provider: str) -> str | None:
    key = os.environ.get(env_name)
    if not key and required:
        raise BackendError(f"The {provider} backend needs an API key in the environment "
                           f"variable {env_name}. Set it there (never in the config file), or "
                           f"set `api_key_env` to the name of the variable that holds it.")
    return key or None


# ---------------------------------------------------------------------------- logprobs

def label_probs_from_tokens(tokens: Sequence[dict[str, Any]], content: str, value_start: int,
                            labels: Sequence[str], terminator: str = "") -> dict[str, float] | None:
    """Per-label probabilities from the logprobs of a generated answer.

    ``tokens`` are the logprob items (``token``, ``logprob``, ``top_logprobs``) whose strings
    concatenate to ``content``; the label starts at character ``value_start`` and is followed by
    ``terminator`` (``'"'`` inside JSON). Walking the generated path, at each token the
    alternatives in ``top_logprobs`` that lead to exactly one other label give that label's
    mass (assuming the rest of the label is then forced, as under a constraint); the
    generated label gets the mass of the whole path. Returns probabilities renormalised over
    the labels, or None when the tokens do not spell the content or carry no alternatives.
    """
    tokens = list(tokens or [])
    # vLLM lists the EOS token (e.g. "<|im_end|>") in logprobs.content but not in the content
    while len(tokens) > 1 and "".join(t.get("token", "") for t in tokens) != content and \
            "".join(t.get("token", "") for t in tokens[:-1]).startswith(content):
        tokens.pop()
    if not tokens or "".join(t.get("token", "") for t in tokens) != content:
        return None
    head = content[:value_start]
    targets = {lab: head + lab + terminator for lab in labels}
    mass = dict.fromkeys(labels, 0.0)
    path_lp = 0.0
    pos = 0

    def compatible(s: str, target: str) -> bool:
        return target.startswith(s) or s.startswith(target)

    for tok in tokens:
        chosen = tok.get("token", "")
        prefix = content[:pos]
        live = [lab for lab in labels if compatible(prefix, targets[lab])]
        seen: set[str] = {chosen}
        for alt in tok.get("top_logprobs") or []:
            t = alt.get("token", "")
            if t in seen:
                continue
            seen.add(t)
            # another spelling of the chosen label ("e" vs "economic") is a different token
            # path: its mass belongs to that label too
            match = [lab for lab in live if compatible(prefix + t, targets[lab])]
            if len(match) == 1:
                mass[match[0]] += math.exp(path_lp + float(alt.get("logprob", -math.inf)))
        path_lp += float(tok.get("logprob", 0.0))
        pos += len(chosen)
    generated = [lab for lab in labels if compatible(content, targets[lab])
                 and len(content) >= len(targets[lab])]
    if len(generated) == 1:
        mass[generated[0]] += math.exp(path_lp)
    total = sum(mass.values())
    if total <= 0 or not generated:
        return None
    return {k: v / total for k, v in mass.items()}


def _json_value_start(content: str, label: str) -> int | None:
    """Character offset of the label string value inside a JSON answer."""
    key = content.find('"label"')
    if key < 0:
        return None
    colon = content.find(":", key + 7)
    if colon < 0:
        return None
    q = content.find('"', colon + 1)
    if q < 0 or content[q + 1:q + 1 + len(label)] != label:
        return None
    return q + 1


def parse_chat_completion(body: dict[str, Any], labels: Sequence[str],
                          structured: str) -> Answer:
    """Turn a chat completion JSON body into an :class:`Answer` (label, probs, usage)."""
    choice = (body.get("choices") or [{}])[0]
    msg = choice.get("message") or {}
    text = msg.get("content") or ""
    if not text and msg.get("refusal"):
        text = msg["refusal"]
    label = parse_label(text, labels)
    probs = None
    lp = (choice.get("logprobs") or {}).get("content")
    if label is not None and lp:
        if structured == "json_schema" or text.lstrip().startswith("{"):
            vs = _json_value_start(text, label)
            term = '"'
        else:
            vs = len(text) - len(text.lstrip())
            term = ""
            if text[vs:vs + len(label)] != label:
                vs = None
        if vs is not None:
            probs = label_probs_from_tokens(lp, text, vs, labels, term)
    u = body.get("usage") or {}
    usage = {"prompt_tokens": int(u.get("prompt_tokens") or 0),
             "completion_tokens": int(u.get("completion_tokens") or 0),
             "cached_tokens": int((u.get("prompt_tokens_details") or {}).get("cached_tokens")
                                  or 0)}
    return Answer(text=text, label=label, probs=probs, usage=usage, served=served_by(body))


def served_by(body: dict[str, Any]) -> dict[str, str]:
    """The model snapshot and system_fingerprint a response names (what really answered)."""
    return {k: str(body[k]) for k in ("model", "system_fingerprint") if body.get(k)}


# ---------------------------------------------------------------------------- backend

class OpenAIBackend(PromptBackend):
    """Prompted classification through an OpenAI-compatible chat completions endpoint."""

    name = "openai"

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = dict(cfg)
        self.model = cfg.get("model")
        if not self.model:
            raise ConfigError("The openai backend needs `model` (the served model name).")
        self.base_url = cfg.get("base_url") or os.environ.get("OPENAI_BASE_URL") or \
            "https://api.openai.com/v1"
        self.unix_socket = cfg.get("unix_socket")
        self.external = not is_local_url(self.base_url, self.unix_socket)
        self.structured = cfg.get("structured", "json_schema")
        if self.structured not in STRUCTURED_MODES:
            raise ConfigError(f"structured must be one of {', '.join(STRUCTURED_MODES)}, "
                              f"not {self.structured!r}.")
        self.api_key_env = cfg.get("api_key_env", "OPENAI_API_KEY")
        self.logprobs = bool(cfg.get("logprobs", True))
        self.top_logprobs = int(cfg.get("top_logprobs", 5))
        self.temperature = cfg.get("temperature", 0.0)
        self.max_tokens = cfg.get("max_tokens", 32)
        self.seed = cfg.get("seed")
        self.prompt_cache_key = cfg.get("prompt_cache_key")
        self.timeout = float(cfg.get("timeout", 60.0))
        self.extra_body = dict(cfg.get("extra_body") or {})
        field = cfg.get("max_tokens_field", "auto")
        if field == "auto":
            field = "max_completion_tokens" if self._official() else "max_tokens"
        self.max_tokens_field = field
        self.engine_cfg = EngineConfig.from_cfg(cfg)
        self.last_engine: AsyncEngine | None = None

    def _official(self) -> bool:
        return (urlparse(self.base_url).hostname or "") in OFFICIAL_OPENAI_HOSTS

    def _api_key(self) -> str:
        key = api_key_from_env(self.api_key_env, required=self.external, provider="openai")
        return key or "EMPTY"  # local servers accept any key

    # -- request bodies (shared with batch.py) ------------------------------------------
    def request_body(self, req: PromptRequest,
                     messages: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """The JSON body of ``POST /chat/completions`` for one request."""
        body: dict[str, Any] = {"model": self.model,
                                "messages": list(messages or req.messages)}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.max_tokens is not None:
            body[self.max_tokens_field] = int(self.max_tokens)
        if self.seed is not None:
            body["seed"] = int(self.seed)
        if self.logprobs:
            body["logprobs"] = True
            if self.top_logprobs:
                body["top_logprobs"] = self.top_logprobs
        if self.prompt_cache_key:
            body["prompt_cache_key"] = str(self.prompt_cache_key)
        if self.structured == "json_schema":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "classification", "strict": True, "schema": label_schema(req.labels)}}
        elif self.structured == "choice":
            body["structured_outputs"] = {"choice": list(req.labels)}
        body.update(self.extra_body)
        return body

    def parse(self, body: dict[str, Any], labels: Sequence[str]) -> Answer:
        return parse_chat_completion(body, labels, self.structured)

    # -- clients -----------------------------------------------------------------------
    def _http_client(self, sync: bool = False) -> Any:
        if not self.unix_socket:
            return None
        import httpx2
        import openai

        if sync:
            return openai.DefaultHttpxClient(transport=httpx2.HTTPTransport(uds=self.unix_socket))
        return openai.DefaultAsyncHttpxClient(
            transport=httpx2.AsyncHTTPTransport(uds=self.unix_socket))

    def async_client(self) -> Any:
        try:
            import openai
        except ImportError as exc:
            raise BackendError("The openai backend needs the `openai` package: "
                               "pip install 'textgauge[api]'.") from exc
        # user:password in base_url is sent as Basic auth by the HTTP client; its query
        # (?api_key=...) goes as default_query, since the SDK appends paths to base_url
        base_url, query = split_url(self.base_url)
        return openai.AsyncOpenAI(api_key=self._api_key(), base_url=base_url,
                                  default_query=query or None, max_retries=0,
                                  timeout=self.timeout, http_client=self._http_client())

    def sync_client(self) -> Any:
        import openai

        base_url, query = split_url(self.base_url)
        return openai.OpenAI(api_key=self._api_key(), base_url=base_url,
                             default_query=query or None, max_retries=2,
                             timeout=self.timeout, http_client=self._http_client(sync=True))

    def classify(self, requests: Sequence[PromptRequest], on_results: ResultCallback) -> None:
        if not requests:
            return
        run_sync(lambda: self._classify(requests, on_results))

    async def _classify(self, requests: Sequence[PromptRequest],
                        on_results: ResultCallback) -> None:
        import httpx2

        client = self.async_client()

        async def call(req: PromptRequest, messages: list[dict[str, str]]) -> Answer:
            # The body is already the exact JSON of POST /chat/completions; the SDK's
            # documented raw request path (auth, base_url, timeouts, typed HTTP errors) skips
            # its per-call TypedDict transform and pydantic parse, which cost ~3 ms of CPU
            # per request and capped throughput on small machines.
            resp = await client.post("/chat/completions", cast_to=httpx2.Response,
                                     body=self.request_body(req, messages))
            return self.parse(resp.json(), req.labels)

        engine = AsyncEngine(call, self.engine_cfg, Redactor([os.environ.get(self.api_key_env)],
                                                             urls=[self.base_url]))
        self.last_engine = engine
        try:
            await engine.run(requests, on_results)
        finally:
            await client.close()

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model,
                "base_url": public_url(self.base_url),
                "structured": self.structured, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "seed": self.seed, "logprobs": self.logprobs,
                "top_logprobs": self.top_logprobs, "prompt_cache_key": self.prompt_cache_key,
                "concurrency": self.engine_cfg.concurrency,
                "max_reasks": self.engine_cfg.max_reasks}
