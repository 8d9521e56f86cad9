"""The README's `gpt` coder (OpenAI batch API, four corpus shards) through snakemake, against a
local fake that speaks the OpenAI Files + Batches wire protocol: the first run submits every
job (each shard, and the gold sample's label-order re-run) and stops "not ready yet"; the
second run, once the fake reports the batches completed, collects every job. Each job has its
own state and nothing is submitted twice."""

from __future__ import annotations

import json
import re
import threading

import pandas as pd
import pytest
import yaml

pytest.importorskip("openai")
pytest.importorskip("pytest_httpserver")

from pytest_httpserver import HTTPServer  # noqa: E402

from tests.conftest import REPO, copy_workflow, snakemake  # noqa: E402
from tests.inference.backends.test_batch import FakeOpenAI  # noqa: E402

pytestmark = pytest.mark.slow

SHARDS = [f"shard-{i:04d}" for i in range(4)]
# the corpus shards and the positional audit's label order: one job each (a prompt variant
# is one more job of the same kind: tests/inference/backends/test_batch.py covers the state)
JOBS = [*SHARDS, "gold-order-reversed"]
TARGETS = ["results/predictions/gpt.parquet",
           "results/predictions/gpt/gold-order-reversed.parquet"]
N_CORPUS, N_GOLD = 40, 10


class FakeBatches(FakeOpenAI):
    """FakeOpenAI for the example's codebook: answers each request with a label of its own
    schema; thread-safe (snakemake runs two jobs at once)."""

    def __init__(self) -> None:
        super().__init__(polls_until_done=10**9)  # running until the test says otherwise
        self.lock = threading.Lock()

    def handler(self, req):
        with self.lock:
            return super().handler(req)

    def run(self, bid: str) -> None:
        b = self.batches[bid]
        out = []
        for k, line in enumerate(self.files[b["input"]].decode().splitlines()):
            rec = json.loads(line)
            labels = rec["body"]["response_format"]["json_schema"]["schema"]["properties"][
                "label"]["enum"]
            label = labels[len(rec["custom_id"]) % len(labels)]
            out.append({"id": f"batch_req_{k}", "custom_id": rec["custom_id"], "response": {
                "status_code": 200, "request_id": f"req_{k}", "body": {
                    "id": f"chatcmpl-{k}", "object": "chat.completion", "created": 1732000000,
                    "model": rec["body"]["model"] + "-2026-04-14", "choices": [{
                        "index": 0, "message": {"role": "assistant", "refusal": None,
                                                "content": json.dumps({"label": label})},
                        "logprobs": None, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 120, "completion_tokens": 6,
                              "total_tokens": 126}}}, "error": None})
        b["output"] = f"file-out-{bid}"
        self.files[b["output"]] = ("\n".join(json.dumps(x) for x in out) + "\n").encode()
        b["status"], b["done"] = "completed", len(out)

    def sent_ids(self) -> list[str]:
        """custom_ids of every request ever uploaded (a resubmission would repeat one)."""
        return [json.loads(line)["custom_id"] for fid, data in self.files.items()
                if fid.startswith("file-in") for line in data.decode().splitlines()]


@pytest.fixture
def fake():
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    fake = FakeBatches()
    srv.expect_request("/v1/files", method="POST").respond_with_handler(fake.handler)
    srv.expect_request("/v1/batches", method="POST").respond_with_handler(fake.handler)
    srv.expect_request(re.compile(r"/v1/(batches|files)/.*")).respond_with_handler(fake.handler)
    srv.start()
    fake.url = srv.url_for("/v1")
    yield fake
    srv.clear()
    srv.stop()


def test_readme_gpt_example_submits_every_job_then_collects(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-batch-key-0123456789")
    wd = copy_workflow(tmp_path / "wf")
    corpus = wd / "resources/example/corpus.csv"
    corpus.write_text("".join(corpus.read_text().splitlines(keepends=True)[:N_CORPUS + 1]))
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["inference"]["shards"] = 4
    cfg["gold"]["size"] = N_GOLD
    cfg["audits"] = {"positional_orders": ["reversed"]}
    example = re.search(r"^\s*gpt:\s*(\{.*?\}\})", (REPO / "README.md").read_text(),
                        flags=re.M | re.S)
    readme = yaml.safe_load(example.group(1))
    assert readme["limits"]["batch_api"] is True  # the README's example, as written there
    cfg["models"] = {"gpt": {**readme, "base_url": fake.url,
                             "limits": {**readme["limits"], "batch_poll_interval": 0.1}}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))

    first = snakemake(wd, *TARGETS, "--keep-going", check=False)
    text = first.stdout + first.stderr
    assert first.returncode != 0, text[-3000:]
    logs = "".join(p.read_text() for p in (wd / "results/logs").rglob("*.log"))
    assert logs.count("Not ready yet, run again later") == len(JOBS), text[-3000:]
    assert fake.posts == {"files": len(JOBS), "batches": len(JOBS)}
    pred = wd / "results/predictions/gpt"
    assert not list(pred.glob("*.parquet"))  # no job wrote predictions
    # one receipt and one state per job
    receipts = {p.stem: json.loads(p.read_text()) for p in (pred / "batch").glob("*.json")}
    assert sorted(receipts) == sorted(JOBS)
    states = sorted((pred / "checkpoints").glob("*.batch.json"))
    assert len(states) == len(JOBS)
    assert len({r["state"] for r in receipts.values()}) == len(JOBS)
    assert sum(r["submitted_now"] for r in receipts.values()) == N_CORPUS + N_GOLD

    fake.polls_until_done = 0  # the provider finished every batch
    snakemake(wd, *TARGETS)
    assert fake.posts == {"files": len(JOBS), "batches": len(JOBS)}  # nothing resubmitted
    sent = fake.sent_ids()
    assert len(sent) == N_CORPUS + N_GOLD
    df = pd.read_parquet(wd / TARGETS[0])
    assert len(df) == N_CORPUS and df["id"].is_unique and (df["status"] == "ok").all()
    assert (df["usage_prompt_tokens"] == 120).all()
    assert (df["served_model"] == "gpt-4.1-mini-2026-04-14").all()
    assert set(df["backend"]) == {"openai-batch"}
    for target in TARGETS[1:]:
        gold = pd.read_parquet(wd / target)
        assert len(gold) == N_GOLD and (gold["status"] == "ok").all()
    manifest = json.loads((wd / "results/predictions/gpt.manifest.json").read_text())
    assert manifest["answers_from_batch_api"] == N_CORPUS
    assert "sk-fake-batch-key" not in "".join(p.read_text() for p in states)
    assert "Nothing to be done" in snakemake(wd, *TARGETS, "-n").stdout

    # a config of the former design (one state file per model) is refused with what to do
    cfg["models"]["gpt"]["limits"]["batch_state"] = "results/batch/gpt.json"
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    old = snakemake(wd, *TARGETS, "-n", check=False)
    assert old.returncode != 0
    assert "models.gpt.limits.batch_state is no longer used" in old.stdout + old.stderr
