"""LoRA / QLoRA decoder coders on a tiny random Llama (built on the fly, no downloads)."""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("peft")
pytest.importorskip("trl")
pytest.importorskip("datasets")

import torch  # noqa: E402

from tests.tiny_models import tiny_llama  # noqa: E402
from textgauge.errors import InputDataError  # noqa: E402
from textgauge.inference.backends.lora import LoraBackend, lora_predictor  # noqa: E402
from textgauge.inference.prompting import PromptTemplate  # noqa: E402
from textgauge.options import LoraModel  # noqa: E402
from textgauge.training.lora import sft_records, train_lora  # noqa: E402
from textgauge.training.lora_size import lora_size, lora_size_cli  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[2]
CODEBOOK = {
    "economic": "costs, jobs, taxes, budgets",
    "security": "crime, borders, police, safety",
    "moral": "right and wrong, duty, fairness",
}
WORDS = {
    "economic": ["taxes", "budget", "jobs", "prices", "growth"],
    "security": ["crime", "border", "police", "threat", "safety"],
    "moral": ["duty", "fairness", "decency", "values", "compassion"],
}
FILLER = ["the", "we", "must", "our", "country", "about", "this", "bill", "people", "will"]


def _data(n: int, seed: int, prefix: str) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lab = list(CODEBOOK)[i % 3]
        words = rng.sample(FILLER, 4) + rng.sample(WORDS[lab], 2)
        rng.shuffle(words)
        rows.append({"id": f"{prefix}{i:03d}", "text": " ".join(words), "label": lab})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def template() -> PromptTemplate:
    return PromptTemplate.from_file(ROOT / "prompts" / "zeroshot.jinja", CODEBOOK,
                                    "Code the frame.")


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, template) -> Path:
    texts = [m["content"] for _, r in _data(30, 0, "x").iterrows()
             for m in template.render(r["text"])]
    texts += list(CODEBOOK) * 20
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "base", texts)


def _cfg(base: Path, **kw) -> LoraModel:
    d = dict(base_model=str(base), prompt=str(ROOT / "prompts" / "zeroshot.jinja"), r=8,
             alpha=16, dropout=0.0, epochs=4, learning_rate=2e-2, train_batch_size=8,
             eval_batch_size=16, max_length=512, warmup_ratio=0.0, logging_steps=1, seed=3)
    d.update(kw)
    return LoraModel.from_dict(d)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, base_dir, template):
    out = tmp_path_factory.mktemp("lora")
    t0 = time.perf_counter()
    summary = train_lora(_data(48, 1, "t"), _data(12, 2, "v"), list(CODEBOOK),
                         _cfg(base_dir), template, out, forbidden_ids=["g1", "g2"])
    print(f"LoRA training on the tiny model: {time.perf_counter() - t0:.1f} s")
    return out, summary


def test_sft_records_use_the_prompt_template_and_label_as_answer(template):
    df = _data(6, 5, "s")
    recs = sft_records(df, template)
    assert len(recs) == 6
    for rec, (_, row) in zip(recs, df.iterrows(), strict=True):
        assert rec["prompt"] == template.render(row["text"])
        assert rec["prompt"][0]["role"] == "system" and "Codebook:" in rec["prompt"][0]["content"]
        assert rec["prompt"][-1]["role"] == "user" and row["text"] in rec["prompt"][-1]["content"]
        assert rec["completion"] == [{"role": "assistant", "content": row["label"]}]
    bad = df.assign(label="other")
    with pytest.raises(InputDataError, match="not in the codebook"):
        sft_records(bad, template)


