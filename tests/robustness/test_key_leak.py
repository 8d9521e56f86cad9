"""Key-leak scan: run the workflow with an API-key-bearing model, then search every output.

The workflow (tiny test settings) runs one prompted coder, ``kind: prompt, backend: openai``,
against a fake OpenAI server on localhost (pytest-httpserver). The API key lives only in the
environment (``TEXTGAUGE_TEST_KEY``); the server checks that it arrives as the bearer token,
and for one text it answers with an error that echoes the key back (as real providers do for
a wrong key), so the key reaches the engine. Afterwards no file under results/ or .snakemake/
may contain it: not the predictions, checkpoints, logs, manifests, report or Snakemake's
metadata.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
import yaml

pytest.importorskip("openai")
pytest.importorskip("pytest_httpserver")

from pytest_httpserver import HTTPServer  # noqa: E402
from werkzeug import Request, Response  # noqa: E402

from tests.conftest import REPO, copy_workflow, snakemake  # noqa: E402

SECRET = "tgk-LEAKCHECK-7f3a9c2e1b4d8e6f0a5c"
ENV = "TEXTGAUGE_TEST_KEY"


def merged(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else v
    return out


class FakeOpenAI:
    def __init__(self, labels: list[str]):
        self.labels = labels
        self.lock = threading.Lock()
        self.auth: list[str] = []
        self.failing_text: str | None = None

    def __call__(self, req: Request) -> Response:
        body = json.loads(req.data)
        text = body["messages"][-1]["content"]
        with self.lock:
            self.auth.append(req.headers.get("Authorization", ""))
            if self.failing_text is None:
                self.failing_text = text
        if text == self.failing_text:  # echo the key, as a provider does for a wrong key
            return Response(json.dumps({"error": {
                "message": f"Incorrect API key provided: {SECRET}. You can find your API key "
                           "at https://platform.example/account/api-keys.",
                "type": "server_error", "code": "invalid_api_key"}}),
                status=500, content_type="application/json")
        k = int(hashlib.sha256(text.encode()).hexdigest(), 16) % len(self.labels)
        content = json.dumps({"label": self.labels[k]})
        return Response(json.dumps({
            "id": "chatcmpl-leak", "object": "chat.completion", "created": 1732000000,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 200, "completion_tokens": 6, "total_tokens": 206}}),
            content_type="application/json")


def scan(root: Path) -> list[str]:
    """Files under ``root`` whose bytes, or whose parquet cells, contain the secret."""
    import pandas as pd

    hits = []
    needle = SECRET.encode()
    for p in root.rglob("*"):
        if not p.is_file():
            continue
        if needle in p.read_bytes():
            hits.append(str(p))
        elif p.suffix == ".parquet":  # compressed pages: look at the values too
            df = pd.read_parquet(p)
            if df.astype(str).apply(lambda c: c.str.contains(SECRET, regex=False)).any().any():
                hits.append(str(p))
    return hits


@pytest.mark.slow
def test_api_key_never_written(tmp_path, monkeypatch):
    wd = copy_workflow(tmp_path / "wf")
    base = merged(yaml.safe_load((REPO / "config.yaml").read_text()),
                  yaml.safe_load((REPO / "config" / "test.yaml").read_text()))
    labels = list(base["labels"])
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    fake = FakeOpenAI(labels)
    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(fake)
    server.start()
    try:
        # a full config file (Snakemake merges --configfile into config.yaml, so the bundled
        # models could not be dropped by a variant): one API model, the gold sample only
        cfg = dict(base)
        cfg["models"] = {"apicoder": {
            "kind": "prompt", "backend": "openai", "model": "gpt-4o-mini",
            "base_url": server.url_for("/v1"), "prompt": "prompts/zeroshot.jinja",
            "scope": "gold", "logprobs": False,
            "limits": {"api_key_env": ENV, "concurrency": 4, "max_retries": 1,
                       "backoff_initial": 0.05, "backoff_max": 0.1}}}
        cfg["privacy"] = {"local_only": True}
        (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        monkeypatch.setenv(ENV, SECRET)
        snakemake(wd)
    finally:
        server.clear()
        server.stop()

    # the run completed, and the key really was used and echoed
    assert (wd / "results/report/index.html").exists()
    preds = __import__("pandas").read_parquet(wd / "results/predictions/apicoder.parquet")
    n_gold = base["gold"]["size"]
    assert len(preds) == n_gold and preds["id"].is_unique
    assert fake.auth and set(fake.auth) == {f"Bearer {SECRET}"}
    failed = preds[preds["status"] == "failed"]
    assert len(failed) == 1 and "[REDACTED]" in failed["error"].iloc[0]
    assert (preds["status"] == "ok").sum() == n_gold - 1

    # nothing anywhere holds the key
    roots = [wd / "results", wd / ".snakemake"]
    assert (wd / ".snakemake" / "log").exists()
    hits = [h for r in roots for h in scan(r)]
    assert hits == [], f"the API key was written to: {hits}"
    # and the key's value is not in the config either (only the variable's name)
    assert SECRET not in (wd / "config.yaml").read_text()
    assert os.environ.get(ENV) == SECRET
