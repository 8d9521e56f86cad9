"""LoRA / QLoRA fine-tuning of an instruct decoder as a machine coder (``kind: lora``).

The decoder learns to answer the *same* prompt the prompted coders see: every labelled
example is rendered with the project's :class:`~textgauge.inference.prompting.PromptTemplate`
(system prefix with the codebook, the text as the user turn) and its label becomes the
assistant's answer. trl's ``SFTTrainer`` with prompt/completion data puts the loss on the
answer only. Inference (:mod:`textgauge.inference.backends.lora`) scores each label after the
prompt, so the fine-tuned decoder yields a probability per label like every other coder.

QLoRA (``quantize: 4bit``) loads the base model in 4-bit NF4 with double quantisation
(bitsandbytes) and trains LoRA adapters on top. The adapter is saved in the standard peft
format (adapter_config.json + adapter_model.safetensors, loadable by peft and by vLLM's
``enable_lora``) together with ``textgauge_adapter.json``: base model id, revision, labels,
template and LoRA settings, so a reviewer can tell exactly what was trained on what.
The options are :class:`textgauge.options.LoraModel`; the size calculator is
:mod:`textgauge.training.lora_size`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.errors import ConfigError, InputDataError
from textgauge.inference.backends.lora import (
    ADAPTER_META,
    LoraBackend,
    load_base_model,
    load_tokenizer,
)
from textgauge.inference.prompting import PromptTemplate
from textgauge.options import LoraModel
from textgauge.training.lora_size import format_size, lora_size

log = logging.getLogger("textgauge")


# ------------------------------------------------------------------ SFT data
def sft_records(df: pd.DataFrame, template: PromptTemplate, order: str = "fixed",
                seed: int = 0) -> list[dict[str, Any]]:
    """Conversational prompt/completion records: the coder's prompt, the label as answer."""
    unknown = sorted(set(df["label"]) - set(template.codebook))
    if unknown:
        raise InputDataError(f"Training labels {unknown} are not in the codebook "
                             f"{list(template.codebook)}.")
    reqs = template.requests(list(zip(df["id"].astype(str), df["text"], strict=True)),
                             order=order, seed=seed)
    return [{"id": r.id, "prompt": r.messages,
             "completion": [{"role": "assistant", "content": str(lab)}]}
            for r, lab in zip(reqs, df["label"], strict=True)]


def fitting_records(records: list[dict[str, Any]], tok: Any,
                    max_length: int) -> tuple[list[dict[str, Any]], list[str]]:
    """The records whose prompt + answer fit in ``max_length`` tokens, and the ids of the rest.

    trl truncates a longer example from the right, which cuts off the answer (the only part
    with a loss), and then silently drops it as "fully masked": a too-small max_length could
    leave nothing to train on without a word. Counting here makes the loss visible.
    """
    fit, too_long = [], []
    for r in records:
        text = tok.apply_chat_template(r["prompt"] + r["completion"], tokenize=False)
        n = len(tok(text, add_special_tokens=False)["input_ids"])
        (fit if n <= max_length else too_long).append(r)
    return fit, [str(r["id"]) for r in too_long]


def _precision(precision: str) -> tuple[str, str]:
    """(device, dtype name) for training."""
    import torch

    cuda = torch.cuda.is_available()
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if not cuda:
        precision = "fp32"
    return ("cuda" if cuda else "cpu"), precision


