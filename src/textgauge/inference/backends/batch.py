"""Provider batch APIs (about half the price, results within 24 h): submit -> poll -> collect.

* OpenAI (and vLLM's ``run_batch`` format): a JSONL file of ``/v1/chat/completions`` bodies is
  uploaded with ``files.create(purpose="batch")``, run by ``batches.create``, watched with
  ``batches.retrieve`` and read back with ``files.content(output_file_id)``;
* Anthropic Message Batches: ``messages.batches.create/retrieve/results``.

The batch ids are persisted in a small JSON state file right after each submission, so a
restarted run resumes polling instead of paying twice. The state file also records which ids
were sent (and a hash of each request body): a rerun with the same requests, or with a subset
of them (the ids not yet checkpointed), resumes; a rerun with other requests is refused.

Batch mode cannot re-ask: an answer outside the label set is recorded as ``invalid`` (rerun
those texts online). :class:`BatchBackend` wraps all this behind the ordinary
``PromptBackend.classify`` so :func:`~textgauge.inference.backends.runner.run_with_checkpoint` works
unchanged (config ``batch_api: true``).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from textgauge.errors import BackendError
from textgauge.inference.backends.asyncengine import Answer, Redactor
from textgauge.inference.backends.base import (
    STATUS_FAILED,
    STATUS_INVALID,
    STATUS_OK,
    Prediction,
    PromptBackend,
    PromptRequest,
    ResultCallback,
)
from textgauge.io import write_text_atomic
from textgauge.secrets import redact_url

STATE_VERSION = 1
OPENAI_TERMINAL = {"completed", "failed", "expired", "cancelled"}
DEFAULT_MAX_PER_BATCH = {"openai": 50_000, "anthropic": 100_000}


# ---------------------------------------------------------------------------- state

def _provider(backend: Any) -> str:
    name = getattr(backend, "name", "")
    if name not in DEFAULT_MAX_PER_BATCH:
        raise BackendError(f"Batch APIs exist for openai and anthropic backends, not {name!r}.")
    return name


def _body(backend: Any, req: PromptRequest) -> dict[str, Any]:
    if _provider(backend) == "openai":
        return backend.request_body(req)
    params = backend.request_params(req)
    params.update(getattr(backend, "extra_body", None) or {})
    return params


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
    return state


def save_state(state: dict[str, Any], state_path: str | Path) -> None:
    write_text_atomic(json.dumps(state, indent=1, ensure_ascii=False), state_path)


def _check_matches(state: dict[str, Any], backend: Any, bodies: dict[str, str],
                   state_path: str | Path) -> None:
    if state.get("provider") != _provider(backend) or state.get("model") != backend.model:
        raise BackendError(f"The batch state file {state_path} belongs to a "
                           f"{state.get('provider')}/{state.get('model')} run, not "
                           f"{_provider(backend)}/{backend.model}. Use another state path.")
    known = state.get("body_hashes", {})
    other = [i for i, h in bodies.items() if known.get(i) != h]
    if other:
        raise BackendError(f"The batch state file {state_path} records batches for other "
                           f"requests ({len(other)} ids differ, e.g. {other[0]!r}). Use another "
                           "state path, or delete it to submit anew.")


# ---------------------------------------------------------------------------- batch files

def openai_batch_line(custom_id: str, body: dict[str, Any]) -> str:
    """One line of an OpenAI batch input file (also read by vLLM's ``run_batch``)."""
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
                       "body": body}, ensure_ascii=False)


def openai_batch_input(backend: Any, requests: Sequence[PromptRequest]) -> str:
    """The JSONL batch input file for ``requests`` (bodies from ``backend.request_body``),
    e.g. for ``python -m vllm.entrypoints.openai.run_batch -i FILE -o OUT --model DIR``."""
    return "".join(openai_batch_line(r.id, _body(backend, r)) + "\n" for r in requests)


def parse_openai_batch_output(backend: Any, text: str, requests: Sequence[PromptRequest]
                              ) -> list[Prediction]:
    """One prediction per request from the text of an OpenAI (or vLLM ``run_batch``) batch
    output file, parsed as :func:`collect` does; ids without a line are ``failed``."""
    wanted = {r.id: r for r in requests}
    got: dict[str, Prediction] = {}
    for line in text.splitlines():
        if line.strip():
            p = _openai_line(backend, json.loads(line), wanted)
            if p.id in wanted and p.id not in got:
                got[p.id] = p
    return [got.get(r.id) or _failed(r.id, "no result line in the batch output")
            for r in requests]


# ---------------------------------------------------------------------------- submit

