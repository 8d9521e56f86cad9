"""OpenAI backend against a real local HTTP server speaking the chat completions protocol."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("openai")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response  # noqa: E402

from textgauge.errors import BackendError  # noqa: E402
from textgauge.inference.backends.base import PromptRequest  # noqa: E402
from textgauge.inference.backends.openai import (  # noqa: E402
    OpenAIBackend,
    label_probs_from_tokens,
)
from textgauge.inference.backends.registry import make_backend  # noqa: E402
from textgauge.inference.backends.runner import run_with_checkpoint  # noqa: E402
from textgauge.io import read_checkpoint  # noqa: E402

LABELS = ["immigration", "not_immigration"]
SECRET = "sk-test-SECRET-0123456789abcdef"


def make_requests(n: int, prefix: str = "t") -> list[PromptRequest]:
    return [PromptRequest(f"{prefix}{i}", [
        {"role": "system", "content": "Classify the sentence. Labels: immigration, "
                                      "not_immigration."},
        {"role": "user", "content": f"Sentence number {i} about borders."}], LABELS)
        for i in range(n)]


def completion(content: str, logprobs: list | None = None, prompt_tokens: int = 50,
               cached: int = 0) -> dict:
    """A chat completion body as the OpenAI API returns it."""
    return {
        "id": "chatcmpl-9x", "object": "chat.completion", "created": 1732000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0,
                     "message": {"role": "assistant", "content": content, "refusal": None,
                                 "annotations": []},
                     "logprobs": ({"content": logprobs, "refusal": None}
                                  if logprobs is not None else None),
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 6,
                  "total_tokens": prompt_tokens + 6,
                  "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                "accepted_prediction_tokens": 0,
                                                "rejected_prediction_tokens": 0}},
        "service_tier": "default", "system_fingerprint": "fp_test"}


def tok(token: str, lp: float, alts: list[tuple[str, float]] = ()) -> dict:
    top = [{"token": token, "logprob": lp, "bytes": list(token.encode())}]
    top += [{"token": t, "logprob": a, "bytes": list(t.encode())} for t, a in alts]
    return {"token": token, "logprob": lp, "bytes": list(token.encode()), "top_logprobs": top}


def json_logprobs(p_imm: float) -> list[dict]:
    """Tokens of '{"label":"immigration"}' with 'not' as the alternative at the fork."""
    return [tok('{"', 0.0), tok("label", 0.0), tok('":"', 0.0),
            tok("imm", math.log(p_imm), [("not", math.log(1 - p_imm))]),
            tok("igration", 0.0), tok('"}', 0.0)]


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(body), status=status, headers=headers or {},
                    content_type="application/json")


def error_body(msg: str, typ: str) -> dict:
    return {"error": {"message": msg, "type": typ, "param": None, "code": None}}


def backend_for(server, **cfg) -> OpenAIBackend:
    base = {"backend": "openai", "model": "gpt-4o-mini", "base_url": server.url_for("/v1"),
            "backoff_initial": 0.01, "backoff_max": 0.2, "report_interval": 0.2}
    base.update(cfg)
    return make_backend(base)


def test_json_schema_body_and_logprobs(httpserver, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    bodies = []

    def handler(req: Request) -> Response:
        bodies.append(json.loads(req.data))
        return json_response(completion('{"label":"immigration"}', json_logprobs(0.8),
                                        prompt_tokens=1200, cached=1024))

    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(handler)
    be = backend_for(httpserver, seed=7, temperature=0, max_tokens=20, prompt_cache_key="cb1")
    out = []
    be.classify(make_requests(1), out.extend)
    body = bodies[0]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["properties"]["label"]["enum"] == LABELS
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    assert body["seed"] == 7 and body["temperature"] == 0 and body["max_tokens"] == 20
    assert body["prompt_cache_key"] == "cb1"
    assert body["messages"][0]["role"] == "system"
    (p,) = out
    assert p.status == "ok" and p.label == "immigration"
    assert p.probs == pytest.approx({"immigration": 0.8, "not_immigration": 0.2})
    assert p.confidence == pytest.approx(0.8)
    assert p.usage == {"prompt_tokens": 1200, "completion_tokens": 6, "cached_tokens": 1024}


def test_choice_mode_body_and_logprobs(httpserver):
    bodies = []

    def handler(req: Request) -> Response:
        bodies.append(json.loads(req.data))
        lp = [tok("not", math.log(0.7), [("imm", math.log(0.3))]), tok("_imm", 0.0),
              tok("igration", 0.0)]
        return json_response(completion("not_immigration", lp))

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(handler)
    be = backend_for(httpserver, structured="choice")
    out = []
    be.classify(make_requests(1), out.extend)
    assert bodies[0]["structured_outputs"] == {"choice": LABELS}
    assert "response_format" not in bodies[0]
    (p,) = out
    assert p.label == "not_immigration"
    assert p.probs == pytest.approx({"immigration": 0.3, "not_immigration": 0.7})


def test_no_logprobs_gives_none_confidence(httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        completion('{"label": "not_immigration"}'))
    out = []
    backend_for(httpserver, logprobs=False).classify(make_requests(1), out.extend)
    assert out[0].label == "not_immigration" and out[0].confidence is None


def test_label_probs_three_labels_shared_prefix():
    labels = ["pro", "anti", "neutral"]
    content = "anti"
    toks = [tok("an", math.log(0.5), [("pro", math.log(0.3)), ("neutral", math.log(0.1)),
                                      ("xyz", math.log(0.1))]), tok("ti", 0.0)]
    probs = label_probs_from_tokens(toks, content, 0, labels)
    assert probs == pytest.approx({"pro": 0.3 / 0.9, "anti": 0.5 / 0.9, "neutral": 0.1 / 0.9})
    assert label_probs_from_tokens(toks, "something else", 0, labels) is None


def test_429_with_retry_after_then_ok(httpserver):
    calls = []

    def handler(req: Request) -> Response:
        calls.append(time.monotonic())
        if len(calls) == 1:
            return json_response(error_body("Rate limit reached", "requests"), 429,
                                 {"Retry-After": "0.3"})
        return json_response(completion('{"label":"immigration"}'))

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(handler)
    out = []
    backend_for(httpserver).classify(make_requests(1), out.extend)
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.28  # Retry-After honoured, not the 0.01 s backoff
    assert out[0].status == "ok" and out[0].label == "immigration"


def test_reask_then_valid(httpserver):
    bodies = []
    answers = ['{"label":"migration"}', "Immigration-ish", '{"label":"not_immigration"}']

    def handler(req: Request) -> Response:
        bodies.append(json.loads(req.data))
        return json_response(completion(answers[len(bodies) - 1]))

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(handler)
    out = []
    backend_for(httpserver, max_reasks=2).classify(make_requests(1), out.extend)
    assert len(bodies) == 3
    assert out[0].status == "ok" and out[0].label == "not_immigration"
    assert out[0].usage["prompt_tokens"] == 150 and out[0].usage["reasks"] == 2
    # the re-ask shows the invalid answer and asks again
    assert bodies[1]["messages"][-2] == {"role": "assistant", "content": answers[0]}
    assert "immigration, not_immigration" in bodies[1]["messages"][-1]["content"]


def test_always_invalid(httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        completion("I think it is about the economy."))
    out = []
    be = backend_for(httpserver, max_reasks=2)
    be.classify(make_requests(1), out.extend)
    assert len(httpserver.log) == 3
    (p,) = out
    assert p.status == "invalid" and p.label is None
    assert p.raw == "I think it is about the economy."
    assert "2 re-ask" in p.error


def test_500_forever_failed(httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        error_body("The server had an error", "server_error"), status=500)
    out = []
    backend_for(httpserver, max_retries=3).classify(make_requests(2), out.extend)
    assert len(httpserver.log) == 8  # 2 requests x (1 + 3 retries)
    assert [p.status for p in out] == ["failed", "failed"]
    assert "HTTP 500" in out[0].error and "server had an error" in out[0].error


def test_400_not_retried(httpserver):
    httpserver.expect_request("/v1/chat/completions").respond_with_json(
        error_body("Invalid schema", "invalid_request_error"), status=400)
    out = []
    backend_for(httpserver, max_retries=3).classify(make_requests(1), out.extend)
    assert len(httpserver.log) == 1 and out[0].status == "failed"


def test_fail_bound_raises_with_summary(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)

    def handler(req: Request) -> Response:
        text = json.loads(req.data)["messages"][1]["content"]
        if text.endswith(" 3 about borders.") or text.endswith(" 4 about borders."):
            return json_response(error_body(f"boom for key {SECRET}", "server_error"), 503)
        if text.endswith(" 5 about borders."):
            return json_response(completion("economy"))
        return json_response(completion('{"label":"immigration"}'))

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(handler)
    be = backend_for(httpserver, max_retries=1, max_reasks=1)
    ck = tmp_path / "ck.jsonl"
    with pytest.raises(BackendError) as ei:
        run_with_checkpoint(be, make_requests(10), ck, fail_bound=0.05)
    msg = str(ei.value)
    assert "3 of 10 texts" in msg and "ok=7, invalid=1, failed=2" in msg
    assert "failed id=t3" in msg and "HTTP 503" in msg and "invalid id=t5" in msg
    assert SECRET not in msg
    assert SECRET not in ck.read_text()
    assert "[REDACTED]" in ck.read_text()
    # within a looser bound the same run returns the table (failed rows retried, still failing)
    df = run_with_checkpoint(be, make_requests(10), ck, fail_bound=0.5)
    assert len(df) == 10 and set(df["status"]) == {"ok", "invalid", "failed"}


def test_key_never_leaks(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY_VAR", SECRET)
    seen_auth = []

    def handler(req: Request) -> Response:
        seen_auth.append(req.headers.get("Authorization"))
        # a hostile/buggy server echoing the key back in its answer and errors
        if len(seen_auth) % 2:
            return json_response(error_body(f"bad key {SECRET}", "auth"), 500)
        return json_response(completion(f"key is {SECRET}"))

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(handler)
    be = backend_for(httpserver, api_key_env="MY_KEY_VAR", max_retries=0, max_reasks=0)
    ck = tmp_path / "ck.jsonl"
    with pytest.raises(BackendError) as ei:
        run_with_checkpoint(be, make_requests(4), ck)
    assert seen_auth[0] == f"Bearer {SECRET}"  # the key is used ...
    assert SECRET not in str(ei.value)  # ... and never written anywhere
    text = ck.read_text()
    assert SECRET not in text and text.count("[REDACTED]") >= 4
    assert SECRET not in json.dumps(be.describe())


def test_missing_key_for_external_api(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    be = make_backend({"backend": "openai", "model": "gpt-4o-mini"})
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        be.classify(make_requests(1), lambda preds: None)


@pytest.mark.parametrize("url,ok", [
    (None, False), ("https://api.openai.com/v1", False), ("http://10.0.0.5:8000/v1", False),
    ("http://my-gpu-box:8000/v1", False), ("http://localhost:8000/v1", True),
    ("http://127.0.0.1:8000/v1", True), ("http://[::1]:8000/v1", True)])
def test_local_only(url, ok, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    cfg = {"backend": "openai", "model": "m", "base_url": url}
    if ok:
        assert make_backend(cfg, local_only=True).external is False
    else:
        with pytest.raises(BackendError, match="Local-only mode refuses"):
            make_backend(cfg, local_only=True)
    assert make_backend({**cfg, "base_url": "http://x:1/v1", "unix_socket": "/tmp/s.sock"},
                        local_only=True).external is False
    with pytest.raises(BackendError, match="Local-only"):
        make_backend({"backend": "anthropic", "model": "claude-haiku-4-5"}, local_only=True)


@pytest.fixture
def threaded_server():
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_concurrency_and_batched_reporting(threaded_server):
    httpserver = threaded_server
    active, peak = [0], [0]
    lock = threading.Lock()

    def handler(req: Request) -> Response:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return json_response(completion('{"label":"immigration"}'))

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(handler)
    batches = []
    be = backend_for(httpserver, concurrency=4, report_every=10, report_interval=30)
    be.classify(make_requests(35), lambda preds: batches.append(len(preds)))
    assert sum(batches) == 35 and batches[:3] == [10, 10, 10]
    assert 1 < peak[0] <= 4


class Stop(Exception):
    pass


def test_resume_after_kill_in_callback(httpserver, tmp_path):
    seen: list[str] = []

    def handler(req: Request) -> Response:
        seen.append(json.loads(req.data)["messages"][1]["content"])
        return json_response(completion('{"label":"immigration"}'))

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(handler)
    ck = tmp_path / "ck.jsonl"
    reqs = make_requests(100)
    be = backend_for(httpserver, concurrency=4, report_every=10, report_interval=30)
    from textgauge.inference.backends.runner import checkpoint_record, request_hash
    from textgauge.io import CheckpointWriter

    # first run: the process "dies" after 3 checkpointed batches (records written as the
    # runner writes them: with the hash of their request, so a resume reuses them)
    by_id = {r.id: r for r in reqs}
    n_batches = [0]
    with CheckpointWriter(ck) as w:
        def cb(preds):
            w.write(checkpoint_record(p, by_id[p.id], request_hash(by_id[p.id])) for p in preds)
            n_batches[0] += 1
            if n_batches[0] == 3:
                raise Stop

        with pytest.raises(Stop):
            be.classify(reqs, cb)
    done_first = {r["id"] for r in read_checkpoint(ck)}
    assert len(done_first) == 30
    # requests still in flight when the process "died" may reach the server a moment later:
    # wait until it is quiet, so they are not counted as the resumed run's calls
    first_calls = -1
    while first_calls != len(seen):
        first_calls = len(seen)
        time.sleep(0.5)
    seen.clear()
    df = run_with_checkpoint(be, reqs, ck)
    assert len(seen) == 100 - 30  # only the remaining ids were asked
    assert first_calls >= 30
    assert sorted(df["id"]) == sorted(r.id for r in reqs) and df["id"].is_unique
    assert (df["status"] == "ok").all()


WORKER = r"""
import sys
from textgauge.inference.backends.registry import make_backend
from textgauge.inference.backends.runner import run_with_checkpoint
from textgauge.inference.backends.base import PromptRequest
url, ck = sys.argv[1], sys.argv[2]
reqs = [PromptRequest(f"t{i}", [{"role": "system", "content": "s"},
        {"role": "user", "content": f"text {i}"}], ["immigration", "not_immigration"])
        for i in range(60)]
