"""Shared async machinery for API backends (OpenAI-compatible servers, Anthropic).

One request per text, run by a pool of ``concurrency`` workers:

* request and token rate limits (``aiolimiter``), acquired before every HTTP attempt;
* retries with exponential backoff and jitter for 429, 5xx, timeouts and connection errors,
  honouring ``Retry-After`` / ``retry-after-ms`` (``tenacity``);
* an answer outside the label set is re-asked (the invalid answer and a correction are
  appended to the conversation) up to ``max_reasks`` times, then recorded as ``invalid``
  with the raw text; a request that keeps failing is recorded as ``failed`` with the reason;
* finished predictions are reported through ``on_results`` every ``report_every`` items or
  every ``report_interval`` seconds, so the caller can checkpoint them.

Nothing is dropped: every request yields exactly one :class:`Prediction`. Secrets (API keys)
are scrubbed from every recorded text before it leaves the engine.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any

from textgauge.errors import BackendError
from textgauge.inference.backends.base import (
    STATUS_FAILED,
    STATUS_INVALID,
    STATUS_OK,
    Prediction,
    PromptRequest,
    ResultCallback,
)
from textgauge.secrets import Redactor  # re-exported: the backends' redactor of server texts

RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 520, 522, 524, 529}


@dataclass
class EngineConfig:
    """Concurrency, rate-limit, retry and reporting settings (config keys of the same name)."""

    concurrency: int = 8
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_retries: int = 6
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    max_reasks: int = 2
    report_every: int = 32
    report_interval: float = 1.0

    @classmethod
    def from_cfg(cls, cfg: dict[str, Any]) -> EngineConfig:
        kw = {k: cfg[k] for k in cls.__dataclass_fields__ if cfg.get(k) is not None}
        out = cls(**kw)
        if out.concurrency < 1:
            raise BackendError(f"concurrency must be at least 1, not {out.concurrency}.")
        if out.max_reasks < 0 or out.max_retries < 0:
            raise BackendError("max_reasks and max_retries must be zero or more.")
        return out


@dataclass
class Answer:
    """What one successful HTTP call returned, already parsed by the backend."""

    text: str
    label: str | None  # the answer mapped onto the label set, None if outside it
    probs: dict[str, float] | None = None
    usage: dict[str, int] = field(default_factory=dict)
    #: what the server says answered: the model snapshot and (OpenAI) system_fingerprint
    served: dict[str, str] = field(default_factory=dict)


#: backend call: (request, messages to send) -> Answer; raises on HTTP/network errors
CallFn = Callable[[PromptRequest, list[dict[str, str]]], Awaitable[Answer]]


# ---------------------------------------------------------------------------- labels

_STRIP = " \t\r\n\"'`.,;:!*"


def parse_label(text: str, labels: Sequence[str]) -> str | None:
    """Map a model answer onto the label set: JSON ``{"label": ...}``, the bare label, or the
    label up to case, quotes and trailing punctuation. No substring guessing."""
    if text is None:
        return None
    s = text.strip()
    if s.startswith("```"):
        s = s.strip("`").strip()
        if s.lower().startswith("json"):
            s = s[4:].strip()
    if s.startswith("{"):
        try:
            obj = json.loads(s)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict):
            val = obj.get("label")
            if isinstance(val, str):
                s = val
            else:
                return None
    if s in labels:
        return s
    t = s.strip(_STRIP)
    if t in labels:
        return t
    low = {lab.lower(): lab for lab in labels}
    return low.get(t.lower())


def reask_messages(messages: list[dict[str, str]], raw: str,
                   labels: Sequence[str]) -> list[dict[str, str]]:
    """The conversation for a re-ask: the invalid answer and a correction appended."""
    listed = ", ".join(labels)
    return [*messages, {"role": "assistant", "content": raw or "(empty answer)"},
            {"role": "user", "content": f"That answer is not one of the allowed labels. Answer "
                                        f"with exactly one of: {listed}."}]


# ---------------------------------------------------------------------------- retries

def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds asked for by a ``retry-after-ms`` / ``Retry-After`` header of an SDK error."""
    resp = getattr(exc, "response", None)
    headers = getattr(resp, "headers", None)
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(ra).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "status_code", None)
    if isinstance(code, int):
        return code
    resp = getattr(exc, "response", None)
    code = getattr(resp, "status_code", None)
    return code if isinstance(code, int) else None


def is_retryable(exc: BaseException) -> bool:
    """429, 5xx, timeouts and connection errors are retried; 4xx (bad request, auth) not."""
    code = status_code(exc)
    if code is not None:
        return code in RETRYABLE_STATUS or code >= 500
    name = type(exc).__name__
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
        return True
    return any(k in name for k in ("Timeout", "Connection", "RemoteProtocol", "ReadError"))


def describe_error(exc: BaseException) -> str:
    """A one-line reason: class, HTTP status and the server's message (shortened)."""
    code = status_code(exc)
    msg = str(exc).replace("\n", " ")
    if len(msg) > 300:
        msg = msg[:300] + "..."
    return f"{type(exc).__name__}" + (f" (HTTP {code})" if code else "") + f": {msg}"