def submit(backend: Any, requests: Sequence[PromptRequest], state_path: str | Path,
           max_per_batch: int | None = None) -> dict[str, Any]:
    """Submit ``requests`` as one or more provider batches, unless the state file shows they
    were submitted already. Returns the state."""
    provider = _provider(backend)
    bodies = {r.id: _body(backend, r) for r in requests}
    hashes = {i: _digest(b) for i, b in bodies.items()}
    state = load_state(state_path)
    if state is not None:
        _check_matches(state, backend, hashes, state_path)
        if all(b.get("batch_id") for b in state["batches"]):
            return state  # resume: nothing is sent again
    else:
        state = {"version": STATE_VERSION, "provider": provider, "model": backend.model,
                 "base_url": redact_url(getattr(backend, "base_url", None)),
                 "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "ids": [r.id for r in requests], "body_hashes": hashes, "batches": []}
        size = max_per_batch or DEFAULT_MAX_PER_BATCH[provider]
        for start in range(0, len(requests), size):
            state["batches"].append({"start": start, "stop": min(start + size, len(requests)),
                                     "batch_id": None, "status": "unsubmitted"})
        save_state(state, state_path)
    client = backend.sync_client()
    try:
        for chunk in state["batches"]:
            if chunk.get("batch_id"):
                continue
            ids = state["ids"][chunk["start"]:chunk["stop"]]
            if any(i not in bodies for i in ids):
                raise BackendError(f"The batch state file {state_path} has an unsubmitted "
                                   "part whose requests were not all given: rerun with the "
                                   "full request set.")
            if provider == "openai":
                lines = [openai_batch_line(i, bodies[i]) for i in ids]
                data = ("\n".join(lines) + "\n").encode("utf-8")
                f = client.files.create(file=("textgauge-batch.jsonl", data), purpose="batch")
                chunk["input_file_id"] = f.id
                b = client.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions",
                                          completion_window="24h",
                                          metadata={"tool": "textgauge"})
            else:
                reqs = [{"custom_id": f"r{chunk['start'] + k}", "params": bodies[i]}
                        for k, i in enumerate(ids)]
                b = client.messages.batches.create(requests=reqs)
            chunk["batch_id"] = b.id
            chunk["status"] = getattr(b, "status", None) or getattr(b, "processing_status", "")
            chunk["submitted"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            save_state(state, state_path)  # persisted before anything else can go wrong
    finally:
        client.close()
    return state


# ---------------------------------------------------------------------------- poll

def _done(chunk: dict[str, Any], provider: str) -> bool:
    st = chunk.get("status")
    return st in OPENAI_TERMINAL if provider == "openai" else st == "ended"


def poll_once(backend: Any, state_path: str | Path) -> dict[str, Any]:
    """Refresh the status of every unfinished batch in the state file."""
    provider = _provider(backend)
    state = load_state(state_path)
    if state is None:
        raise BackendError(f"No batch state file at {state_path}: submit first.")
    client = backend.sync_client()
    try:
        for chunk in state["batches"]:
            if not chunk.get("batch_id") or _done(chunk, provider):
                continue
            if provider == "openai":
                b = client.batches.retrieve(chunk["batch_id"])
                chunk.update(status=b.status, output_file_id=b.output_file_id,
                             error_file_id=b.error_file_id,
                             request_counts=b.request_counts.model_dump()
                             if b.request_counts else None)
                if b.errors and b.errors.data:
                    chunk["errors"] = [f"{e.code}: {e.message}" for e in b.errors.data][:5]
            else:
                b = client.messages.batches.retrieve(chunk["batch_id"])
                chunk.update(status=b.processing_status,
                             request_counts=b.request_counts.model_dump())
        save_state(state, state_path)
    finally:
        client.close()
    return state


def is_finished(state: dict[str, Any]) -> bool:
    return all(_done(c, state["provider"]) for c in state["batches"])


def poll(backend: Any, state_path: str | Path, interval: float = 60.0,
         timeout: float | None = None, sleep: Callable[[float], None] = time.sleep
         ) -> dict[str, Any]:
    """Poll until every batch has ended (or ``timeout`` seconds passed); returns the state."""
    t0 = time.monotonic()
    while True:
        state = poll_once(backend, state_path)
        if is_finished(state):
            return state
        if timeout is not None and time.monotonic() - t0 >= timeout:
            return state
        sleep(interval)


# ---------------------------------------------------------------------------- collect

def _prediction(item_id: str, ans: Answer) -> Prediction:
    if ans.label is None:
        return Prediction(id=item_id, label=None, status=STATUS_INVALID, raw=ans.text,
                          usage=ans.usage, served=ans.served, error="answer outside the label set (batch mode "
                                                  "does not re-ask)")
    conf = ans.probs.get(ans.label) if ans.probs else None
    return Prediction(id=item_id, label=ans.label, confidence=conf, probs=ans.probs,
                      status=STATUS_OK, raw=ans.text, usage=ans.usage, served=ans.served)


def _failed(item_id: str, why: str) -> Prediction:
    return Prediction(id=item_id, label=None, status=STATUS_FAILED, error=why)


def collect(backend: Any, requests: Sequence[PromptRequest], state_path: str | Path,
            on_results: ResultCallback, report_every: int = 500) -> None:
    """Read the results of ended batches and report one prediction per request in
    ``requests`` (ids missing from the results are reported as ``failed``)."""
    provider = _provider(backend)
    state = load_state(state_path)
    if state is None:
        raise BackendError(f"No batch state file at {state_path}: submit first.")
    if not is_finished(state):
        raise BackendError("The batches in " f"{state_path} have not ended yet: poll again.")
    wanted = {r.id: r for r in requests}
    redact = Redactor([os.environ.get(getattr(backend, "api_key_env", "") or "")],
                      urls=[getattr(backend, "base_url", None)])
    out: list[Prediction] = []
    seen: set[str] = set()

    def emit(p: Prediction) -> None:
        if p.id not in wanted or p.id in seen:
            return
        p.raw = redact(p.raw) or ""
        p.error = redact(p.error)
        seen.add(p.id)
        out.append(p)
        if len(out) >= report_every:
            on_results(out[:])
            out.clear()

    client = backend.sync_client()
    try:
        for chunk in state["batches"]:
            ids = state["ids"][chunk["start"]:chunk["stop"]]
            if provider == "openai":
                for key in ("output_file_id", "error_file_id"):
                    if not chunk.get(key):
                        continue
                    text = client.files.content(chunk[key]).text
                    for line in text.splitlines():
                        if line.strip():
                            emit(_openai_line(backend, json.loads(line), wanted))
            else:
                for item in client.messages.batches.results(chunk["batch_id"]):
                    rec = item.model_dump()
                    idx = int(str(rec["custom_id"]).lstrip("r"))
                    emit(_anthropic_line(backend, state["ids"][idx], rec["result"], wanted))
            why = f"no result in batch {chunk['batch_id']} (status {chunk.get('status')}"
            why += f"; {'; '.join(chunk['errors'])})" if chunk.get("errors") else ")"
            for i in ids:
                if i in wanted and i not in seen:
                    emit(_failed(i, why))
    finally:
        client.close()
    if out:
        on_results(out)


def _openai_line(backend: Any, rec: dict[str, Any], wanted: dict[str, PromptRequest]
                 ) -> Prediction:
    item_id = str(rec.get("custom_id"))
    if item_id not in wanted:
        return _failed(item_id, "unknown id")
    resp = rec.get("response") or {}
    err = rec.get("error")
    if resp.get("status_code") == 200 and resp.get("body"):
        return _prediction(item_id, backend.parse(resp["body"], wanted[item_id].labels))
    body = resp.get("body") or {}
    msg = (err or {}).get("message") or (body.get("error") or {}).get("message") or "no body"
    return _failed(item_id, f"batch request failed (HTTP {resp.get('status_code')}): {msg}")


def _anthropic_line(backend: Any, item_id: str, result: dict[str, Any],
                    wanted: dict[str, PromptRequest]) -> Prediction:
    if item_id not in wanted:
        return _failed(item_id, "unknown id")
    typ = result.get("type")
    if typ == "succeeded":
        return _prediction(item_id, backend.parse(result["message"], wanted[item_id].labels))
    if typ == "errored":
        e = (result.get("error") or {}).get("error") or {}
        return _failed(item_id, f"batch request errored: {e.get('type')}: {e.get('message')}")
    return _failed(item_id, f"batch request {typ}")


# ---------------------------------------------------------------------------- wrapper

def run_batch(backend: Any, requests: Sequence[PromptRequest], state_path: str | Path,
              on_results: ResultCallback, interval: float = 60.0,
              timeout: float | None = None, max_per_batch: int | None = None) -> bool:
    """submit -> poll -> collect. Returns False (nothing collected) if ``timeout`` passed
    before the batches ended: call again later with the same state file to resume."""
    if not requests:
        return True
    submit(backend, requests, state_path, max_per_batch)
    state = poll(backend, state_path, interval, timeout)
    if not is_finished(state):
        return False
    collect(backend, requests, state_path, on_results)
    return True


class BatchBackend(PromptBackend):
    """An OpenAI/Anthropic backend run through the provider's batch API.

    Config: ``batch_state`` (state file path, required), ``batch_poll_interval`` (s, default
    60), ``batch_timeout`` (s, default none: wait until the batches end), ``batch_max_requests``.
    """

    def __init__(self, inner: Any, cfg: dict[str, Any]):
        _provider(inner)
        self.inner = inner
        self.name = f"{inner.name}-batch"
        self.external = inner.external
        self.model = inner.model
        state = cfg.get("batch_state")
        if not state:
            raise BackendError("batch_api needs `batch_state`: a path for the small JSON file "
                               "that remembers submitted batch ids.")
        self.state_path = Path(state)
        self.interval = float(cfg.get("batch_poll_interval", 60.0))
        self.timeout = cfg.get("batch_timeout")
        self.max_per_batch = cfg.get("batch_max_requests")

    def classify(self, requests: Sequence[PromptRequest], on_results: ResultCallback) -> None:
        done = run_batch(self.inner, requests, self.state_path, on_results, self.interval,
                         self.timeout, self.max_per_batch)
        if not done:
            raise BackendError(f"The batches in {self.state_path} have not ended within "
                               f"{self.timeout} s. Rerun later: polling resumes from the state "
                               "file without resubmitting.")

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "backend": self.name, "batch_state": str(
            self.state_path)}
