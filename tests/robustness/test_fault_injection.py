"""Fault injection: the OpenAI backend against a flaky local server.

A real local HTTP server (pytest-httpserver, threaded) speaks the chat completions wire
protocol. A seeded draw per (text, attempt) answers about 20% of calls with one of five
faults: 429 with ``Retry-After``, 500, a response slower than the client timeout, a body that
is not JSON, or a truncated answer (``finish_reason: length``, JSON cut mid-label). Whatever
happens, every text must end exactly once, either classified (``ok``, with the label the
server meant) or ``failed``/``invalid`` with a reason.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import Counter, defaultdict

import pytest

pytest.importorskip("openai")
pytest.importorskip("pytest_httpserver")

from pytest_httpserver import HTTPServer  # noqa: E402
from werkzeug import Request, Response  # noqa: E402

from textgauge.inference.backends.base import STATUSES, PromptRequest  # noqa: E402
from textgauge.inference.backends.registry import make_backend  # noqa: E402
from textgauge.inference.backends.runner import run_with_checkpoint  # noqa: E402
from textgauge.io import read_checkpoint  # noqa: E402

LABELS = ["economic", "moral", "security", "rights"]
N_TEXTS = 200
FAULT_RATE = 0.2
FAULTS = ("429", "500", "timeout", "malformed", "truncated")
CLIENT_TIMEOUT = 1.5
SLOW = 2.5  # seconds the "timeout" fault takes to answer: beyond the client timeout
SEED = 20261129


def truth(i: int) -> str:
    return LABELS[(i * 7) % len(LABELS)]


def make_requests() -> list[PromptRequest]:
    return [PromptRequest(f"t{i:03d}", [
        {"role": "system", "content": "Code the frame. Labels: " + ", ".join(LABELS) + "."},
        {"role": "user", "content": f"Text number {i}."}], LABELS) for i in range(N_TEXTS)]


def completion(content: str, finish: str = "stop") -> dict:
    return {"id": "chatcmpl-fault", "object": "chat.completion", "created": 1732000000,
            "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content,
                                                 "refusal": None},
                         "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 6, "total_tokens": 36}}


class FlakyServer:
    """Decides, per (text, attempt number), whether and how to fail; records every call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.attempts: Counter[int] = Counter()
        self.log: list[tuple[int, int, str, float]] = []  # (text, attempt, fault, time)

    def fault(self, i: int, attempt: int) -> str | None:
        rng = random.Random(f"{SEED}:{i}:{attempt}")
        return rng.choice(FAULTS) if rng.random() < FAULT_RATE else None

    def __call__(self, req: Request) -> Response:
        body = json.loads(req.data)
        text = body["messages"][1]["content"]
        i = int(re.search(r"Text number (\d+)", text).group(1))
        with self.lock:
            attempt = self.attempts[i]
            self.attempts[i] += 1
        f = self.fault(i, attempt)
        with self.lock:
            self.log.append((i, attempt, f or "ok", time.monotonic()))
        if f == "429":
            return Response(json.dumps({"error": {"message": "Rate limit reached",
                                                  "type": "requests", "code": "rate_limit"}}),
                            status=429, headers={"Retry-After": "1"},
                            content_type="application/json")
        if f == "500":
            return Response(json.dumps({"error": {"message": "The server had an error",
                                                  "type": "server_error"}}),
                            status=500, content_type="application/json")
        if f == "timeout":
            time.sleep(SLOW)
        if f == "malformed":
            return Response('{"id": "chatcmpl-fault", "choices": [{"message": {"con',
                            status=200, content_type="application/json")
        if f == "truncated":
            cut = json.dumps({"label": truth(i)})[:10]  # '{"label": '
            return Response(json.dumps(completion(cut, finish="length")),
                            content_type="application/json")
        return Response(json.dumps(completion(json.dumps({"label": truth(i)}))),
                        content_type="application/json")


@pytest.fixture
def flaky():
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    handler = FlakyServer()
    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
    server.start()
    try:
        yield server, handler
    finally:
        server.clear()
        server.stop()


