"""The shared async engine with fake calls (no HTTP): limits, reporting, retries, labels."""

from __future__ import annotations

import asyncio
import time

import pytest

pytest.importorskip("tenacity")
pytest.importorskip("aiolimiter")

from textgauge.errors import BackendError  # noqa: E402
from textgauge.inference.backends.asyncengine import (  # noqa: E402
    Answer,
    AsyncEngine,
    EngineConfig,
    Redactor,
    is_retryable,
    parse_label,
    retry_after_seconds,
    run_sync,
)
from textgauge.inference.backends.base import PromptRequest  # noqa: E402

LABELS = ["a", "b"]


def reqs(n: int) -> list[PromptRequest]:
    return [PromptRequest(str(i), [{"role": "user", "content": f"text {i}"}], LABELS)
            for i in range(n)]


class FakeResponse:
    def __init__(self, status: int, headers: dict):
        self.status_code = status
        self.headers = headers


class HTTPError(Exception):
    def __init__(self, status: int, headers: dict | None = None):
        super().__init__(f"status {status}")
        self.status_code = status
        self.response = FakeResponse(status, headers or {})


def test_parse_label():
    labels = ["immigration", "not_immigration"]
    assert parse_label('{"label": "immigration"}', labels) == "immigration"
    assert parse_label(" Not_Immigration.\n", labels) == "not_immigration"
    assert parse_label('"immigration"', labels) == "immigration"
    assert parse_label('```json\n{"label":"not_immigration"}\n```', labels) == "not_immigration"
    assert parse_label("It is immigration", labels) is None  # no substring guessing
    assert parse_label('{"label": 3}', labels) is None
    assert parse_label("", labels) is None


def test_retry_after_and_retryable():
    assert retry_after_seconds(HTTPError(429, {"retry-after": "2"})) == 2.0
    assert retry_after_seconds(HTTPError(429, {"retry-after-ms": "150"})) == 0.15
    assert retry_after_seconds(HTTPError(429, {})) is None
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < retry_after_seconds(HTTPError(503, {"retry-after": date})) <= 31
    assert is_retryable(HTTPError(429)) and is_retryable(HTTPError(503))
    assert is_retryable(HTTPError(529))
    assert not is_retryable(HTTPError(400)) and not is_retryable(HTTPError(401))
    assert is_retryable(asyncio.TimeoutError()) and not is_retryable(ValueError("x"))


def test_redactor():
    r = Redactor(["my-very-secret", None, ""])
    assert r("key my-very-secret here") == "key [REDACTED] here"
    assert "sk-abc123456789" not in r("Bearer sk-abc123456789")
    assert r(None) is None


def test_config_validation():
    assert EngineConfig.from_cfg({"concurrency": 3, "max_reasks": None}).max_reasks == 2
    with pytest.raises(BackendError):
        EngineConfig.from_cfg({"concurrency": 0})


def run(engine, requests):
    batches = []
    run_sync(lambda: engine.run(requests, lambda preds: batches.append(list(preds))))
    return batches


def test_every_request_reported_once_with_timeout_retries():
    attempts: dict[str, int] = {}

    async def call(req, messages):
        attempts[req.id] = attempts.get(req.id, 0) + 1
        if int(req.id) % 5 == 0 and attempts[req.id] == 1:
            raise asyncio.TimeoutError()
        await asyncio.sleep(0.001)
        return Answer(text="a", label="a", usage={"prompt_tokens": 3})

    eng = AsyncEngine(call, EngineConfig(concurrency=8, report_every=16, backoff_initial=0.001))
    batches = run(eng, reqs(100))
    ids = [p.id for b in batches for p in b]
    assert sorted(ids, key=int) == [str(i) for i in range(100)]
    assert all(len(b) <= 16 for b in batches)
    assert eng.n_http_calls == 120


def test_report_interval_flushes_slow_runs():
    async def call(req, messages):
        await asyncio.sleep(0.15)
        return Answer(text="b", label="b")

    eng = AsyncEngine(call, EngineConfig(concurrency=1, report_every=1000, report_interval=0.2))
    batches = run(eng, reqs(6))
    assert sum(len(b) for b in batches) == 6 and len(batches) >= 3


def test_request_rate_limit():
    async def call(req, messages):
        return Answer(text="a", label="a")

    eng = AsyncEngine(call, EngineConfig(concurrency=8, requests_per_minute=60))
    t0 = time.monotonic()
    # aiolimiter allows a burst of max_rate, then drips 1 per second
    run(eng, reqs(62))
    assert time.monotonic() - t0 >= 1.5


def test_token_rate_limit_caps_large_requests():
    async def call(req, messages):
        return Answer(text="a", label="a")

    eng = AsyncEngine(call, EngineConfig(tokens_per_minute=100),
                      estimate_tokens=lambda r: 10_000)  # larger than the bucket: capped
    assert sum(len(b) for b in run(eng, reqs(1))) == 1


def test_unexpected_exception_recorded_as_failed():
    async def call(req, messages):
        raise ValueError("cannot parse sk-leakyleaky123456")

    batches = run(AsyncEngine(call, EngineConfig(max_retries=3)), reqs(2))
    preds = [p for b in batches for p in b]
    assert [p.status for p in preds] == ["failed", "failed"]
    assert "ValueError" in preds[0].error and "sk-leaky" not in preds[0].error


def test_callback_error_stops_run_and_propagates():
    async def call(req, messages):
        await asyncio.sleep(0.001)
        return Answer(text="a", label="a")

    n = [0]

    def cb(preds):
        n[0] += 1
        if n[0] == 2:
            raise OSError("disk full")

    eng = AsyncEngine(call, EngineConfig(concurrency=4, report_every=5))
    with pytest.raises(OSError, match="disk full"):
        run_sync(lambda: eng.run(reqs(100), cb))
    assert eng.n_http_calls < 100


def test_run_sync_inside_running_loop():
    async def inner():
        return run_sync(lambda: asyncio.sleep(0, result=42))

    assert asyncio.run(inner()) == 42
