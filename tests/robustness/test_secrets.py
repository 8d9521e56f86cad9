"""Secrets scan: credentials planted in the environment, in a base_url and echoed back by the
server reach no file of the run, of Snakemake's records or of the replication package.

Two prompted coders (``backend: openai``) call a fake OpenAI server on localhost
(pytest-httpserver): ``basic`` through ``http://USER:PASSWORD@127.0.0.1:PORT/v1`` (the HTTP
client sends Basic auth), ``query`` through ``http://127.0.0.1:PORT/v1?api_key=...&token=...``
with the API key in the environment (sent as the bearer token). For the first text of each
coder the server fails with a body that echoes every credential it saw (the Authorization
header, the URL with its query, an x-api-key field); for the second it answers with text that
echoes them (an invalid label, kept as the raw answer). After `snakemake replication`, no
file under results/ or .snakemake/, nor in the unpacked tarball, holds any planted secret,
raw, percent-encoded or base64-encoded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tarfile
import threading
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
import yaml

pytest.importorskip("openai")
pytest.importorskip("pytest_httpserver")

from pytest_httpserver import HTTPServer  # noqa: E402
from werkzeug import Request, Response  # noqa: E402

from tests.conftest import REPO, copy_workflow, snakemake  # noqa: E402
from tests.robustness.test_key_leak import merged  # noqa: E402

ENV = "TEXTGAUGE_SECRETS_TEST_KEY"
ENV_KEY = "tgk-ENVKEY-4c1e9a7b3d5f"
USER = "proxyuser-8b2d"
PASSWORD = "pw-URLPASS-6e0f2a9c"
QUERY_KEY = "qk-QUERYKEY-1a3c5e7f"
QUERY_TOKEN = "qt-QUERYTOKEN-9b8d7f6e"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
#: what must appear nowhere (the user name alone is no secret, but never echoed either)
PLANTED = [ENV_KEY, PASSWORD, QUERY_KEY, QUERY_TOKEN, f"{USER}:{PASSWORD}", BASIC]


def needles() -> list[bytes]:
    out = []
    for s in PLANTED:
        out += [s, quote(s, safe=""), base64.b64encode(s.encode()).decode().rstrip("=")]
    return [n.encode() for n in dict.fromkeys(out)]


class EchoingServer:
    """A fake OpenAI chat server that echoes the credentials of each request back."""

    def __init__(self, labels: list[str]):
        self.labels = labels
        self.lock = threading.Lock()
        self.seen: list[tuple[str, dict[str, str], str]] = []  # auth, query, path
        self.texts: dict[str, list[str]] = {}

    def __call__(self, req: Request) -> Response:
        body = json.loads(req.data)
        text = body["messages"][-1]["content"]
        auth = req.headers.get("Authorization", "")
        coder = "basic" if auth.startswith("Basic ") else "query"
        with self.lock:
            self.seen.append((auth, dict(req.args), req.path))
            texts = self.texts.setdefault(coder, [])
            if text not in texts:
                texts.append(text)
            role = texts.index(text)
        echo = (f"Authorization: {auth}; url {req.url}; x-api-key: {ENV_KEY}; "
                f"api_key={req.args.get('api_key', '')}")
        if role == 0:  # an error body echoing the credentials, as some proxies do
            return Response(json.dumps({"error": {"message": f"denied ({echo})",
                                                  "type": "server_error"}}),
                            status=500, content_type="application/json")
        content = echo if role == 1 else json.dumps(
            {"label": self.labels[int(hashlib.sha256(text.encode()).hexdigest(), 16)
                                  % len(self.labels)]})
        return Response(json.dumps({
            "id": "chatcmpl-secrets", "object": "chat.completion", "created": 1732000000,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 200, "completion_tokens": 6, "total_tokens": 206}}),
            content_type="application/json")


def scan(root: Path) -> list[str]:
    """Files under ``root`` whose bytes, or parquet cells, hold a planted secret."""
    hits = []
    wanted = needles()
    for p in sorted(root.rglob("*")):
        if not p.is_file():
            continue
        data = p.read_bytes()
        found = [n.decode() for n in wanted if n in data]
        if not found and p.suffix == ".parquet":  # compressed pages: the values too
            cells = "\n".join(map(str, pd.read_parquet(p).to_numpy().ravel()))
            found = [n.decode() for n in wanted if n.decode() in cells]
        if found:
            hits.append(f"{p.relative_to(root)}: {found}")
    return hits


def api_coder(base_url: str, **limits) -> dict:
    return {"kind": "prompt", "backend": "openai", "model": "gpt-4o-mini",
            "base_url": base_url, "prompt": "prompts/zeroshot.jinja", "scope": "gold",
            "logprobs": False, "max_reasks": 0,
            "limits": {"api_key_env": ENV, "concurrency": 4, "max_retries": 1,
                       "backoff_initial": 0.05, "backoff_max": 0.1, "max_fail_share": 0.2,
                       **limits}}


def test_the_openai_backend_uses_url_credentials_and_stores_none(monkeypatch):
    """Fast, no workflow: user:password goes as Basic auth, the query as query parameters
    (not glued before /chat/completions); errors and raw answers come back redacted."""
    from textgauge.inference.backends.base import PromptRequest
    from textgauge.inference.backends.openai import OpenAIBackend

    labels = ["a", "b"]
    fake = EchoingServer(labels)
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(fake)
    server.start()
    monkeypatch.setenv(ENV, ENV_KEY)
    try:
        host = f"127.0.0.1:{server.port}"
        got = {}
        for name, url in (("basic", f"http://{USER}:{PASSWORD}@{host}/v1"),
                          ("query", f"http://{host}/v1?api_key={QUERY_KEY}&token={QUERY_TOKEN}")):
            cfg = {"model": "m", "base_url": url, "api_key_env": ENV, "logprobs": False,
                   "max_reasks": 0, "max_retries": 0, "structured": "none"}
            backend = OpenAIBackend(cfg)
            reqs = [PromptRequest(id=str(i), messages=[{"role": "user", "content": f"t{i}"}],
                                  labels=labels) for i in range(3)]
            preds = []
            backend.classify(reqs, preds.extend)
            got[name] = (preds, backend.describe())
    finally:
        server.clear()
        server.stop()
    auths = {a for a, _, _ in fake.seen}
    assert f"Basic {BASIC}" in auths and f"Bearer {ENV_KEY}" in auths
    queried = [q for a, q, _ in fake.seen if a.startswith("Bearer")]
    assert queried and all(q == {"api_key": QUERY_KEY, "token": QUERY_TOKEN} for q in queried)
    assert {p for _, _, p in fake.seen} == {"/v1/chat/completions"}
    for preds, info in got.values():
        assert sorted(p.status for p in preds) == ["failed", "invalid", "ok"]
        stored = json.dumps([[p.raw, p.error] for p in preds]) + json.dumps(info)
        assert not [s for s in PLANTED if s in stored], stored
        assert "[REDACTED]" in stored
    assert got["basic"][1]["base_url"] == f"http://***@{host}/v1"
    assert got["query"][1]["base_url"] == f"http://{host}/v1?api_key=***&token=***"


@pytest.mark.slow
def test_no_planted_secret_in_results_snakemake_or_the_package(tmp_path, monkeypatch):
    wd = copy_workflow(tmp_path / "wf")
    base = merged(yaml.safe_load((REPO / "config.yaml").read_text()),
                  yaml.safe_load((REPO / "config" / "test.yaml").read_text()))
    labels = list(base["labels"])
    fake = EchoingServer(labels)
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.expect_request("/v1/chat/completions", method="POST").respond_with_handler(fake)
    server.start()
    host = f"127.0.0.1:{server.port}"
    basic_url = f"http://{USER}:{PASSWORD}@{host}/v1"
    query_url = f"http://{host}/v1?api_key={QUERY_KEY}&token={QUERY_TOKEN}"
    try:
        cfg = dict(base)
        cfg["models"] = {"basic": api_coder(basic_url), "query": api_coder(query_url)}
        cfg["audits"] = {**cfg.get("audits", {}), "positional_orders": []}
        cfg["privacy"] = {"local_only": True}
        (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        monkeypatch.setenv(ENV, ENV_KEY)
        snakemake(wd, "replication")
        # a new password is no new question: the predict jobs are not planned again
        cfg["models"]["basic"]["base_url"] = f"http://{USER}:another-pw-0000@{host}/v1"
        (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
        dry = snakemake(wd, "-n", "replication")
    finally:
        server.clear()
        server.stop()
    assert "predict_gold" not in dry.stdout, dry.stdout[-3000:]

    # the secrets were really used and echoed
    auths = {a for a, _, _ in fake.seen}
    assert f"Basic {BASIC}" in auths and f"Bearer {ENV_KEY}" in auths
    assert any(q.get("api_key") == QUERY_KEY for _, q, _ in fake.seen)
    n_gold = base["gold"]["size"]
    for m in ("basic", "query"):
        preds = pd.read_parquet(wd / f"results/predictions/{m}.parquet")
        assert len(preds) == n_gold
        assert sorted(preds["status"].value_counts().to_dict().items()) == \
            [("failed", 1), ("invalid", 1), ("ok", n_gold - 2)]
        bad = preds[preds["status"] != "ok"]
        assert bad["error"].fillna("").str.contains("[REDACTED]", regex=False).any()
        assert bad["raw"].fillna("").str.contains("[REDACTED]", regex=False).any()

    # the URLs are written, redacted, where they are recorded
    manifest = json.loads((wd / "results/predictions/basic.manifest.json").read_text())
    assert manifest["model_config"]["base_url"] == f"http://***@{host}/v1"
    assert manifest["decoding"]["base_url"] == f"http://***@{host}/v1"
    tarball = wd / "results/replication.tar.gz"
    out = tmp_path / "unpacked"
    with tarfile.open(tarball) as tar:
        tar.extractall(out, filter="data")
    package_cfg = yaml.safe_load((out / "replication/config.yaml").read_text())
    assert package_cfg["models"]["query"]["base_url"] == \
        f"http://{host}/v1?api_key=***&token=***"
    metadata = "".join(p.read_text(errors="replace")
                       for p in (wd / ".snakemake/metadata").iterdir())
    assert f"http://***@{host}/v1" in metadata  # the predict params, redacted

    # and nothing anywhere holds a planted secret (the scan does find them where they are)
    probe = tmp_path / "probe"
    probe.mkdir()
    shutil.copy(wd / "config.yaml", probe / "config.yaml")
    pd.DataFrame({"x": [f"raw {ENV_KEY}"]}).to_parquet(probe / "p.parquet")
    (probe / "b64.txt").write_text(base64.b64encode(PASSWORD.encode()).decode())
    assert len(scan(probe)) == 3, scan(probe)
    assert (wd / ".snakemake/log").exists()
    hits = [h for root in (wd / "results", wd / ".snakemake", out) for h in scan(root)]
    assert hits == [], f"planted secrets were written to: {hits}"
