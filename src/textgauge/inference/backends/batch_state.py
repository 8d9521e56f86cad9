"""The batch state of one predict job: which requests went out in which provider batch.

Kept apart from the submit/poll/collect logic (batch.py) because it is the promise that
nothing is paid twice: every request sent is recorded (its id and a hash of its exact body)
with the batch that carries it, written atomically right after each submission, so a rerun
sends only the requests no live batch carries.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from textgauge.errors import BackendError
from textgauge.io import write_text_atomic

STATE_VERSION = 2
#: batches that ended without running all their requests (nothing is charged for those)
OPENAI_DEAD = {"failed", "expired", "cancelled"}


def state_path_for(checkpoint: str | Path) -> Path:
    """The batch state of the job whose (fingerprinted) checkpoint is ``checkpoint``.

    One state per job (shard, label order, prompt variant), derived from its checkpoint and
    so from its output and answer settings. It is never a Snakemake output: a rerun of the
    submit rule (a newer input file, say) finds it and sends nothing twice.
    """
    return Path(checkpoint).with_suffix(".batch.json")


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, ensure_ascii=False)
                          .encode()).hexdigest()[:16]


def load_state(state_path: str | Path) -> dict[str, Any] | None:
    p = Path(state_path)
    if not p.exists():
        return None
    try:
        state = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise BackendError(f"The batch state file {p} is not valid JSON ({exc}). It holds the "
                           "ids of submitted batches: repair it, or delete it to resubmit "
                           "(and pay again).") from exc
    if state.get("version", 1) == 1:  # one hash per id -> one hash per sent request
        hashes = state.pop("body_hashes", {})
        state["hashes"] = [hashes.get(i) for i in state["ids"]]
        state["version"] = STATE_VERSION
    return state


def save_state(state: dict[str, Any], state_path: str | Path) -> None:
    write_text_atomic(json.dumps(state, indent=1, ensure_ascii=False), state_path)


def _trim_unsent(state: dict[str, Any]) -> None:
    """Forget the trailing parts never sent (a run stopped between saving and sending): their
    requests were not paid for and are sent again if still wanted."""
    while state["batches"] and not state["batches"][-1].get("batch_id"):
        state["batches"].pop()
    stop = state["batches"][-1]["stop"] if state["batches"] else 0
    del state["ids"][stop:]
    del state["hashes"][stop:]


def _assigned(state: dict[str, Any], live_only: bool = False) -> dict[tuple[str, str], int]:
    """(request id, body hash) -> index of the (latest) batch that carries that request.

    ``live_only`` leaves out OpenAI batches that failed, expired or were cancelled: a request
    of theirs that is asked again (its answer was recorded as failed) is sent in a new batch.
    """
    out: dict[tuple[str, str], int] = {}
    for k, chunk in enumerate(state["batches"]):
        if live_only and state["provider"] == "openai" and chunk.get("status") in OPENAI_DEAD:
            continue
        for j in range(chunk["start"], chunk["stop"]):
            out[(state["ids"][j], state["hashes"][j])] = k
    return out
