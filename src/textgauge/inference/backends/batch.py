"""Provider batch APIs (about half the price, results within 24 h): submit -> poll -> collect.

* OpenAI (and vLLM's ``run_batch`` format): a JSONL file of ``/v1/chat/completions`` bodies is
  uploaded with ``files.create(purpose="batch")``, run by ``batches.create``, watched with
  ``batches.retrieve`` and read back with ``files.content(output_file_id)``;
* Anthropic Message Batches: ``messages.batches.create/retrieve/results``.

The batch ids are persisted in a small JSON state file right after each submission, so a
restarted run resumes polling instead of paying twice. The state file records every request
sent (its id and a hash of its exact body) and the batch that carries it: a rerun sends only
the requests no submitted batch carries (a text edited since, say), never one again. The one
exception: an OpenAI batch that failed, expired or was cancelled did not run the requests it
has no answer for (and charges nothing for them); those come back ``failed``, and when the
caller asks them again they go out in a new batch.

In the workflow every predict job (each shard, label order and prompt variant) has its own
state, beside its fingerprinted checkpoint (:func:`state_path_for`), and runs in two steps
(workflow/rules/infer.smk): rule submit_batch sends the job's unanswered requests and exits
(:class:`BatchSubmitted`); the predict rule polls for at most ``batch_wait`` seconds, collects
the batches that ended into the checkpoint, and either writes the predictions or stops with
:class:`BatchNotReady` ("not ready yet, run again later"), so no job blocks for hours.

Batch mode cannot re-ask: an answer outside the label set is recorded as ``invalid`` (rerun
those texts online). :class:`BatchBackend` wraps all this behind the ordinary
``PromptBackend.classify`` so :func:`~textgauge.inference.backends.runner.run_with_checkpoint` works
unchanged (config ``batch_api: true``): the predictions come out exactly as online ones, each
marked ``served["via"] = "batch"`` in its checkpoint record.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from textgauge.errors import BackendError, ConfigError
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
from textgauge.inference.backends.batch_state import (
    STATE_VERSION,
    _assigned,
    _digest,
    _trim_unsent,
    load_state,
    save_state,
    state_path_for,
)
from textgauge.options import PromptLimits
from textgauge.secrets import redact_url

OPENAI_TERMINAL = {"completed", "failed", "expired", "cancelled"}
DEFAULT_MAX_PER_BATCH = {"openai": 50_000, "anthropic": 100_000}
#: options of the one-state-per-model design, refused with what to do instead
REMOVED = PromptLimits.REMOVED


class BatchSubmitted(Exception):  # noqa: N818 - an outcome, not an error
    """A submit-only :class:`BatchBackend` has put the job's requests into provider batches.

    Not an error: rule submit_batch catches it and writes its receipt (``summary``).
    """

    def __init__(self, summary: dict[str, Any]):
        super().__init__("submitted")
        self.summary = summary


class BatchNotReady(BackendError):
    """Some batches of the job have not ended yet: run again later (nothing is resubmitted)."""

    def __init__(self, message: str, summary: dict[str, Any]):
        super().__init__(message)
        self.summary = summary


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


def _check_matches(state: dict[str, Any], backend: Any, state_path: str | Path) -> None:
    if state.get("provider") != _provider(backend) or state.get("model") != backend.model:
        raise BackendError(f"The batch state file {state_path} belongs to a "
                           f"{state.get('provider')}/{state.get('model')} run, not "
                           f"{_provider(backend)}/{backend.model}. Use another state path.")


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
    """Submit the ``requests`` that no batch in the state file carries yet (same id, same
    exact body) as one or more provider batches; the others are never sent again (except
    from an OpenAI batch that failed, expired or was cancelled: the caller asks again only
    the requests it recorded no answer for). Returns the state, with ``submitted_now``
    (requests this call sent)."""
    provider = _provider(backend)
    bodies = {r.id: _body(backend, r) for r in requests}
    hashes = {i: _digest(b) for i, b in bodies.items()}
    state = load_state(state_path)
    if state is None:
        state = {"version": STATE_VERSION, "provider": provider, "model": backend.model,
                 "base_url": redact_url(getattr(backend, "base_url", None)),
                 "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                 "ids": [], "hashes": [], "batches": []}
    else:
        _check_matches(state, backend, state_path)
        _trim_unsent(state)
    assigned = _assigned(state, live_only=True)
    new = [r.id for r in requests if (r.id, hashes[r.id]) not in assigned]
    state["submitted_now"] = len(new)
    if not new:
        return state  # resume: nothing is sent again
    size = max_per_batch or DEFAULT_MAX_PER_BATCH[provider]
    base = len(state["ids"])
    state["ids"] += new
    state["hashes"] += [hashes[i] for i in new]
    for start in range(base, base + len(new), size):
        state["batches"].append({"start": start, "stop": min(start + size, base + len(new)),
                                 "batch_id": None, "status": "unsubmitted"})
    save_state(state, state_path)
    client = backend.sync_client()
    try:
        for chunk in state["batches"]:
            if chunk.get("batch_id"):
                continue
            ids = state["ids"][chunk["start"]:chunk["stop"]]
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
            on_results: ResultCallback, report_every: int = 500,
            finished_only: bool = False) -> list[str]:
    """Read the results of ended batches and report one prediction per request in
    ``requests`` (ids missing from the results are reported as ``failed``).

    Each request is read from the batch that carries its exact body. With ``finished_only``
    the requests whose batch has not ended are skipped and their ids returned; without it such
    a state is an error.
    """
    provider = _provider(backend)
    state = load_state(state_path)
    if state is None:
        raise BackendError(f"No batch state file at {state_path}: submit first.")
    assigned = _assigned(state)
    by_chunk: dict[int, dict[str, PromptRequest]] = {}
    unsent: list[str] = []
    for r in requests:
        k = assigned.get((r.id, _digest(_body(backend, r))))
        if k is None:
            unsent.append(r.id)
        else:
            by_chunk.setdefault(k, {})[r.id] = r
    if unsent:
        raise BackendError(f"{len(unsent)} request(s) are in no batch of {state_path} (first: "
                           f"{', '.join(unsent[:5])}): submit them first.")
    pending = [i for k, reqs in by_chunk.items() if not _done(state["batches"][k], provider)
               for i in reqs]
    if pending and not finished_only:
        raise BackendError("The batches in " f"{state_path} have not ended yet: poll again.")
    redact = Redactor([os.environ.get(getattr(backend, "api_key_env", "") or "")],
                      urls=[getattr(backend, "base_url", None)])
    out: list[Prediction] = []
    seen: set[str] = set()

    asked = {r.id for r in requests}

    def emit(p: Prediction) -> None:
        if p.id not in asked or p.id in seen:
            return
        p.raw = redact(p.raw) or ""
        p.error = redact(p.error)
        p.served = {**(p.served or {}), "via": "batch"}
        seen.add(p.id)
        out.append(p)
        if len(out) >= report_every:
            on_results(out[:])
            out.clear()

    client = backend.sync_client() if any(
        _done(state["batches"][k], provider) for k in by_chunk) else None
    try:
        for k, wanted in by_chunk.items():
            chunk = state["batches"][k]
            if not _done(chunk, provider):
                continue
            if provider == "openai":
                for key in ("output_file_id", "error_file_id"):
                    if not chunk.get(key):
                        continue
                    text = client.files.content(chunk[key]).text
                    for line in text.splitlines():
                        if line.strip():
                            rec = json.loads(line)
                            if str(rec.get("custom_id")) in wanted:
                                emit(_openai_line(backend, rec, wanted))
            else:
                for item in client.messages.batches.results(chunk["batch_id"]):
                    rec = item.model_dump()
                    idx = int(str(rec["custom_id"]).lstrip("r"))
                    if chunk["start"] <= idx < chunk["stop"] and state["ids"][idx] in wanted:
                        emit(_anthropic_line(backend, state["ids"][idx], rec["result"], wanted))
            why = f"no result in batch {chunk['batch_id']} (status {chunk.get('status')}"
            why += f"; {'; '.join(chunk['errors'])})" if chunk.get("errors") else ")"
            for i in wanted:
                if i not in seen:
                    emit(_failed(i, why))
    finally:
        if client is not None:
            client.close()
    if out:
        on_results(out)
    return pending


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


def job_summary(state: dict[str, Any], state_path: str | Path,
                requests: Sequence[PromptRequest] = ()) -> dict[str, Any]:
    """What a job's batches are doing, for the submit receipt and the not-ready message."""
    ids = {r.id for r in requests}
    batches = []
    for chunk in state["batches"]:
        n_job = sum(1 for i in state["ids"][chunk["start"]:chunk["stop"]] if i in ids)
        batches.append({k: chunk.get(k) for k in ("batch_id", "status", "submitted",
                                                   "request_counts")}
                       | {"requests": chunk["stop"] - chunk["start"], "of_this_job": n_job})
    return {"state": str(state_path), "provider": state["provider"], "model": state["model"],
            "requests": len(requests), "submitted_now": state.get("submitted_now", 0),
            "batches": batches}


