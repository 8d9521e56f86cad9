"""Spend after the run, through snakemake: a prompted coder with few-shot examples against a
local fake OpenAI-compatible server that reports usage like the real API (prompt tokens of
the messages as sent), its gold sample and a label-order re-run; rule ``spend`` sums the
recorded usage beside the cost plan (planned input tokens within 2% of what was sent),
counts answers reused from a checkpoint apart, and reads the jobs' benchmark files."""

from __future__ import annotations

import json
import math
import threading

import pytest
import yaml

pytest.importorskip("pytest_httpserver")

from pytest_httpserver import HTTPServer  # noqa: E402
from werkzeug import Response  # noqa: E402

from tests.conftest import REPO, copy_workflow, snakemake  # noqa: E402

pytestmark = pytest.mark.slow
N_GOLD = 10


def _tokens(text: str) -> int:
    """The fake's tokenizer: 4 characters a token, as the coder's `plan.tokenizer: approx:4`."""
    return math.ceil(len(text) / 4) if text else 0


class FakeChat:
    """/v1/chat/completions: answers the first label of the request's schema and reports
    usage as OpenAI does (3 tokens per message + role + content, 3 to prime the reply)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.prompt_tokens = 0
        self.requests = 0

    def handler(self, req):
        body = json.loads(req.data)
        msgs = body["messages"]
        n = sum(3 + _tokens(m["role"]) + _tokens(m.get("content") or "") for m in msgs) + 3
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema")
        label = schema["properties"]["label"]["enum"][0] if schema else "economic"
        content = json.dumps({"label": label}) if schema else label
        with self.lock:
            self.prompt_tokens += n
            self.requests += 1
        return Response(json.dumps({
            "id": "c", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": n, "completion_tokens": 6, "total_tokens": n + 6}}),
            content_type="application/json")


@pytest.fixture
def fake():
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    chat = FakeChat()
    srv.expect_request("/v1/chat/completions", method="POST").respond_with_handler(chat.handler)
    srv.start()
    chat.url = srv.url_for("/v1")
    yield chat
    srv.clear()
    srv.stop()


def test_spend_beside_the_plan_on_a_fake_server(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-spend-key-0123456789")
    wd = copy_workflow(tmp_path / "wf")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["gold"]["size"] = N_GOLD
    cfg["validation"] = {**cfg.get("validation", {}), "bootstrap": 100}
    cfg["audits"] = {"positional_orders": ["reversed"], "revalidation_size": 0,
                     "ensemble": False}
    cfg["models"] = {"gpt": {"kind": "prompt", "backend": "openai", "model": "gpt-4o-mini",
                             "base_url": fake.url, "prompt": "prompts/zeroshot.jinja",
                             "scope": "gold", "few_shot": 1,
                             "plan": {"tokenizer": "approx:4"},
                             "limits": {"concurrency": 2}}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(wd, "results/plan/spend.json")
    s = json.loads((wd / "results/plan/spend.json").read_text())
    e = s["models"]["gpt"]
    assert e["parts"] == {"predict_gold": 1, "predict_gold_order": 1}
    assert e["actual"]["answers"] == 2 * N_GOLD == fake.requests
    assert e["actual"]["input_tokens"] == fake.prompt_tokens  # every answer's usage summed
    # planned (rendered prompts with the few-shot examples, both label orders) vs sent
    assert abs(e["input_tokens_vs_plan"]) < 0.02, e
    assert e["planned"]["input_tokens"] > 0 and e["reused"]["answers"] == 0
    # a self-hosted server: no token price, as in the plan
    assert e["actual"]["cost_usd"] is None
    # benchmark files of the predict jobs, summed per rule (no GPU requested)
    rules = s["benchmarks"]["rules"]
    assert rules["predict_gold"]["jobs"] == 1 and rules["predict_gold_order"]["jobs"] == 1
    assert s["benchmarks"]["total"]["gpu_hours"] == 0 and not s["benchmarks"]["missing"]

    # the gold job is run again with its checkpoint kept: it asks nothing again, and spend
    # counts its answers as reused, not as spend
    (wd / "results/benchmarks/predict/gpt/gold-order-reversed.tsv").unlink()
    asked = fake.requests
    snakemake(wd, "results/plan/spend.json", "--forcerun", "predict_gold")
    assert fake.requests == asked
    s2 = json.loads((wd / "results/plan/spend.json").read_text())
    e2 = s2["models"]["gpt"]
    assert e2["reused"]["answers"] == N_GOLD and e2["actual"]["answers"] == N_GOLD
    assert e2["reused"]["input_tokens"] + e2["actual"]["input_tokens"] == fake.prompt_tokens
    # a missing benchmark file is said, not filled in
    assert s2["benchmarks"]["missing"] and "no benchmark file" in s2["benchmarks"]["notes"][0]