be = make_backend({"backend": "openai", "model": "m", "base_url": url, "concurrency": 2,
                   "report_every": 5, "report_interval": 0.1})
run_with_checkpoint(be, reqs, ck)
"""


def test_resume_after_sigkill_subprocess(httpserver, tmp_path):
    seen: list[str] = []
    slow = [True]

    def handler(req: Request) -> Response:
        seen.append(json.loads(req.data)["messages"][1]["content"])
        if slow[0]:
            time.sleep(0.05)
        return json_response(completion('{"label":"not_immigration"}'))

    httpserver.expect_request("/v1/chat/completions").respond_with_handler(handler)
    ck = tmp_path / "ck.jsonl"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[3] / "src")}
    proc = subprocess.Popen([sys.executable, str(script), httpserver.url_for("/v1"), str(ck)],
                            env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        if ck.exists() and len(ck.read_text().splitlines()) >= 20:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    done = {r["id"] for r in read_checkpoint(ck)}
    assert 20 <= len(done) < 60
    seen.clear()
    slow[0] = False
    subprocess.run([sys.executable, str(script), httpserver.url_for("/v1"), str(ck)], env=env,
                   check=True, timeout=120)
    asked = {s.split()[-1] for s in seen}
    assert asked == {str(i) for i in range(60)} - {d[1:] for d in done}
    from textgauge.inference.backends.runner import latest_records

    latest = latest_records(ck)
    assert sorted(latest) == sorted(f"t{i}" for i in range(60))