def _progress(counts: dict[str, Any] | None) -> str:
    """' (3/10 done)' from OpenAI (total/completed/failed) or Anthropic (processing/...)."""
    if not counts:
        return ""
    if "total" in counts:
        done, total = (counts.get("completed") or 0) + (counts.get("failed") or 0), counts["total"]
    else:
        total = sum(v or 0 for v in counts.values())
        done = total - (counts.get("processing") or 0)
    return f" ({done}/{total} done)"


def not_ready_message(summary: dict[str, Any], n_pending: int, n_collected: int,
                      waited: float) -> str:
    """One paragraph: which batches are still running, that nothing is lost, what to do."""
    running = [b for b in summary["batches"] if b["of_this_job"] and b["status"] not in
               OPENAI_TERMINAL | {"ended"}]
    shown = "; ".join(f"{b['batch_id']} {b['status']}{_progress(b.get('request_counts'))}"
                      for b in running[:5])
    got = (f" The {n_collected} answer(s) of the batches that did end are saved in the "
           "checkpoint." if n_collected else "")
    return (f"Not ready yet, run again later: {n_pending} of {summary['requests']} request(s) "
            f"of this job are in {summary['provider']} batches that have not ended "
            f"(waited {waited:.0f} s; {shown}).{got} Nothing is lost and nothing will be "
            f"sent again: the batch ids are kept in {summary['state']}. Run snakemake again "
            "later (providers finish a batch within 24 hours, often within minutes); the "
            "rerun collects the results. Add --keep-going so the other jobs go on meanwhile, "
            "or raise limits.batch_wait to let this job wait longer.")


