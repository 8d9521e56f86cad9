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
from typing import Any

import pandas as pd

from textgauge.errors import BackendError
from textgauge.inference.backends.base import STATUSES, Prediction, PromptBackend
from textgauge.options import PromptModel

PREDICTION_COLUMNS = ["id", "label", "confidence", "status", "raw", "error", "model",
                      "model_revision", "backend", "prompt_hash", "run_timestamp"]


def now_utc() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def make_backend(model: PromptModel, local_only: bool = False,
                 threads: int | None = None) -> PromptBackend:
    """Build the backend a ``kind: prompt`` model names. Imports are lazy (heavy engines)."""
    if model.backend == "transformers":
        from textgauge.inference.backends.transformers import TransformersBackend

        return TransformersBackend(model.model,
                                   # None: sized from measured throughput (#15)
                                   inference_batch_size=model.limits.inference_batch_size,
                                   dtype=model.dtype, max_length=model.max_length or 1024,
                                   threads=threads)
    try:
        from textgauge.inference.backends.registry import make_backend as make_other
    except ImportError as exc:  # pragma: no cover - depends on installed extras
        raise BackendError(f"Backend {model.backend!r} is not available here: {exc}") from exc
    return make_other(model.backend_config(), local_only=local_only)


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
        # the text was shortened to fit the model's context (records before #14.5: False)
        row["truncated"] = bool(d.get("truncated") or False)
        served = d.get("served") or {}
        row["served_model"] = served.get("model")
        row["system_fingerprint"] = served.get("system_fingerprint")
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