def test_faults_end_in_ok_failed_or_invalid_once(flaky, tmp_path):
    server, handler = flaky
    be = make_backend({"backend": "openai", "model": "gpt-4o-mini",
                       "base_url": server.url_for("/v1"), "timeout": CLIENT_TIMEOUT,
                       "concurrency": 16, "max_retries": 3, "max_reasks": 1,
                       "backoff_initial": 0.02, "backoff_max": 0.1, "report_every": 16,
                       "report_interval": 0.2, "logprobs": False}, local_only=True)
    reqs = make_requests()
    ckpt = tmp_path / "ckpt.jsonl"
    t0 = time.perf_counter()
    df = run_with_checkpoint(be, reqs, ckpt, fail_bound=1.0)
    took = time.perf_counter() - t0

    # every id exactly once, in the frame and in the checkpoint (one record per text)
    records = list(read_checkpoint(ckpt))
    assert sorted(r["id"] for r in records) == sorted(r.id for r in reqs)
    assert list(df["id"]) == [r.id for r in reqs]
    assert set(df["status"]) <= set(STATUSES)

    # the faults really happened, every kind of them, at about the configured rate
    first = Counter(f for i, a, f, _ in handler.log if a == 0)
    assert set(FAULTS) <= set(f for *_, f, _ in handler.log)
    assert 0.12 < 1 - first["ok"] / N_TEXTS < 0.28, first

    ok = df[df["status"] == "ok"]
    bad = df[df["status"] != "ok"]
    # a classified text carries the label the server meant, never another text's answer
    assert all(lab == truth(int(i[1:])) for i, lab in zip(ok["id"], ok["label"], strict=True))
    # a text that did not end ok says why
    assert bad["error"].map(lambda e: isinstance(e, str) and len(e) > 5).all(), bad
    assert len(ok) >= 0.9 * N_TEXTS, df["status"].value_counts()

    # what each text's fault history must lead to
    history: dict[int, list[str]] = defaultdict(list)
    for i, _a, f, _ in sorted(handler.log, key=lambda x: (x[0], x[1])):
        history[i].append(f)
    by_id = df.set_index("id")
    for i, faults in history.items():
        row = by_id.loc[f"t{i:03d}"]
        if faults[-1] == "ok":
            assert row["status"] == "ok", (i, faults, row["error"])
        elif faults[-1] == "malformed":  # not retried: failed, with the parse error
            assert row["status"] == "failed" and "JSONDecodeError" in row["error"], (i, faults)
        elif faults[-1] == "truncated":  # re-asks used up: invalid, with the cut answer
            assert row["status"] == "invalid" and row["raw"].startswith('{"label"'), (i, faults)
            assert "outside the label set" in row["error"]
        else:  # 429 / 500 / timeout on the last allowed attempt: failed with the HTTP reason
            assert row["status"] == "failed", (i, faults)
            assert re.search(r"HTTP 429|HTTP 500|Timeout", row["error"]), row["error"]
    # retryable faults were retried: 429, 500 and timeouts were followed by another attempt
    for i, faults in history.items():
        for k, f in enumerate(faults[:-1]):  # only a retryable fault has a successor
            assert f in ("429", "500", "timeout", "truncated"), (i, k, faults)
    # Retry-After: 1 was honoured (the next attempt of that text came >= 1 s later)
    times = {(i, a): t for i, a, _, t in handler.log}
    gaps = [times[(i, a + 1)] - t for i, a, f, t in handler.log
            if f == "429" and (i, a + 1) in times]
    assert gaps and min(gaps) >= 0.95, gaps
    assert took < 30, f"took {took:.1f} s"

    # a rerun retries the failed texts only and still ends with one row per id
    n_failed = int((df["status"] == "failed").sum())
    calls_before = len(handler.log)
    again = run_with_checkpoint(be, reqs, ckpt, fail_bound=1.0)
    assert list(again["id"]) == [r.id for r in reqs]
    assert len(handler.log) - calls_before >= n_failed
    assert (again["status"] == "ok").sum() >= len(ok)
    ok_before = set(ok["id"])
    assert again.set_index("id").loc[sorted(ok_before), "label"].tolist() == \
        ok.set_index("id").loc[sorted(ok_before), "label"].tolist()
    print(f"fault injection: {N_TEXTS} texts, {len(handler.log)} HTTP calls, first-attempt "
          f"faults {dict(first)}, final {df['status'].value_counts().to_dict()}, "
          f"{took:.1f} s")