def test_completion_only_loss_masks_the_prompt(base_dir, template):
    """trl puts the loss on the answer tokens only: the mask covers label + end-of-turn."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tok = AutoTokenizer.from_pretrained(base_dir)
    recs = [{k: r[k] for k in ("prompt", "completion")} for r in sft_records(_data(3, 0, "m"), template)]
    args = SFTConfig(output_dir=str(base_dir.parent / "sftcheck"), use_cpu=True, bf16=False,
                     report_to=[], max_length=512, gradient_checkpointing=False)
    tr = SFTTrainer(model=AutoModelForCausalLM.from_pretrained(base_dir), args=args,
                    train_dataset=Dataset.from_list(recs), processing_class=tok)
    ex = tr.train_dataset[0]
    mask = [lab != -100 for lab in ex["labels"]]  # trl turns the completion mask into labels
    answer = [i for i, m in zip(ex["input_ids"], mask, strict=True) if m]
    assert tok.decode(answer).startswith(recs[0]["completion"][0]["content"])
    assert tok.decode(answer).strip() == recs[0]["completion"][0]["content"] + "<|im_end|>"
    prompt_ids = tok.apply_chat_template(recs[0]["prompt"], add_generation_prompt=True,
                                         tokenize=True)
    prompt_ids = prompt_ids["input_ids"] if hasattr(prompt_ids, "keys") else prompt_ids
    assert ex["input_ids"][:len(prompt_ids)] == list(prompt_ids)
    assert sum(mask) == len(ex["input_ids"]) - len(prompt_ids)
    assert not any(mask[:len(prompt_ids)])


def test_lora_trains_and_saves_adapter_with_base_id(trained, base_dir):
    out, s = trained
    losses = [h["loss"] for h in s["history"] if "loss" in h]
    assert len(losses) >= 8
    k = max(2, len(losses) // 4)
    assert sum(losses[-k:]) / k < sum(losses[:k]) / k - 0.5, losses
    adapter = out / "adapter"
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    assert cfg["base_model_name_or_path"] == str(base_dir)
    assert cfg["r"] == 8 and cfg["lora_alpha"] == 16 and cfg["peft_type"] == "LORA"
    assert (adapter / "adapter_model.safetensors").exists()
    meta = json.loads((adapter / "textgauge_adapter.json").read_text())
    assert meta["base_model"] == str(base_dir) and meta["labels"] == list(CODEBOOK)
    assert "config_sha256" in meta["base_model_info"] and meta["prompt_hash"]
    assert json.loads((out / "training.json").read_text())["trainable_parameters"] \
        == s["trainable_parameters"]
    assert s["trainable_parameters"] == s["size_estimate"]["trainable_parameters"]
    assert 0 <= s["val_accuracy"] <= 1 and s["n_val_scored"] == 12
    assert s["last_train_loss"] < s["first_train_loss"]


@pytest.mark.parametrize("targets,r", [("all-linear", 16), (["q_proj", "v_proj"], 4),
                                       (r".*\.mlp\..*_proj", 8)])
def test_lora_size_matches_peft_exactly(base_dir, targets, r):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(model, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets,
                                                  task_type="CAUSAL_LM"))
    trainable, total = peft_model.get_nb_trainable_parameters()
    size = lora_size(str(base_dir), r=r, target_modules=targets)
    assert size["trainable_parameters"] == trainable
    assert size["base_parameters"] == total - trainable
    q4 = lora_size(model.config, r=r, target_modules=targets, quantize="4bit")
    assert q4["memory_gib"]["weights"] < size["memory_gib"]["weights"]
    assert q4["trainable_parameters"] == trainable


def test_lora_size_cli(base_dir, capsys):
    assert lora_size_cli([str(base_dir), "--r", "8", "--quantize", "4bit", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["quantize"] == "4bit" and out["trainable_parameters"] > 0
    assert lora_size_cli([str(base_dir), "--target-modules", "q_proj,v_proj"]) == 0
    assert "trainable" in capsys.readouterr().out


def test_adapter_inference_gives_label_probabilities(trained, template, base_dir):
    out, _ = trained
    model = LoraModel.from_dict({"base_model": "x", "limits": {"inference_batch_size": 4}})
    backend = lora_predictor(out / "model", model, threads=1)
    df = _data(9, 7, "p")
    reqs = template.requests(list(zip(df["id"], df["text"], strict=True)))
    preds = []
    backend.classify(reqs, preds.extend)
    assert [p.id for p in sorted(preds, key=lambda p: p.id)] == sorted(df["id"])
    for p in preds:
        assert p.status == "ok" and p.label in CODEBOOK
        assert set(p.probs) == set(CODEBOOK)
        assert sum(p.probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert p.confidence == pytest.approx(max(p.probs.values()))
    d = backend.describe()
    assert d["backend"] == "transformers-lora" and "LoRA adapter" in d["revision"]
    # the adapter is applied (differs from the base model) and merging changes nothing
    from textgauge.inference.backends.transformers import TransformersBackend

    base_preds, unmerged = [], []
    TransformersBackend(str(base_dir), inference_batch_size=4).classify(reqs, base_preds.extend)
    LoraBackend(out / "adapter", inference_batch_size=4, merge=False).classify(reqs, unmerged.extend)
    by_id = {p.id: p for p in preds}
    gap = max(abs(by_id[b.id].probs[k] - b.probs[k]) for b in base_preds for k in CODEBOOK)
    assert gap > 0.05
    tol = 1e-4 if backend.device == "cpu" else 3e-2  # bf16 on GPU
    for u in unmerged:
        for k in CODEBOOK:
            assert u.probs[k] == pytest.approx(by_id[u.id].probs[k], abs=tol)


def test_gold_ids_are_refused(base_dir, template, tmp_path):
    train = _data(6, 1, "t")
    with pytest.raises(InputDataError, match="gold"):
        train_lora(train, _data(3, 2, "v"), list(CODEBOOK), _cfg(base_dir), template, tmp_path,
                   forbidden_ids=["t001"])


def test_qlora_4bit_trains_on_cpu(base_dir, template, tmp_path):
    pytest.importorskip("bitsandbytes")
    t0 = time.perf_counter()
    s = train_lora(_data(24, 1, "t"), _data(6, 2, "v"), list(CODEBOOK),
                   _cfg(base_dir, quantize="4bit", epochs=3, gradient_checkpointing=True),
                   template, tmp_path)
    print(f"QLoRA on the tiny model: {time.perf_counter() - t0:.1f} s")
    assert s["config"]["quantize"] == "4bit" and s["gradient_checkpointing"]
    assert s["size_estimate"]["quantize"] == "4bit"
    assert s["quantized_linear_layers"] == 14  # 7 Linear layers x 2 blocks in NF4; lm_head kept
    losses = [h["loss"] for h in s["history"] if "loss" in h]
    assert losses[-1] < losses[0]
    meta = json.loads((tmp_path / "adapter" / "textgauge_adapter.json").read_text())
    assert meta["quantize"] == "4bit"
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()


def test_methods_sentence_states_what_this_training_ran(trained, base_dir):
    """The methods sentence of a LoRA coder, from the training summary this run wrote."""
    from textgauge.reporting.methods import coder_sentence

    _, summary = trained
    cfg = _cfg(base_dir).to_dict()
    text = coder_sentence("lora", cfg, {}, summary, len(CODEBOOK))
    assert "sequence classification" not in text
    assert f"rank {summary['adapter_meta']['lora']['r']}, alpha 16" in text
    assert "no quantisation of the base model" in text
    assert f"the answer tokens of {summary['n_train']} prompted training texts" in text
    assert f"{summary['n_val']} for validation" in text
    assert f"{summary['epochs_run']:g} run" in text
    assert f"hash {summary['adapter_meta']['prompt_hash']}" in text


def test_too_long_examples_are_counted_and_an_all_too_long_set_is_refused(base_dir, template,
                                                                           tmp_path):
    """trl would cut the answer off a too-long example and drop it silently as fully masked
    (seen: a max_length below the prompt length trained on nothing): counted, or refused."""
    from transformers import AutoTokenizer

    from textgauge.errors import ConfigError
    from textgauge.training.lora import fitting_records

    tok = AutoTokenizer.from_pretrained(base_dir)
    recs = sft_records(_data(4, 0, "f"), template)
    fit, too_long = fitting_records(recs, tok, 10_000)
    assert len(fit) == 4 and too_long == []
    fit, too_long = fitting_records(recs, tok, 16)
    assert fit == [] and too_long == [r["id"] for r in recs]
    with pytest.raises(ConfigError, match="longer than max_length=16 tokens"):
        train_lora(_data(12, 1, "t"), _data(4, 2, "v"), list(CODEBOOK),
                   _cfg(base_dir, max_length=16, epochs=1), template, tmp_path)
