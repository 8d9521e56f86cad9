"""`kind: lora` and few-shot prompts end to end through snakemake, on CPU, in seconds.

One tiny run (the bundled SYNTHETIC example, 20 gold items, one shard) with two coders on a
tiny random Llama built on the fly (tests/tiny_models.py; no downloads):

- ``lora``: rule train_lora fine-tunes LoRA adapters (one epoch on 16 texts), rule
  predict_gold scores the gold items with base model + adapter (transformers + peft), rule
  evaluate validates it, and the report describes it;
- ``fewshot``: a prompted coder with ``few_shot: 1``, whose examples must come from the
  training split (never gold) and be in the prompt it was run with.

The random model answers nonsense; this run checks the plumbing, not the quality.
tests/workflow/test_lora_vllm_workflow.py runs the same config with the adapter served by
vLLM (the vLLM target).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import REPO, copy_workflow, snakemake

pytestmark = pytest.mark.slow

pytest.importorskip("peft")
pytest.importorskip("trl")

CONFIG = "config/lora_tiny.yaml"
GOLD_SIZE = 20
TRAIN_ITEMS = 16


def tiny_base(wd: Path) -> Path:
    """A tiny random Llama whose tokenizer is trained on the corpus and the prompt (~5 s)."""
    from tests.tiny_models import tiny_llama

    texts = list(pd.read_csv(REPO / "resources/example/corpus.csv")["text"].head(200))
    texts += [(REPO / "prompts/zeroshot.jinja").read_text()]
    texts += list(yaml.safe_load((REPO / "config.yaml").read_text())["labels"]) * 20
    return tiny_llama(wd / "tiny-base", texts)


def lora_config(wd: Path, backend: str = "transformers", few_shot: bool = True) -> str:
    """The bundled example made tiny, with a LoRA coder (and a few-shot prompted coder) on the
    tiny base model; written to ``wd/config/lora_tiny.yaml`` (run with
    --replace-workflow-config). Returns the config path relative to ``wd``."""
    base = str(tiny_base(wd))
    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    cfg["gold"]["size"] = GOLD_SIZE
    cfg["inference"]["shards"] = 1
    cfg["validation"]["bootstrap"] = 100
    cfg["audits"] = {"enabled": False, "positional_orders": [], "ensemble": False,
                     "revalidation_size": 0}
    lora = {"kind": "lora", "base_model": base, "backend": backend, "scope": "gold",
            "r": 4, "alpha": 8, "epochs": 1, "learning_rate": 1.0e-2, "train_batch_size": 8,
            "max_train_items": TRAIN_ITEMS, "max_val_scored": 8, "logging_steps": 1}
    if backend == "vllm":
        lora["limits"] = {"inference_batch_size": 32}
    cfg["models"] = {"lora": lora}
    if few_shot:
        cfg["models"]["fewshot"] = {"kind": "prompt", "backend": "transformers", "model": base,
                                    "prompt": "prompts/zeroshot.jinja", "few_shot": 1,
                                    "scope": "gold", "limits": {"inference_batch_size": 10}}
    (wd / CONFIG).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return CONFIG


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("lora") / "wf")
    t0 = time.perf_counter()
    config = lora_config(wd)
    snakemake(wd, "--configfile", config, "--replace-workflow-config")
    print(f"LoRA + few-shot tiny run: {time.perf_counter() - t0:.1f} s")
    return wd


def test_train_lora_writes_the_adapter_and_its_summary(lora_run):
    models = lora_run / "results/models/lora"
    adapter = models / "adapter"
    for name in ("adapter_config.json", "adapter_model.safetensors", "textgauge_adapter.json"):
        assert (adapter / name).exists(), name
    info = json.loads((models / "training.json").read_text())
    assert info["kind"] == "lora" and info["n_train"] == TRAIN_ITEMS
    assert info["epochs_run"] == pytest.approx(1.0) and info["n_val_scored"] == 8
    assert info["first_train_loss"] is not None and info["trainable_parameters"] > 0
    # nothing was left out of training for length (counted, and 0 here)
    assert info["n_too_long"] == {"train": 0, "val": 0} and info["warnings"] == []
    meta = json.loads((adapter / "textgauge_adapter.json").read_text())
    assert meta["lora"]["r"] == 4 and meta["base_model"].endswith("tiny-base")
    # the gold items were never trained on
    gold = set(pd.read_parquet(lora_run / "results/gold/sample.parquet")["id"].astype(str))
    train = set(pd.read_parquet(lora_run / "results/training/train.parquet")["id"].astype(str))
    assert not gold & train


def test_lora_predicts_with_the_adapter_and_is_validated(lora_run):
    res = lora_run / "results"
    preds = pd.read_parquet(res / "predictions/lora.parquet")
    assert len(preds) == GOLD_SIZE and (preds["status"] == "ok").all()
    assert set(preds["backend"]) == {"transformers-lora"}
    adapter = res / "models/lora/adapter"
    from textgauge.inference.backends.lora import adapter_hash

    assert preds["model_revision"].iloc[0].endswith(f"+ LoRA adapter ({adapter_hash(adapter)})")
    probs = preds[[c for c in preds.columns if c.startswith("prob_")]]
    assert probs.shape[1] == 4 and ((probs.sum(axis=1) - 1).abs() < 1e-6).all()
    metrics = json.loads((res / "validation/lora/metrics.json").read_text())
    assert metrics["n_evaluated"] == GOLD_SIZE and metrics["kappa"]["kappa"] is not None
    methods = (res / "report/methods.md").read_text()
    assert "lora is the instruct decoder" in methods and "with LoRA adapters (rank 4" in methods
    assert f"trained on the answer tokens of {TRAIN_ITEMS} prompted training texts" in methods
    html = (res / "report/index.html").read_text()
    assert "lora is the instruct decoder" in html


def test_few_shot_examples_come_from_the_training_split_and_are_in_the_prompt(lora_run):
    from textgauge.inference.prompting import PromptTemplate

    res = lora_run / "results"
    manifest = json.loads((res / "predictions/fewshot.manifest.json").read_text())
    shots = manifest["few_shot"]
    cfg = yaml.safe_load((lora_run / CONFIG).read_text())
    labels = cfg["labels"]
    # one per label, from the training split, never a gold (or validation) item
    assert shots["per_label"] == 1 and shots["n"] == len(labels) == len(shots["ids"])
    assert shots["by_label"] == dict.fromkeys(labels, 1)
    assert shots["source"].endswith("training/train.parquet")
    train = pd.read_parquet(res / "training/train.parquet").set_index("id")
    gold = set(pd.read_parquet(res / "gold/sample.parquet")["id"].astype(str))
    val = set(pd.read_parquet(res / "training/val.parquet")["id"].astype(str))
    assert set(shots["ids"]) <= set(train.index.astype(str))
    assert not set(shots["ids"]) & (gold | val)
    assert [train.loc[i, "label"] for i in shots["ids"]] == shots["labels"]
    # the prompt the coder ran with holds exactly these examples: its recorded hash is the
    # template's with them (and not without), and the rendered prompt shows their texts
    examples = [(train.loc[i, "text"], train.loc[i, "label"]) for i in shots["ids"]]
    instructions = cfg["codebook"]["instructions"]
    with_shots = PromptTemplate.from_file(lora_run / "prompts/zeroshot.jinja", labels,
                                          instructions, examples)
    without = PromptTemplate.from_file(lora_run / "prompts/zeroshot.jinja", labels, instructions)
    preds = pd.read_parquet(res / "predictions/fewshot.parquet")
    assert set(preds["prompt_hash"]) == {with_shots.hash()} != {without.hash()}
    assert manifest["prompt_hash"] == with_shots.hash()
    system = with_shots.render("any text")[0]["content"]
    assert all(text in system for text, _ in examples)
    assert (preds["status"] == "ok").all() and len(preds) == GOLD_SIZE
    methods = (res / "report/methods.md").read_text()
    assert "1 few-shot example per label (4 per prompt), drawn from the training data" in methods
