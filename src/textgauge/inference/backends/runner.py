"""Run a backend over requests with a resumable checkpoint and a failure bound."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from textgauge.errors import BackendError
from textgauge.inference.backends.base import (
    STATUS_FAILED,
    STATUS_INVALID,
    STATUSES,
    Prediction,
    PromptBackend,
    PromptRequest,
)
from textgauge.io import CheckpointWriter, read_checkpoint

COLUMNS = list(Prediction.__dataclass_fields__)


def _latest(path: str | Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for rec in read_checkpoint(path):
        out[str(rec["id"])] = rec  # the last record of an id wins
    return out


def summarize(df: pd.DataFrame, n_reasons: int = 3) -> str:
    """Counts per status and the first reasons of failed/invalid rows."""
    counts = Counter(df["status"]) if len(df) else Counter()
    parts = [f"{s}={counts.get(s, 0)}" for s in STATUSES]
    lines = [f"{len(df)} texts: " + ", ".join(parts)]
    for status in (STATUS_FAILED, STATUS_INVALID):
        bad = df[df["status"] == status]
        for _, row in bad.head(n_reasons).iterrows():
            why = row.get("error") or ""
            raw = row.get("raw") or ""
            extra = f" (answer: {raw[:80]!r})" if status == STATUS_INVALID and raw else ""
            lines.append(f"  {status} id={row['id']}: {why}{extra}")
    return "\n".join(lines)


def run_with_checkpoint(backend: PromptBackend, requests: Sequence[PromptRequest],
                        checkpoint_path: str | Path, fail_bound: float = 0.05,
                        retry_failed: bool = True) -> pd.DataFrame:
    """Classify ``requests``, appending every finished batch to ``checkpoint_path``.

    Ids already in the checkpoint are skipped (with ``retry_failed``, those whose last record
    is ``failed`` are run again). Returns one row per request id, in request order. Raises
    :class:`BackendError` with a summary when the share of failed + invalid rows exceeds
    ``fail_bound`` (the checkpoint is kept, so a rerun resumes).
    """
    ids = [r.id for r in requests]
    if len(set(ids)) != len(ids):
        dup = [i for i, c in Counter(ids).items() if c > 1][:5]
        raise BackendError(f"Request ids must be unique; repeated: {', '.join(dup)}.")
    latest = _latest(checkpoint_path)
    todo = [r for r in requests if r.id not in latest
            or (retry_failed and latest[r.id].get("status") == STATUS_FAILED)]
    if todo:
        with CheckpointWriter(checkpoint_path) as writer:
            backend.classify(todo, lambda preds: writer.write(p.to_dict() for p in preds))
        latest = _latest(checkpoint_path)
    missing = [i for i in ids if i not in latest]
    if missing:
        raise BackendError(f"The {backend.name} backend returned no result for {len(missing)} "
                           f"of {len(ids)} texts (first: {', '.join(missing[:5])}); rerun to "
                           "resume from the checkpoint.")
    df = pd.DataFrame([{c: latest[i].get(c) for c in COLUMNS} for i in ids], columns=COLUMNS)
    n_bad = int(df["status"].isin([STATUS_FAILED, STATUS_INVALID]).sum())
    if len(df) and n_bad / len(df) > fail_bound:
        raise BackendError(
            f"{n_bad} of {len(df)} texts ({n_bad / len(df):.1%}) were not classified by the "
            f"{backend.name} backend, more than the allowed {fail_bound:.1%}.\n"
            + summarize(df) + f"\nThe checkpoint {checkpoint_path} keeps what was done; fix the "
            "cause and rerun (failed texts are retried), or raise fail_bound.")
    return df
