"""Through snakemake, with a prompted API coder against a fake OpenAI-compatible server on
localhost: what the predict rules depend on (the codebook, its instructions, the few-shot pool)
reruns them, and an edited corpus text is the only text asked again."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest.importorskip("openai")
pytest.importorskip("pytest_httpserver")

from pytest_httpserver import HTTPServer  # noqa: E402

from tests.conftest import REPO, copy_workflow, snakemake  # noqa: E402
from tests.inference.test_request_reuse import FakeServer  # noqa: E402

TARGET = "results/predictions/api/gold.parquet"


def planned(wd: Path, *args: str) -> dict[str, int]:
    out = snakemake(wd, "-n", TARGET, *args)
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return {}
    table = text[text.index("Job stats"):]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)
            if k != "total"}


@pytest.fixture(scope="module")
def server():
    srv = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    fake = FakeServer()
    srv.expect_request("/v1/chat/completions", method="POST").respond_with_handler(fake)
    srv.start()
    fake.url = srv.url_for("/v1")
    yield fake
    srv.clear()
    srv.stop()


@pytest.fixture(scope="module")
def ran(tmp_path_factory, server) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("predict-inputs") / "wf")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["gold"]["size"] = 20
    cfg["audits"]["prompt_variants"] = {}  # the demo's paraphrases name its zeroshot coder
    cfg["models"] = {"api": {"kind": "prompt", "backend": "openai", "model": "fake",
                             "base_url": server.url, "prompt": "prompts/zeroshot.jinja",
                             "scope": "gold", "logprobs": False, "few_shot": 1,
                             "limits": {"concurrency": 2, "max_retries": 1}}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(wd, TARGET)
    assert len(server.asked) == 20
    return wd


def edited(path: Path, change):
    """Apply ``change`` to a text file; give back a function that restores it exactly."""
    import os

    text, st = path.read_text(), path.stat()
    path.write_text(change(text))

    def restore():
        path.write_text(text)
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    return restore


@pytest.mark.parametrize("what", ["definition", "instructions"])
def test_editing_the_codebook_reruns_the_predict_job(ran, what):
    cfg_path = ran / "config.yaml"
    cfg = yaml.safe_load(cfg_path.read_text())
    if what == "definition":
        cfg["labels"]["moral"] += " Also duties to future generations."
    else:
        cfg["codebook"]["instructions"] += " Ignore quotations."
    restore = edited(cfg_path, lambda _: yaml.safe_dump(cfg, sort_keys=False))
    try:
        assert planned(ran).get("predict_gold") == 1
    finally:
        restore()
    assert planned(ran) == {}


def test_editing_the_few_shot_pool_reruns_the_predict_job(ran):
    pool = ran / "resources/example/labelled_pool.csv"
    restore = edited(pool, lambda t: t.replace("economic", "moral", 1))
    try:
        jobs = planned(ran)
        assert jobs.get("split_training") == 1 and jobs.get("predict_gold") == 1
    finally:
        restore()
    assert planned(ran) == {}


def test_an_edited_corpus_text_is_the_only_text_asked_again(ran, server):
    sample = pd.read_parquet(ran / "results/gold/sample.parquet")
    item = sample["id"].iloc[3]
    corpus = ran / "resources/example/corpus.csv"
    df = pd.read_csv(corpus, dtype=str, keep_default_na=False)
    new_text = "An entirely rewritten sentence about prisons, fairness and budgets."
    df.loc[df["id"] == item, "text"] = new_text
    df.to_csv(corpus, index=False)
    server.asked.clear()
    snakemake(ran, TARGET)
    assert server.asked == [new_text]
    pred = pd.read_parquet(ran / TARGET)
    assert len(pred) == 20 and (pred["status"] == "ok").all()
