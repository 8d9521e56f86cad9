"""Run a machine coder over texts and write the predictions contract.

Every coder, whatever its backend, produces the same table: id, label, confidence, one
``prob_<label>`` column per label where the backend gives probabilities, status
(ok/invalid/failed), raw response, error, model id and revision, backend, prompt hash and run
timestamp. Prompted coders checkpoint each finished batch (append-only JSONL), so a killed run
resumes where it stopped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.backends.base import STATUSES, Prediction, PromptBackend
from textgauge.checkpoint import CheckpointWriter, read_checkpoint, write_parquet_atomic
from textgauge.errors import BackendError, ConfigError
from textgauge.prompting import PromptTemplate

PREDICTION_COLUMNS = ["id", "label", "confidence", "status", "raw", "error", "model",
                      "model_revision", "backend", "prompt_hash", "run_timestamp"]


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def make_backend(model_cfg: Mapping[str, Any], local_only: bool = False,
                 threads: int | None = None) -> PromptBackend:
    """Build the backend a ``kind: prompt`` model names. Imports are lazy (heavy engines)."""
    backend = model_cfg.get("backend", "transformers")
    if backend == "transformers":
        from textgauge.backends.transformers_backend import TransformersBackend

        return TransformersBackend(model_cfg["model"], batch_size=model_cfg.get("batch_size", 8),
                                   dtype=model_cfg.get("dtype", "auto"),
                                   max_length=model_cfg.get("max_length", 1024), threads=threads)
    try:
        from textgauge.backends.registry import make_backend as make_other
    except ImportError as exc:  # pragma: no cover - depends on installed extras
        raise BackendError(f"Backend {backend!r} is not available here: {exc}") from exc
    return make_other(dict(model_cfg), local_only=local_only)


def build_template(model_cfg: Mapping[str, Any], codebook: Mapping[str, str],
                   instructions: str = "",
                   examples: Sequence[tuple[str, str]] = ()) -> PromptTemplate:
    if "prompt" not in model_cfg:
        raise ConfigError("A `kind: prompt` model needs a `prompt:` template path.")
    return PromptTemplate.from_file(model_cfg["prompt"], codebook, instructions, examples)


def predictions_frame(preds: Sequence[Prediction | Mapping[str, Any]], labels: Sequence[str],
                      meta: Mapping[str, Any]) -> pd.DataFrame:
    """Records -> the predictions contract (one row per id; the last record of an id wins)."""
    rows = []
    for p in preds:
        d = p.to_dict() if isinstance(p, Prediction) else dict(p)
        row = {k: d.get(k) for k in ("id", "label", "confidence", "status", "raw", "error")}
        probs = d.get("probs") or {}
        for lab in labels:
            row[f"prob_{lab}"] = probs.get(lab) if probs else None
        usage = d.get("usage") or {}
        for k, v in usage.items():
            row[f"usage_{k}"] = v
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["id", "label", "confidence", "status", "raw", "error"])
    df = df.drop_duplicates("id", keep="last")
    for k in ("model", "model_revision", "backend", "prompt_hash", "run_timestamp"):
        df[k] = meta.get(k)
    bad = set(df["status"].dropna()) - set(STATUSES)
    if bad:
        raise BackendError(f"Unknown prediction status(es) {bad}.")
    lead = [c for c in PREDICTION_COLUMNS if c in df.columns]
    return df[lead + [c for c in df.columns if c not in lead]].sort_values("id").reset_index(drop=True)


def run_prompt_coder(backend: PromptBackend, template: PromptTemplate,
                     items: pd.DataFrame, checkpoint: str | Path, labels: Sequence[str],
                     meta: Mapping[str, Any], label_order: str = "fixed", seed: int = 0,
                     max_fail_share: float = 0.05) -> pd.DataFrame:
    """Classify ``items`` (id, text) resumably; fail clearly if too many items fail."""
    done = {str(r["id"]) for r in read_checkpoint(checkpoint)}
    todo = items.loc[~items["id"].astype(str).isin(done)]
    requests = template.requests(list(zip(todo["id"].astype(str), todo["text"], strict=True)),
                                 order=label_order, seed=seed)
    with CheckpointWriter(checkpoint) as ck:
        backend.classify(requests, lambda preds: ck.write(p.to_dict() for p in preds))
    records = [r for r in read_checkpoint(checkpoint) if str(r["id"]) in set(items["id"].astype(str))]
    df = predictions_frame(records, labels, meta)
    check_failures(df, max_fail_share, meta.get("model", "model"))
    return df


def check_failures(df: pd.DataFrame, max_fail_share: float, model: str) -> None:
    counts = df["status"].value_counts().to_dict()
    bad = df.loc[df["status"] != "ok"]
    if len(df) and len(bad) / len(df) > max_fail_share:
        reasons = bad["error"].fillna(bad["raw"]).astype(str).value_counts().head(3).to_dict()
        raise BackendError(
            f"{model}: {len(bad)} of {len(df)} texts were not classified ({counts}); this exceeds "
            f"the allowed share {max_fail_share:.0%} (models.<name>.max_fail_share). Most common "
            f"reasons: {reasons}. The checkpoint keeps every answered text; fix the cause and "
            "rerun to resume.")


def write_predictions(df: pd.DataFrame, path: str | Path) -> None:
    write_parquet_atomic(df, path)