class BatchBackend(PromptBackend):
    """An OpenAI/Anthropic backend run through the provider's batch API.

    Config (a model's ``limits``): ``batch_poll_interval`` (s between polls, default 60),
    ``batch_wait`` (s a collecting job may wait for its batches, default 0: look once),
    ``batch_max_requests`` (most requests per batch). The state file is the job's:
    :meth:`bind_state` derives it from the job's checkpoint. With ``submit_only`` (rule
    submit_batch) :meth:`classify` submits and raises :class:`BatchSubmitted`; otherwise it
    submits what no batch carries yet, waits at most ``batch_wait`` seconds, reports the
    answers of the ended batches and raises :class:`BatchNotReady` if some have not ended.
    """

    def __init__(self, inner: Any, cfg: dict[str, Any]):
        _provider(inner)
        for key, why in REMOVED.items():
            if cfg.get(key) is not None:
                raise ConfigError(f"limits.{key} {why}")
        self.inner = inner
        self.name = f"{inner.name}-batch"
        self.external = inner.external
        self.model = inner.model
        self.state_path: Path | None = None
        self.interval = float(cfg.get("batch_poll_interval") or 60.0)
        self.wait = float(cfg.get("batch_wait") or 0.0)
        self.max_per_batch = cfg.get("batch_max_requests")
        self.submit_only = False
        self.sleep: Callable[[float], None] = time.sleep

    def bind_state(self, checkpoint: str | Path) -> None:
        """Use the state of the job whose checkpoint is ``checkpoint`` (one per job)."""
        self.state_path = state_path_for(checkpoint)

    def classify(self, requests: Sequence[PromptRequest], on_results: ResultCallback) -> None:
        if self.state_path is None:
            raise BackendError("The batch backend has no state file: call bind_state with the "
                               "job's checkpoint (textgauge.steps.infer does).")
        state = submit(self.inner, requests, self.state_path, self.max_per_batch)
        if self.submit_only:
            raise BatchSubmitted(job_summary(state, self.state_path, requests))
        t0 = time.monotonic()
        while True:
            state = poll_once(self.inner, self.state_path)
            left = self.wait - (time.monotonic() - t0)
            if is_finished(state) or left <= 0:
                break
            self.sleep(min(self.interval, left))
        n_got = 0

        def count(preds: Sequence[Prediction]) -> None:
            nonlocal n_got
            n_got += len(preds)
            on_results(preds)

        pending = collect(self.inner, requests, self.state_path, count, finished_only=True)
        if pending:
            summary = job_summary(state, self.state_path, requests)
            raise BatchNotReady(not_ready_message(summary, len(pending), n_got,
                                                  time.monotonic() - t0), summary)

    def describe(self) -> dict[str, Any]:
        return {**self.inner.describe(), "backend": self.name}
