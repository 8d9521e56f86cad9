"""Fine-tune an encoder (any AutoModelForSequenceClassification) as a machine coder.

Choices that matter for measurement, not only for accuracy:
- the gold test set is never seen in training or model selection (the splits module removes
  it; :func:`train_encoder` checks again and refuses overlap);
- class imbalance is handled with inverse-frequency class weights in the loss (or weights
  given per label), because an unweighted encoder on skewed data can collapse to the
  majority class and still look accurate;
- model selection is by validation macro-F1 with early stopping (patience in epochs);
- training curves and a memorisation warning (train accuracy far above validation) are saved
  next to the model, so a reviewer can see how the instrument was made.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import ConfigError, InputDataError
from textgauge.options import EncoderModel


def class_weight_vector(labels: Sequence[str], train_labels: Sequence[str],
                        spec: str | Mapping[str, float] | None) -> np.ndarray | None:
    """Loss weights per label: n / (k * n_c) (inverse frequency), given, or none."""
    if spec in (None, "none", False):
        return None
    if isinstance(spec, Mapping):
        missing = [lab for lab in labels if lab not in spec]
        if missing:
            raise ConfigError(f"class_weights gives no weight for {missing}.")
        return np.array([float(spec[lab]) for lab in labels])
    if spec != "inverse_frequency":
        raise ConfigError("class_weights must be 'inverse_frequency', 'none' or a mapping "
                          f"label -> weight, not {spec!r}.")
    counts = pd.Series(list(train_labels)).value_counts().reindex(labels, fill_value=0)
    if (counts == 0).any():
        raise InputDataError(f"The training data has no example of {list(counts.index[counts == 0])}; "
                             "every label needs training examples.")
    return (len(train_labels) / (len(labels) * counts)).to_numpy(dtype=float)


def _device_and_precision(precision: str) -> tuple[str, dict[str, bool]]:
    import torch

    cuda = torch.cuda.is_available()
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if precision in ("bf16", "fp16") and not cuda:
        precision = "fp32"
    return ("cuda" if cuda else "cpu"), {"bf16": precision == "bf16",
                                          "fp16": precision == "fp16"}


def train_encoder(train: pd.DataFrame, val: pd.DataFrame, labels: Sequence[str],
                  cfg: EncoderModel, out_dir: str | Path,
                  forbidden_ids: Sequence[str] = ()) -> dict[str, Any]:
    """Train, select the best epoch by validation macro-F1, save model + tokenizer + curves."""
    import torch
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    from textgauge.inference.aliases import describe, resolve

    leak = set(map(str, forbidden_ids)) & (set(train["id"]) | set(val["id"]))
    if leak:
        raise InputDataError(f"{len(leak)} gold test id(s) are in the training or validation "
                             f"data (e.g. {sorted(leak)[:5]}); the gold set must stay held out.")
    labels = list(labels)
    if cfg.max_train_items and len(train) > cfg.max_train_items:
        train = train.sample(cfg.max_train_items, random_state=cfg.seed).sort_values("id")
    set_seed(cfg.seed)
    out_dir = Path(out_dir)
    path = resolve(cfg.base_model)
    tok = AutoTokenizer.from_pretrained(path)
    label2id = {lab: i for i, lab in enumerate(labels)}
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id)
    device, prec = _device_and_precision(cfg.precision)

    def encode(df: pd.DataFrame) -> list[dict[str, Any]]:
        enc = tok(list(df["text"]), truncation=True, max_length=cfg.max_length)
        return [{"input_ids": enc["input_ids"][i], "attention_mask": enc["attention_mask"][i],
                 "labels": label2id[lab]} for i, lab in enumerate(df["label"])]

    train_ds, val_ds = encode(train), encode(val)
    weights = class_weight_vector(labels, list(train["label"]), cfg.class_weights)
    wt = None if weights is None else torch.tensor(weights, dtype=torch.float32)

    class WeightedTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):  # noqa: ANN001
            y = inputs.pop("labels")
            outputs = model(**inputs)
            w = None if wt is None else wt.to(outputs.logits.device)
            loss = torch.nn.functional.cross_entropy(outputs.logits.float(), y, weight=w)
            return (loss, outputs) if return_outputs else loss

    def metrics(p: Any) -> dict[str, float]:
        pred = np.argmax(p.predictions, axis=-1)
        return {"macro_f1": f1_score(p.label_ids, pred, average="macro",
                                     labels=list(range(len(labels))), zero_division=0),
                "accuracy": accuracy_score(p.label_ids, pred)}

    ckpt = out_dir / "checkpoints"
    args = TrainingArguments(
        output_dir=str(ckpt), num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.train_batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        warmup_steps=math.ceil(cfg.warmup_ratio * cfg.epochs * math.ceil(len(train_ds) / cfg.train_batch_size)),
        weight_decay=cfg.weight_decay,
        eval_strategy="epoch", save_strategy="epoch", logging_strategy="epoch",
        load_best_model_at_end=True, metric_for_best_model="macro_f1", greater_is_better=True,
        save_total_limit=2, seed=cfg.seed, data_seed=cfg.seed, report_to=[],
        train_sampling_strategy="group_by_length", use_cpu=device == "cpu", dataloader_num_workers=0,
        disable_tqdm=False, **prec,
    )
    trainer = WeightedTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
        processing_class=tok, data_collator=DataCollatorWithPadding(tok),
        compute_metrics=metrics,
        callbacks=[EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)],
    )
    result = trainer.train()
    history = _curves(trainer.state.log_history)
    # the final evaluations use other metric prefixes: without this the callback logs a
    # misleading "early stopping is disabled" warning for each
    trainer.remove_callback(EarlyStoppingCallback)
    # training accuracy of the selected model, for the memorisation warning
    train_eval = trainer.evaluate(train_ds, metric_key_prefix="train")
    val_eval = trainer.evaluate(val_ds, metric_key_prefix="val")
    gap = train_eval["train_accuracy"] - val_eval["val_accuracy"]
    warnings = []
    if gap > cfg.memorisation_gap:
        warnings.append(f"Training accuracy {train_eval['train_accuracy']:.3f} is {gap:.3f} above "
                        f"validation accuracy {val_eval['val_accuracy']:.3f}: the model may be "
                        "memorising noisy labels; consider fewer epochs, more data, or reviewing "
                        "the label-noise sheet.")
    model_dir = out_dir / "model"
    trainer.save_model(str(model_dir))
    tok.save_pretrained(str(model_dir))
    import shutil

    shutil.rmtree(ckpt, ignore_errors=True)
    epochs_run = max((h["epoch"] for h in history), default=0)
    summary = {
        "base_model": describe(cfg.base_model), "labels": labels, "label2id": label2id,
        "config": cfg.answer_settings(),
        "class_weights": None if weights is None else dict(zip(labels, weights.round(4).tolist(), strict=True)),
        "n_train": len(train_ds), "n_val": len(val_ds), "device": device, "precision": prec,
        "epochs_run": epochs_run, "stopped_early": epochs_run < cfg.epochs,
        "best_val_macro_f1": trainer.state.best_metric,
        "train_accuracy": train_eval["train_accuracy"], "val_accuracy": val_eval["val_accuracy"],
        "val_macro_f1": val_eval["val_macro_f1"], "train_runtime_s": result.metrics.get("train_runtime"),
        "history": history, "warnings": warnings,
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _curves(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-epoch train loss, validation loss and validation macro-F1 from the Trainer log."""
    names = {"loss": "train_loss", "eval_loss": "val_loss", "eval_macro_f1": "val_macro_f1",
             "eval_accuracy": "val_accuracy"}
    by_epoch: dict[float, dict[str, Any]] = {}
    for h in log_history:
        if "epoch" in h:
            row = by_epoch.setdefault(round(float(h["epoch"]), 3), {})
            row.update({new: h[old] for old, new in names.items() if old in h})
    return [{"epoch": e, **r} for e, r in sorted(by_epoch.items()) if r]