class _Wait:
    """tenacity wait: Retry-After when the server gives one, else exponential + full jitter."""

    def __init__(self, initial: float, maximum: float):
        self.initial, self.maximum = initial, maximum

    def __call__(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        ra = retry_after_seconds(exc) if exc is not None else None
        if ra is not None:
            # the server's wish wins over backoff_max (capped only at 10 minutes)
            return min(ra, max(self.maximum, 600.0)) + random.uniform(0, 0.1 * self.initial)
        exp = self.initial * (2 ** (retry_state.attempt_number - 1))
        return random.uniform(0.5, 1.0) * min(exp, self.maximum)


# ---------------------------------------------------------------------------- engine

class AsyncEngine:
    """Runs ``call`` over requests with bounded concurrency, limits, retries and re-asks."""

    def __init__(self, call: CallFn, config: EngineConfig, redact: Redactor | None = None,
                 estimate_tokens: Callable[[PromptRequest], int] | None = None):
        self.call = call
        self.cfg = config
        self.redact = redact or Redactor()
        self.estimate_tokens = estimate_tokens or _estimate_tokens
        self.n_http_calls = 0

    def _limiters(self) -> tuple[Any, Any]:
        from aiolimiter import AsyncLimiter

        rl = (AsyncLimiter(self.cfg.requests_per_minute, 60)
              if self.cfg.requests_per_minute else None)
        tl = (AsyncLimiter(self.cfg.tokens_per_minute, 60)
              if self.cfg.tokens_per_minute else None)
        return rl, tl

    async def _attempts(self, req: PromptRequest, messages: list[dict[str, str]],
                        limiters: tuple[Any, Any]) -> Answer:
        from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

        rl, tl = limiters
        tokens = self.estimate_tokens(req)
        async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.cfg.max_retries + 1),
                wait=_Wait(self.cfg.backoff_initial, self.cfg.backoff_max),
                retry=retry_if_exception(is_retryable), reraise=True):
            with attempt:
                if rl is not None:
                    await rl.acquire()
                if tl is not None:
                    await tl.acquire(min(tokens, tl.max_rate))
                self.n_http_calls += 1
                return await self.call(req, messages)
        raise AssertionError("unreachable")  # pragma: no cover

    async def one(self, req: PromptRequest, limiters: tuple[Any, Any]) -> Prediction:
        usage: dict[str, int] = {}
        messages = list(req.messages)
        ans: Answer | None = None
        for ask in range(self.cfg.max_reasks + 1):
            try:
                ans = await self._attempts(req, messages, limiters)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is recorded, never raised
                return Prediction(id=req.id, label=None, status=STATUS_FAILED,
                                  raw=self.redact(ans.text if ans else "") or "",
                                  usage=usage, error=self.redact(describe_error(exc)))
            for k, v in ans.usage.items():
                usage[k] = usage.get(k, 0) + int(v or 0)
            if ans.label is not None and ans.label in req.labels:
                probs = ans.probs
                conf = probs.get(ans.label) if probs else None
                if ask:
                    usage["reasks"] = ask
                return Prediction(id=req.id, label=ans.label, confidence=conf, probs=probs,
                                  status=STATUS_OK, raw=self.redact(ans.text) or "",
                                  usage=usage, served=ans.served)
            messages = reask_messages(list(req.messages), ans.text, req.labels)
        usage["reasks"] = self.cfg.max_reasks
        return Prediction(id=req.id, label=None, status=STATUS_INVALID,
                          raw=self.redact(ans.text if ans else "") or "", usage=usage,
                          served=ans.served if ans else {},
                          error=f"answer outside the label set after {self.cfg.max_reasks} "
                                "re-ask(s)")

    async def run(self, requests: Sequence[PromptRequest], on_results: ResultCallback) -> None:
        """Classify ``requests``; report predictions in batches; raise if the callback raises."""
        limiters = self._limiters()
        queue: asyncio.Queue[PromptRequest | None] = asyncio.Queue()
        for r in requests:
            queue.put_nowait(r)
        buffer: list[Prediction] = []
        last_flush = time.monotonic()

        def flush() -> None:
            nonlocal last_flush
            if buffer:
                batch = buffer[:]
                buffer.clear()
                on_results(batch)
            last_flush = time.monotonic()

        async def worker() -> None:
            while True:
                try:
                    req = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                pred = await self.one(req, limiters)
                buffer.append(pred)
                if len(buffer) >= self.cfg.report_every:
                    flush()

        async def ticker() -> None:
            while True:
                await asyncio.sleep(self.cfg.report_interval / 4)
                if time.monotonic() - last_flush >= self.cfg.report_interval:
                    flush()

        workers = [asyncio.create_task(worker())
                   for _ in range(min(self.cfg.concurrency, max(1, len(requests))))]
        tick = asyncio.create_task(ticker())
        waiter = asyncio.ensure_future(asyncio.gather(*workers))
        try:
            finished, _ = await asyncio.wait({waiter, tick}, return_when=asyncio.FIRST_COMPLETED)
            if tick in finished:  # the ticker only ends when the callback raised
                raise tick.exception() or RuntimeError("result reporting stopped")
            waiter.result()  # a callback error raised in a worker surfaces here
            flush()
        finally:
            for t in [*workers, tick, waiter]:
                t.cancel()
            await asyncio.gather(*workers, tick, waiter, return_exceptions=True)


def _estimate_tokens(req: PromptRequest) -> int:
    return sum(len(m.get("content") or "") for m in req.messages) // 4 + 16


def run_sync(coro_factory: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine from synchronous code, also when an event loop already runs (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro_factory())
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["v"] = asyncio.run(coro_factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["e"] = exc

    th = threading.Thread(target=target, name="textgauge-async")
    th.start()
    th.join()
    if "e" in box:
        raise box["e"]
    return box.get("v")
