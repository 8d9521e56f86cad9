"""Anthropic backend against a real local HTTP server speaking the Messages API."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("anthropic")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response  # noqa: E402

from textgauge.errors import BackendError  # noqa: E402
from textgauge.inference.backends.base import PromptRequest  # noqa: E402
from textgauge.inference.backends.registry import make_backend  # noqa: E402
from textgauge.inference.backends.runner import run_with_checkpoint  # noqa: E402

LABELS = ["pro", "anti", "neutral"]
SECRET = "sk-ant-api03-SECRETSECRET0123456789"
SYSTEM = "You code statements about immigration. Labels: pro, anti, neutral."


def make_requests(n: int) -> list[PromptRequest]:
    return [PromptRequest(f"s{i}", [{"role": "system", "content": SYSTEM},
                                    {"role": "user", "content": f"Statement {i}."}], LABELS)
            for i in range(n)]


def message(text: str, read: int = 0, write: int = 0) -> dict:
    """A Messages API response body as the API returns it."""
    return {"id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant",
            "model": "claude-haiku-4-5-20251001",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": 12, "cache_creation_input_tokens": write,
                      "cache_read_input_tokens": read, "output_tokens": 7,
                      "service_tier": "standard"}}


def backend_for(server, **cfg):
    base = {"backend": "anthropic", "model": "claude-haiku-4-5", "base_url": server.url_for(""),
            "backoff_initial": 0.01, "backoff_max": 0.1, "report_interval": 0.2}
    base.update(cfg)
    return make_backend(base)


def test_request_shape_and_parse(httpserver, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    seen = []

    def handler(req: Request) -> Response:
        seen.append(({k.lower(): v for k, v in req.headers.items()}, json.loads(req.data)))
        return Response(json.dumps(message('{"label":"anti"}', read=1500)),
                        content_type="application/json")

    httpserver.expect_request("/v1/messages", method="POST").respond_with_handler(handler)
    out = []
    backend_for(httpserver, max_tokens=16).classify(make_requests(1), out.extend)
    headers, body = seen[0]
    assert SECRET in (headers.get("x-api-key", "") + headers.get("authorization", ""))
    assert "anthropic-version" in headers
    assert body["model"] == "claude-haiku-4-5" and body["max_tokens"] == 16
    assert body["system"] == [{"type": "text", "text": SYSTEM,
                               "cache_control": {"type": "ephemeral"}}]
    assert body["messages"] == [{"role": "user", "content": "Statement 0."}]
    fmt = body["output_config"]["format"]
    assert fmt["type"] == "json_schema"
    assert fmt["schema"]["properties"]["label"]["enum"] == LABELS
    assert fmt["schema"]["required"] == ["label"]
    (p,) = out
    assert p.status == "ok" and p.label == "anti" and p.confidence is None and p.probs is None
    assert p.usage == {"prompt_tokens": 1512, "completion_tokens": 7, "cached_tokens": 1500,
                       "cache_creation_tokens": 0}


def test_overloaded_retry_and_reask(httpserver):
    n = [0]

    def handler(req: Request) -> Response:
        n[0] += 1
        if n[0] == 1:
            return Response(json.dumps({"type": "error", "error": {
                "type": "overloaded_error", "message": "Overloaded"}}), status=529,
                headers={"retry-after": "0"}, content_type="application/json")
        body = json.loads(req.data)
        if len(body["messages"]) == 1:
            return Response(json.dumps(message("Positive")), content_type="application/json")
        assert body["messages"][1] == {"role": "assistant", "content": "Positive"}
        return Response(json.dumps(message("neutral")), content_type="application/json")

    httpserver.expect_request("/v1/messages").respond_with_handler(handler)
    out = []
    backend_for(httpserver).classify(make_requests(1), out.extend)
    assert n[0] == 3
    assert out[0].status == "ok" and out[0].label == "neutral"


def test_failures_summarised_without_key(httpserver, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    httpserver.expect_request("/v1/messages").respond_with_json(
        {"type": "error", "error": {"type": "api_error", "message": f"Internal {SECRET}"}},
        status=500)
    with pytest.raises(BackendError) as ei:
        run_with_checkpoint(backend_for(httpserver, max_retries=1), make_requests(3),
                            tmp_path / "ck.jsonl")
    assert "failed=3" in str(ei.value) and "HTTP 500" in str(ei.value)
    assert SECRET not in str(ei.value) and SECRET not in (tmp_path / "ck.jsonl").read_text()


def test_structured_none_has_no_output_config(httpserver):
    bodies = []

    def handler(req: Request) -> Response:
        bodies.append(json.loads(req.data))
        return Response(json.dumps(message("pro")), content_type="application/json")

    httpserver.expect_request("/v1/messages").respond_with_handler(handler)
    out = []
    backend_for(httpserver, structured="none", cache_prefix=False).classify(make_requests(1),
                                                                              out.extend)
    assert "output_config" not in bodies[0]
    assert "cache_control" not in bodies[0]["system"][0]
    assert out[0].label == "pro"
