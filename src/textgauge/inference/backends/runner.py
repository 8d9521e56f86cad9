"""Run a backend over requests with a resumable checkpoint and a failure bound.

An answer is reused only for the same question. Every checkpoint record carries the hash of
the exact request that produced it (:func:`request_hash`: the messages as sent, so the text,
the rendered prompt and the label order shown; the labels in that order; and a ``context``
the caller adds: the prompt hash and the settings that shape answers) and the label order
shown. On a rerun a record is reused only when its hash matches the request made now: a text
edited under the same id, or a new seed that rotates the labels differently, is asked again.
Resumed records are re-validated (a known status; an ``ok`` label inside the label set), and
lines that are not records are counted and reported, never silently skipped.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.errors import BackendError, format_rows
from textgauge.inference.backends.base import (
    STATUS_FAILED,
    STATUS_INVALID,
    STATUS_OK,
    STATUSES,
    Prediction,
    PromptBackend,
    PromptRequest,
)
from textgauge.io import CheckpointScan, CheckpointWriter, scan_checkpoint, stable_hash

log = logging.getLogger("textgauge")

COLUMNS = list(Prediction.__dataclass_fields__)
#: what a checkpoint record adds to a prediction
RECORD_COLUMNS = ["request_hash", "label_order"]


def request_hash(request: PromptRequest, context: Mapping[str, Any] | None = None) -> str:
    """The hash of exactly what is asked: messages as sent, labels as shown, and ``context``
    (prompt hash, answer settings)."""
    return stable_hash({"messages": request.messages, "labels": list(request.labels),
                        "context": dict(context or {})})


def checkpoint_record(pred: Prediction, request: PromptRequest, req_hash: str) -> dict[str, Any]:
    """A prediction as a checkpoint record: with its request hash and the label order shown."""
    return {**pred.to_dict(), "request_hash": req_hash, "label_order": "|".join(request.labels)}


def latest_records(path: str | Path) -> dict[str, dict]:
    """The last record of each id (whatever request it answered)."""
    out: dict[str, dict] = {}
    for rec in scan_checkpoint(path).records:
        out[str(rec["id"])] = rec
    return out


def _usable(rec: Mapping[str, Any], request: PromptRequest) -> bool:
    """A resumed record is an answer of the label set (or an honest invalid/failed)."""
    status = rec.get("status")
    if status not in STATUSES:
        return False
    return status != STATUS_OK or rec.get("label") in set(request.labels)


def corrupt_lines_message(path: str | Path, scan: CheckpointScan, limit: int = 10) -> str:
    """One paragraph on a checkpoint's unusable lines: the file, each line number with why
    (not JSON, not a JSON object, no id), and what to do."""
    shown = format_rows([f"line {n} ({why})" for n, why in scan.corrupt], limit)
    return (f"checkpoint {path}: {len(scan.corrupt)} line(s) are not usable records: {shown}. "
            "Those texts were asked again if needed, and the other lines were reused. A run "
            "killed while writing leaves one such line at the end; lines in the middle point "
            "to a file edited or damaged by hand: check that nothing but textgauge writes to "
            "it, or delete it to ask every text again.")


def unreadable_checkpoint_message(path: str | Path, scan: CheckpointScan) -> str:
    """One paragraph for a checkpoint with no readable record at all (nothing is asked)."""
    reasons = ", ".join(f"{k} {v}" for k, v in Counter(w for _, w in scan.corrupt).items())
    first = format_rows([str(n) for n, _ in scan.corrupt], 5)
    return (f"The checkpoint {path} has no readable record: none of its {len(scan.corrupt)} "
            f"line(s) is a JSON object with an id ({reasons}; lines {first}). It is not a "
            "textgauge checkpoint or it is damaged. Nothing was asked, so no answer is added "
            "to it: move it away or delete it and run again (every text is then asked anew).")


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
                        retry_failed: bool = True,
                        context: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Classify ``requests``, appending every finished answer to ``checkpoint_path``.

    A request whose exact question (:func:`request_hash` with ``context``) already has a
    usable record is not asked again (with ``retry_failed``, one whose record is ``failed``
    is). Returns one row per request id, in request order, with the checkpoint columns
    ``request_hash`` and ``label_order``; ``attrs["checkpoint"]`` counts what was reused,
    asked, stale, not valid and corrupt. Raises :class:`BackendError` with a summary when the
    share of failed + invalid rows exceeds ``fail_bound`` (the checkpoint is kept, so a rerun
    resumes).
    """
    ids = [r.id for r in requests]
    if len(set(ids)) != len(ids):
        dup = [i for i, c in Counter(ids).items() if c > 1][:5]
        raise BackendError(f"Request ids must be unique; repeated: {', '.join(dup)}.")
    by_id = {r.id: r for r in requests}
    hashes = {r.id: request_hash(r, context) for r in requests}
    scan = scan_checkpoint(checkpoint_path)
    if scan.corrupt and not scan.records:
        raise BackendError(unreadable_checkpoint_message(checkpoint_path, scan))
    reusable: dict[str, dict] = {}
    other_request: set[str] = set()
    not_valid: set[str] = set()
    for rec in scan.records:
        i = str(rec["id"])
        if i not in by_id:
            continue
        if rec.get("request_hash") != hashes[i]:
            other_request.add(i)
        elif _usable(rec, by_id[i]):
            reusable[i] = rec
        else:
            not_valid.add(i)
    todo = [r for r in requests if r.id not in reusable
            or (retry_failed and reusable[r.id].get("status") == STATUS_FAILED)]
    fresh: dict[str, dict] = {}

    def record(preds: Sequence[Prediction]) -> None:
        recs = []
        for p in preds:
            req = by_id.get(str(p.id))
            if req is None:
                continue
            rec = checkpoint_record(p, req, hashes[req.id])
            fresh[req.id] = rec
            recs.append(rec)
        writer.write(recs)

    if todo:
        with CheckpointWriter(checkpoint_path) as writer:
            backend.classify(todo, record)
    results = {**reusable, **fresh}
    missing = [i for i in ids if i not in results]
    if missing:
        raise BackendError(f"The {backend.name} backend returned no result for {len(missing)} "
                           f"of {len(ids)} texts (first: {', '.join(missing[:5])}); rerun to "
                           "resume from the checkpoint.")
    cols = COLUMNS + RECORD_COLUMNS
    df = pd.DataFrame([{c: results[i].get(c) for c in cols} for i in ids], columns=cols)
    # answers taken from the checkpoint, not asked now: the spend summary counts them apart
    df["reused"] = [i not in fresh for i in ids]
    stats = {
        "path": str(checkpoint_path), "requests": len(ids),
        "reused": len(ids) - len(todo), "asked": len(todo),
        "asked_again_changed_request": len(other_request - set(reusable)),
        "asked_again_not_valid": len(not_valid - set(reusable)),
        "retried_failed": sum(1 for r in todo if r.id in reusable),
        "corrupt_lines": len(scan.corrupt),
        "corrupt_line_numbers": [n for n, _ in scan.corrupt[:20]],
        "corrupt_reasons": dict(Counter(why for _, why in scan.corrupt)),
        "torn_last_line": scan.torn_last_line,
    }
    df.attrs["checkpoint"] = stats
    if scan.corrupt:
        log.warning("%s", corrupt_lines_message(checkpoint_path, scan))
    if stats["asked_again_not_valid"]:
        log.warning("checkpoint %s: %d stored answer(s) are not valid for the codebook (label "
                    "outside it, or an unknown status) and were asked again (ids %s). This "
                    "happens when the codebook's labels changed since the run; nothing to do "
                    "unless you did not change them.", checkpoint_path,
                    stats["asked_again_not_valid"],
                    format_rows(sorted(not_valid - set(reusable)), 10))
    log.info("checkpoint %s: %d of %d answers reused, %d asked (%d because the request "
             "changed: text, prompt, label order or settings)", checkpoint_path,
             stats["reused"], len(ids), len(todo), stats["asked_again_changed_request"])
    n_bad = int(df["status"].isin([STATUS_FAILED, STATUS_INVALID]).sum())
    if len(df) and n_bad / len(df) > fail_bound:
        raise BackendError(
            f"{n_bad} of {len(df)} texts ({n_bad / len(df):.1%}) were not classified by the "
            f"{backend.name} backend, more than the allowed {fail_bound:.1%}.\n"
            + summarize(df) + f"\nThe checkpoint {checkpoint_path} keeps what was done; fix the "
            "cause and rerun (failed texts are retried), or raise fail_bound.")
    return df