# ------------------------------------------------------------------ training
def train_lora(train: pd.DataFrame, val: pd.DataFrame, labels: Sequence[str],
               cfg: LoraModel, template: PromptTemplate, out_dir: str | Path,
               forbidden_ids: Sequence[str] = ()) -> dict[str, Any]:
    """Fine-tune LoRA adapters on the prompt -> label task; save the adapter and a summary."""
    leak = set(map(str, forbidden_ids)) & (set(train["id"].astype(str)) | set(val["id"].astype(str)))
    if leak:
        raise InputDataError(f"{len(leak)} gold test id(s) are in the training or validation "
                             f"data (e.g. {sorted(leak)[:5]}); the gold set must stay held out.")
    labels = list(labels)
    if list(template.codebook) != labels:
        raise ConfigError(f"The template's codebook labels {list(template.codebook)} differ from "
                          f"the labels {labels}.")
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import EarlyStoppingCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    from textgauge.inference.aliases import describe, resolve

    if cfg.max_train_items and len(train) > cfg.max_train_items:
        train = train.sample(cfg.max_train_items, random_state=cfg.seed).sort_values("id")
    set_seed(cfg.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = resolve(cfg.base_model)
    device, precision = _precision(cfg.precision)
    tok = load_tokenizer(path, cfg.revision)
    model = load_base_model(path, cfg.quantized, device, precision, cfg.revision)
    gc = bool(cfg.quantized) if cfg.gradient_checkpointing is None else cfg.gradient_checkpointing
    if cfg.quantized:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gc,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    n_quantized = sum(type(m).__name__ in ("Linear4bit", "Linear8bitLt")
                      for m in model.modules())
    target = cfg.target_modules
    size = lora_size(model.config, cfg.r, target, cfg.quantized, cfg.train_batch_size,
                     min(cfg.max_length, 512), gc)
    log.info("%s", format_size(size))
    print(format_size(size), flush=True)
    peft_cfg = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=target, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, peft_cfg)
    n_trainable, n_all = model.get_nb_trainable_parameters()
    if n_trainable != size["trainable_parameters"]:
        log.warning("peft reports %d trainable parameters, the calculator %d.", n_trainable,
                    size["trainable_parameters"])

    order = cfg.label_order
    train_recs, too_long_train = fitting_records(
        sft_records(train, template, order, cfg.seed), tok, cfg.max_length)
    val_recs, too_long_val = fitting_records(
        sft_records(val, template, order, cfg.seed), tok, cfg.max_length)
    warnings = [f"{n} {split} example(s) are longer than max_length={cfg.max_length} tokens "
                "(prompt + answer) and were left out of training: raise max_length or "
                "shorten the prompt." for split, n in (("training", len(too_long_train)),
                                                       ("validation", len(too_long_val))) if n]
    for w in warnings:
        log.warning(w)
    if not train_recs:
        raise ConfigError(f"Every training example is longer than max_length="
                          f"{cfg.max_length} tokens (prompt + answer), so the answer would be "
                          "cut off and nothing would be learned: raise the model's max_length "
                          "or shorten the prompt template.")
    train_ds = Dataset.from_list([{k: r[k] for k in ("prompt", "completion")}
                                  for r in train_recs])
    val_ds = (Dataset.from_list([{k: r[k] for k in ("prompt", "completion")}
                                 for r in val_recs])
              if val_recs else None)
    steps_per_epoch = math.ceil(len(train_ds) / (cfg.train_batch_size * cfg.gradient_accumulation_steps))
    ckpt = out_dir / "checkpoints"
    has_val = val_ds is not None
    args = SFTConfig(
        output_dir=str(ckpt), num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.train_batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=math.ceil(cfg.warmup_ratio * cfg.epochs * steps_per_epoch),
        weight_decay=cfg.weight_decay, max_length=cfg.max_length, packing=False,
        completion_only_loss=True, gradient_checkpointing=gc,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gc else None,
        eval_strategy="epoch" if has_val else "no", save_strategy="epoch" if has_val else "no",
        load_best_model_at_end=has_val, metric_for_best_model="eval_loss",
        greater_is_better=False, save_total_limit=1, logging_strategy="steps",
        logging_steps=cfg.logging_steps, seed=cfg.seed, data_seed=cfg.seed, report_to=[],
        use_cpu=device == "cpu", bf16=precision == "bf16", fp16=precision == "fp16",
        dataloader_num_workers=0, disable_tqdm=False,
    )
    callbacks = ([EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]
                 if has_val and cfg.early_stopping_patience else [])
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                         processing_class=tok, callbacks=callbacks)
    result = trainer.train()
    history = [{k: v for k, v in h.items() if k in ("epoch", "step", "loss", "eval_loss",
                                                      "learning_rate", "grad_norm")}
               for h in trainer.state.log_history if "loss" in h or "eval_loss" in h]

    adapter_dir = out_dir / "adapter"
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    peft_model = trainer.model
    info = describe(cfg.base_model)
    for pc in peft_model.peft_config.values():
        pc.base_model_name_or_path = cfg.base_model
        pc.revision = cfg.revision
    peft_model.save_pretrained(str(adapter_dir))
    tok.save_pretrained(str(adapter_dir))
    meta = {
        "base_model": cfg.base_model, "base_model_upstream": info.get("upstream"),
        "revision": cfg.revision, "base_model_revision_info": info.get("revision"),
        "base_model_info": info, "labels": labels, "label_order": cfg.label_order,
        "prompt": cfg.prompt, "prompt_hash": template.hash(), "template": template.source,
        "lora": {"r": cfg.r, "alpha": cfg.alpha, "dropout": cfg.dropout,
                 "target_modules": target},
        "quantize": cfg.quantize, "max_length": cfg.max_length,
    }
    (adapter_dir / ADAPTER_META).write_text(json.dumps(meta, indent=2, default=str))
    shutil.rmtree(ckpt, ignore_errors=True)

    # validation accuracy / macro-F1 by label scoring with the trained model
    val_metrics: dict[str, Any] = {}
    if len(val):
        scored = val if not cfg.max_val_scored or len(val) <= cfg.max_val_scored else \
            val.sample(cfg.max_val_scored, random_state=cfg.seed)
        peft_model.eval()
        backend = LoraBackend.from_loaded(peft_model, tok, cfg.base_model, str(adapter_dir),
                                          inference_batch_size=cfg.eval_batch_size,
                                          max_length=cfg.max_length)
        val_metrics = _score_metrics(backend, template, scored, labels, cfg)
    epochs_run = max((float(h.get("epoch", 0)) for h in history), default=0.0)
    train_losses = [h["loss"] for h in history if "loss" in h]
    summary = {
        "kind": "lora", "base_model": info, "labels": labels,
        "config": cfg.answer_settings(),
        "adapter": str(adapter_dir), "adapter_meta": {k: v for k, v in meta.items()
                                                       if k != "template"},
        "trainable_parameters": int(n_trainable), "all_parameters": int(n_all),
        "size_estimate": size, "n_train": len(train_ds), "n_val": len(val),
        "device": device, "precision": precision, "gradient_checkpointing": gc,
        "quantized_linear_layers": int(n_quantized),
        "epochs_run": epochs_run, "stopped_early": epochs_run < cfg.epochs - 1e-6,
        "best_val_loss": trainer.state.best_metric,
        "first_train_loss": train_losses[0] if train_losses else None,
        "last_train_loss": train_losses[-1] if train_losses else None,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "peak_gpu_memory_gib": (torch.cuda.max_memory_allocated() / 1024 ** 3
                                if device == "cuda" else None),
        "n_too_long": {"train": len(too_long_train), "val": len(too_long_val)},
        "too_long_ids": {"train": too_long_train[:20], "val": too_long_val[:20]},
        **val_metrics, "history": history, "warnings": warnings,
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _score_metrics(backend: Any, template: PromptTemplate, df: pd.DataFrame,
                   labels: Sequence[str], cfg: LoraModel) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    reqs = template.requests(list(zip(df["id"].astype(str), df["text"], strict=True)),
                             order=cfg.label_order, seed=cfg.seed)
    got: dict[str, Any] = {}
    backend.classify(reqs, lambda ps: got.update({p.id: p.label for p in ps}))
    y = [str(v) for v in df["label"]]
    pred = [got.get(i) or "" for i in df["id"].astype(str)]
    return {"val_accuracy": accuracy_score(y, pred),
            "val_macro_f1": f1_score(y, pred, labels=list(labels), average="macro",
                                     zero_division=0),
            "n_val_scored": len(df)}


__all__ = ["fitting_records", "sft_records", "train_lora"]