class EncoderPredictor:
    """Batched inference of a saved encoder: length-sorted batches with dynamic padding.

    On CPUs with native bf16 (AVX512-BF16/AMX), ``precision="auto"`` runs under bf16 autocast
    (about 3-4x faster) only after checking it against fp32 on a spread of up to 256 texts: if
    fewer than ``min_agreement`` of their labels agree, it stays in fp32. Low precision is never
    trusted for measurement unchecked; the check is recorded (``precision_check``).
    """

    def __init__(self, model_dir: str | Path, inference_batch_size: int = 64,
                 max_length: int = 128,
                 threads: int | None = None, precision: str = "auto",
                 min_agreement: float = 0.99):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.tok = AutoTokenizer.from_pretrained(str(model_dir))
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForSequenceClassification.from_pretrained(
            str(model_dir), dtype=dtype).to(self.device).eval()
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.inference_batch_size, self.max_length = inference_batch_size, max_length
        self.precision, self.min_agreement = precision, min_agreement
        self.precision_used = "bf16" if self.device == "cuda" else "fp32"
        self.precision_check: dict[str, Any] | None = None

    def _probs(self, texts: Sequence[str], autocast: bool) -> np.ndarray:
        import torch

        enc = self.tok(list(texts), truncation=True, padding=True, max_length=self.max_length,
                       return_tensors="pt").to(self.device)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = self.model(**enc).logits.float()
        return torch.softmax(logits, dim=-1).cpu().numpy()

    def _choose_precision(self, texts: Sequence[str], order: np.ndarray) -> bool:
        """True when bf16 autocast is requested or passes the fp32 check (CPU only)."""
        import torch

        if self.device != "cpu" or self.precision == "fp32":
            return False
        if self.precision == "bf16":
            self.precision_used = "bf16 autocast"
            return True
        supported = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        if not supported or len(texts) < 32:
            return False
        pick = order[np.linspace(0, len(order) - 1, min(256, len(order))).astype(int)]
        sample = [texts[i] for i in pick]
        with torch.inference_mode():
            ref = np.concatenate([self._probs(sample[i:i + 64], False)
                                  for i in range(0, len(sample), 64)])
            low = np.concatenate([self._probs(sample[i:i + 64], True)
                                  for i in range(0, len(sample), 64)])
        agreement = float((ref.argmax(1) == low.argmax(1)).mean())
        ok = agreement >= self.min_agreement
        self.precision_check = {"n": len(sample), "argmax_agreement_with_fp32": agreement,
                                "max_abs_prob_diff": float(np.abs(ref - low).max()),
                                "used_bf16": ok, "min_agreement": self.min_agreement}
        self.precision_used = "bf16 autocast (checked against fp32)" if ok else "fp32"
        return ok

    def predict(self, ids: Sequence[str], texts: Sequence[str]) -> pd.DataFrame:
        import torch
        from tqdm.auto import tqdm

        order = np.argsort([len(t) for t in texts], kind="stable")
        autocast = self._choose_precision(texts, order)
        probs = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        with torch.inference_mode():
            for s in tqdm(range(0, len(order), self.inference_batch_size),
                          desc="encoder inference",
                          unit="batch", disable=os.environ.get("TQDM_DISABLE") == "1"):
                idx = order[s:s + self.inference_batch_size]
                probs[idx] = self._probs([texts[i] for i in idx], autocast)
        best = probs.argmax(axis=1)
        df = pd.DataFrame({"id": list(ids), "label": [self.labels[i] for i in best],
                           "confidence": probs.max(axis=1)})
        for j, lab in enumerate(self.labels):
            df[f"prob_{lab}"] = probs[:, j]
        df["status"] = "ok"
        df["raw"] = df["label"]
        return df
