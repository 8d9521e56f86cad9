"""Fine-tune an encoder (any AutoModelForSequenceClassification) as a machine coder.

Choices that matter for measurement, not only for accuracy:
- the gold test set is never seen in training or model selection (the splits module removes
  it; :func:`train_encoder` checks again and refuses overlap);
- class imbalance is handled with inverse-frequency class weights in the loss (or weights
  given per label), or by oversampling the minority labels (``class_balance: oversample``,
  :mod:`textgauge.training.balance`), because an unweighted encoder on skewed data can
  collapse to the majority class and still look accurate;
- model selection is by validation macro-F1 with early stopping (patience in epochs);
- the confidence is calibrated by temperature scaling fitted on the validation split
  (:func:`textgauge.stats.temperature_scaling`; gold is never used): T and the validation
  NLL/ECE before and after go into training.json, and :class:`EncoderPredictor` applies T;
- texts longer than ``max_length`` tokens are truncated, and counted (training.json in
  training, a ``truncated`` column at inference): nothing is cut silently;
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


def truncated_flags(tok: Any, texts: Sequence[str], max_length: int) -> np.ndarray:
    """True for each text whose tokens (special tokens included) exceed ``max_length``:
    the texts the encoder sees only the start of."""
    if not len(texts):
        return np.zeros(0, dtype=bool)
    lengths = tok(list(texts), truncation=False, add_special_tokens=True,
                  return_attention_mask=False, return_token_type_ids=False,
                  verbose=False)["input_ids"]
    return np.array([len(ids) > max_length for ids in lengths], dtype=bool)


def calibrate(val_logits: np.ndarray, val_labels: np.ndarray, cfg: EncoderModel
              ) -> dict[str, Any]:
    """The calibration record of training.json: temperature scaling on the validation split
    (or T = 1 with the reason, when switched off or there is nothing to fit on)."""
    from textgauge.stats import temperature_scaling

    method = cfg.calibration.method
    if method == "none":
        return {"method": "none", "fit_on": None, "temperature": 1.0,
                "note": "calibration.method is none: the softmax as trained."}
    res = temperature_scaling(np.asarray(val_logits, dtype=float),
                              np.asarray(val_labels, dtype=int))
    out: dict[str, Any] = {"method": method, "fit_on": cfg.calibration.fit_on, **res,
                           "note": None}
    if not res["n"]:
        out["note"] = "The validation split is empty: no temperature fitted (T = 1)."
    elif res["at_bound"]:
        out["note"] = (f"T = {res['temperature']:.3g} lies at the end of the searched range: "
                       f"the {res['n']} validation texts may be too few or all classified "
                       "with a wide margin; check the calibration on gold in the report.")
    return out


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
    balance, labelled = None, train
    if cfg.class_balance == "oversample":
        from textgauge.training.balance import oversample

        train, balance = oversample(train, labels, cfg.seed, cfg.oversample_cap)
    set_seed(cfg.seed)
    out_dir = Path(out_dir)
    path = resolve(cfg.base_model)
    tok = AutoTokenizer.from_pretrained(path)
    label2id = {lab: i for i, lab in enumerate(labels)}
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id)
    device, prec = _device_and_precision(cfg.precision)

    # counted on the labelled texts (oversampled copies are not counted twice)
    truncated = {"train": int(truncated_flags(tok, list(labelled["text"]), cfg.max_length).sum()),
                 "val": int(truncated_flags(tok, list(val["text"]), cfg.max_length).sum())}

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
    # one pass over the validation split: its metrics and the logits temperature scaling needs
    val_out = trainer.predict(val_ds, metric_key_prefix="val")
    val_eval = val_out.metrics
    calibration = calibrate(np.asarray(val_out.predictions).reshape(len(val_ds), len(labels)),
                            np.asarray(val_out.label_ids).reshape(-1), cfg)
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
        "class_balance": balance or {"method": "none"},
        "calibration": calibration,
        "max_length": cfg.max_length,
        "n_truncated_train": truncated["train"], "n_truncated_val": truncated["val"],
        # labelled texts (before oversampling: class_balance says how many were fitted)
        "n_train": len(labelled), "n_val": len(val_ds), "device": device, "precision": prec,
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

    ``temperature`` (training.json's ``calibration.temperature``) divides the logits before
    the softmax: the probabilities and ``confidence`` are calibrated, ``confidence_raw`` keeps
    the softmax as trained, and the label (the arg-max) is the same either way. A boolean
    ``truncated`` column marks the texts longer than ``max_length`` tokens (``n_truncated``
    counts them).
    """

    def __init__(self, model_dir: str | Path, inference_batch_size: int = 64,
                 max_length: int = 128,
                 threads: int | None = None, precision: str = "auto",
                 min_agreement: float = 0.99, temperature: float = 1.0):
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
        if not float(temperature) > 0:
            raise InputDataError(f"The calibration temperature must be > 0, not {temperature!r}; "
                                 "rerun rule train_encoder.")
        self.temperature = float(temperature)
        self.n_truncated = 0

    def _logits(self, texts: Sequence[str], autocast: bool) -> np.ndarray:
        import torch

        enc = self.tok(list(texts), truncation=True, padding=True, max_length=self.max_length,
                       return_tensors="pt").to(self.device)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = self.model(**enc).logits.float()
        return logits.detach().cpu().numpy().astype(np.float64)

    def _probs(self, texts: Sequence[str], autocast: bool) -> np.ndarray:
        from textgauge.stats import softmax_with_temperature

        return softmax_with_temperature(self._logits(texts, autocast), 1.0)

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

        from textgauge.stats import softmax_with_temperature

        order = np.argsort([len(t) for t in texts], kind="stable")
        autocast = self._choose_precision(texts, order)
        logits = np.zeros((len(texts), len(self.labels)), dtype=np.float64)
        truncated = np.zeros(len(texts), dtype=bool)
        with torch.inference_mode():
            for s in tqdm(range(0, len(order), self.inference_batch_size),
                          desc="encoder inference",
                          unit="batch", disable=os.environ.get("TQDM_DISABLE") == "1"):
                idx = order[s:s + self.inference_batch_size]
                batch = [texts[i] for i in idx]
                logits[idx] = self._logits(batch, autocast)
                # batch by batch: the untruncated token ids of a whole shard never held at once
                truncated[idx] = truncated_flags(self.tok, batch, self.max_length)
        self.n_truncated = int(truncated.sum())
        raw = softmax_with_temperature(logits, 1.0)
        probs = softmax_with_temperature(logits, self.temperature) if self.temperature != 1.0 \
            else raw
        best = probs.argmax(axis=1)
        df = pd.DataFrame({"id": list(ids), "label": [self.labels[i] for i in best],
                           "confidence": probs.max(axis=1),
                           "confidence_raw": raw.max(axis=1)})
        for j, lab in enumerate(self.labels):
            df[f"prob_{lab}"] = probs[:, j]
        df["status"] = "ok"
        df["raw"] = df["label"]
        df["truncated"] = truncated
        return df
