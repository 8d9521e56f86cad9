"""Provider batch APIs against local fake servers speaking the OpenAI / Anthropic protocols."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("openai")
pytest.importorskip("anthropic")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response  # noqa: E402

from textgauge.errors import BackendError  # noqa: E402
from textgauge.inference.backends import batch  # noqa: E402
from textgauge.inference.backends.base import PromptRequest  # noqa: E402
from textgauge.inference.backends.registry import make_backend  # noqa: E402
from textgauge.inference.backends.runner import run_with_checkpoint  # noqa: E402

LABELS = ["immigration", "not_immigration"]
SECRET = "sk-batch-SECRET-abcdef0123456789"


def make_requests(n: int) -> list[PromptRequest]:
    # ids that Anthropic would not accept as custom_id (spaces, slashes, long)
    return [PromptRequest(f"doc {i}/para-{i}", [
        {"role": "system", "content": "Code the sentence."},
        {"role": "user", "content": f"Sentence {i}"}], LABELS) for i in range(n)]


def jresp(obj, status=200):
    return Response(json.dumps(obj), status=status, content_type="application/json")


class FakeOpenAI:
    """Files + Batches endpoints; the batch 'runs' on the second retrieve."""

    def __init__(self, polls_until_done: int = 2):
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.posts = {"files": 0, "batches": 0}
        self.retrieves = 0
        self.polls_until_done = polls_until_done

    def batch_obj(self, bid: str) -> dict:
        b = self.batches[bid]
        return {"id": bid, "object": "batch", "endpoint": "/v1/chat/completions",
                "errors": None, "input_file_id": b["input"], "completion_window": "24h",
                "status": b["status"], "output_file_id": b.get("output"),
                "error_file_id": b.get("error"), "created_at": 1732000000,
                "in_progress_at": None, "expires_at": 1732086400, "finalizing_at": None,
                "completed_at": None, "failed_at": None, "expired_at": None,
                "cancelling_at": None, "cancelled_at": None,
                "request_counts": {"total": b["n"], "completed": b.get("done", 0),
                                   "failed": b.get("failed", 0)},
                "metadata": b["metadata"]}

    def handler(self, req: Request) -> Response:
        path = req.path
        if path == "/v1/files" and req.method == "POST":
            self.posts["files"] += 1
            assert req.form["purpose"] == "batch"
            fid = f"file-in{len(self.files)}"
            self.files[fid] = req.files["file"].read()
            return jresp({"id": fid, "object": "file", "bytes": len(self.files[fid]),
                          "created_at": 1732000000, "filename": "textgauge-batch.jsonl",
                          "purpose": "batch", "status": "processed", "expires_at": None,
                          "status_details": None})
        if path == "/v1/batches" and req.method == "POST":
            self.posts["batches"] += 1
            body = json.loads(req.data)
            assert body["endpoint"] == "/v1/chat/completions"
            assert body["completion_window"] == "24h"
            bid = f"batch_{len(self.batches)}"
            lines = self.files[body["input_file_id"]].decode().splitlines()
            self.batches[bid] = {"input": body["input_file_id"], "status": "validating",
                                 "n": len(lines), "metadata": body.get("metadata"), "polls": 0}
            return jresp(self.batch_obj(bid))
        m = re.fullmatch(r"/v1/batches/([\w-]+)", path)
        if m and req.method == "GET":
            self.retrieves += 1
            b = self.batches[m.group(1)]
            b["polls"] += 1
            if b["polls"] >= self.polls_until_done and b["status"] != "completed":
                self.run(m.group(1))
            elif b["status"] == "validating":
                b["status"] = "in_progress"
            return jresp(self.batch_obj(m.group(1)))
        m = re.fullmatch(r"/v1/files/([\w-]+)/content", path)
        if m:
            return Response(self.files[m.group(1)], content_type="application/octet-stream")
        return jresp({"error": {"message": f"no route {path}", "type": "invalid_request_error"}},
                     404)

    def run(self, bid: str) -> None:
        b = self.batches[bid]
        out, err = [], []
        for k, line in enumerate(self.files[b["input"]].decode().splitlines()):
            rec = json.loads(line)
            body = rec["body"]
            assert body["response_format"]["json_schema"]["schema"]["properties"]["label"][
                "enum"] == LABELS
            n = int(rec["custom_id"].split()[1].split("/")[0])
            if n == 2:  # one request fails inside the batch
                err.append({"id": f"batch_req_{k}", "custom_id": rec["custom_id"],
                            "response": {"status_code": 400, "request_id": "req_x", "body": {
                                "error": {"message": "Invalid prompt", "type":
                                          "invalid_request_error"}}}, "error": None})
                continue
            content = '{"label":"economy"}' if n == 3 else (
                '{"label":"immigration"}' if n % 2 == 0 else '{"label":"not_immigration"}')
            out.append({"id": f"batch_req_{k}", "custom_id": rec["custom_id"], "response": {
                "status_code": 200, "request_id": f"req_{k}", "body": {
                    "id": f"chatcmpl-{k}", "object": "chat.completion", "created": 1732000000,
                    "model": body["model"], "choices": [{
                        "index": 0, "message": {"role": "assistant", "content": content,
                                                "refusal": None},
                        "logprobs": None, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 30, "completion_tokens": 5,
                              "total_tokens": 35}}}, "error": None})
        b["output"] = f"file-out-{bid}"
        self.files[b["output"]] = ("\n".join(json.dumps(x) for x in out) + "\n").encode()
        if err:
            b["error"] = f"file-err-{bid}"
            self.files[b["error"]] = ("\n".join(json.dumps(x) for x in err) + "\n").encode()
        b["status"] = "completed"
        b["done"], b["failed"] = len(out), len(err)


@pytest.fixture
def fake_openai(httpserver):
    fake = FakeOpenAI()
    httpserver.expect_request(re.compile("/v1/.*")).respond_with_handler(fake.handler)
    return fake


def openai_backend(server, **kw):
    cfg = {"backend": "openai", "model": "gpt-4o-mini", "base_url": server.url_for("/v1")}
    cfg.update(kw)
    return make_backend(cfg)


def test_openai_submit_poll_collect(httpserver, fake_openai, tmp_path):
    be = openai_backend(httpserver)
    reqs = make_requests(6)
    state_path = tmp_path / "batch.json"
    state = batch.submit(be, reqs, state_path)
    assert fake_openai.posts == {"files": 1, "batches": 1}
    assert state["batches"][0]["batch_id"] == "batch_0"
    # the uploaded file is the real batch format
    lines = [json.loads(x) for x in fake_openai.files["file-in0"].decode().splitlines()]
    assert [x["custom_id"] for x in lines] == [r.id for r in reqs]
    assert all(x["method"] == "POST" and x["url"] == "/v1/chat/completions" for x in lines)
    assert lines[0]["body"]["messages"][1]["content"] == "Sentence 0"

    # a second submit with the same state file sends nothing
    batch.submit(be, reqs, state_path)
    assert fake_openai.posts == {"files": 1, "batches": 1}

    sleeps = []
    state = batch.poll(be, state_path, interval=5, sleep=sleeps.append)
    assert state["batches"][0]["status"] == "completed" and sleeps == [5]
    out = []
    batch.collect(be, reqs, state_path, out.extend)
    by_id = {p.id: p for p in out}
    assert sorted(by_id) == sorted(r.id for r in reqs)
    assert by_id["doc 0/para-0"].label == "immigration"
    assert by_id["doc 1/para-1"].label == "not_immigration"
    assert by_id["doc 2/para-2"].status == "failed" and "Invalid prompt" in by_id[
        "doc 2/para-2"].error
    assert by_id["doc 3/para-3"].status == "invalid"
    assert by_id["doc 0/para-0"].usage["prompt_tokens"] == 30


def test_openai_batch_backend_submits_once_and_collects_on_a_later_run(
        httpserver, fake_openai, tmp_path, monkeypatch):
    """Submit-only, then a collecting run that finds the batch still running (not ready, a
    one-paragraph error, nothing resent), then one that collects: one upload, one batch."""
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    fake_openai.polls_until_done = 2
    ck = tmp_path / "ck.jsonl"
    reqs = make_requests(5)

    def backend(**kw):
        be = openai_backend(httpserver, batch_api=True, batch_poll_interval=0.01, **kw)
        be.bind_state(ck)
        return be

    be = backend()
    be.submit_only = True
    with pytest.raises(batch.BatchSubmitted) as sent:
        run_with_checkpoint(be, reqs, ck)
    assert sent.value.summary["submitted_now"] == 5
    assert batch.state_path_for(ck).exists()
    # a second submit (a rerun of the submit rule) sends nothing
    with pytest.raises(batch.BatchSubmitted) as again:
        run_with_checkpoint(be, reqs, ck)
    assert again.value.summary["submitted_now"] == 0
    assert fake_openai.posts == {"files": 1, "batches": 1}
    # collecting with no wait: still in progress -> not ready, one paragraph, no resubmit
    with pytest.raises(batch.BatchNotReady, match="Not ready yet, run again later") as nr:
        run_with_checkpoint(backend(batch_wait=0), reqs, ck)
    assert "batch_0" in str(nr.value) and "sent again" in str(nr.value)
    # a later run collects: every text answered, through the batch, nothing resent
    df = run_with_checkpoint(backend(), reqs, ck, fail_bound=0.5)
    assert fake_openai.posts == {"files": 1, "batches": 1}
    assert len(df) == 5 and df["id"].is_unique
    assert all(s.get("via") == "batch" for s in df["served"])
    assert SECRET not in batch.state_path_for(ck).read_text() and SECRET not in ck.read_text()


def test_collect_waits_at_most_batch_wait(httpserver, fake_openai, tmp_path):
    """A collecting job polls for at most batch_wait seconds, then collects what ended."""
    fake_openai.polls_until_done = 3
    ck = tmp_path / "ck.jsonl"
    be = openai_backend(httpserver, batch_api=True, batch_poll_interval=5, batch_wait=60)
    be.bind_state(ck)
    sleeps: list[float] = []
    be.sleep = sleeps.append
    df = run_with_checkpoint(be, make_requests(4), ck, fail_bound=0.5)
    assert len(df) == 4 and sleeps == [5, 5]
    assert fake_openai.posts == {"files": 1, "batches": 1}


def test_removed_batch_options_are_refused_with_what_to_do(httpserver):
    from textgauge.errors import ConfigError
    from textgauge.options import PromptLimits

    with pytest.raises(ConfigError, match="batch_state is no longer used.*own batch state"):
        openai_backend(httpserver, batch_api=True, batch_state="b.json")
    with pytest.raises(ConfigError, match="batch_timeout is no longer used.*batch_wait"):
        PromptLimits.from_dict({"batch_api": True, "batch_timeout": 60},
                               "models.gpt.limits")


def test_state_paths_are_one_per_job():
    paths = {batch.state_path_for(f"r/predictions/gpt/checkpoints/{job}.ab12.jsonl")
             for job in ("shard-0000", "shard-0001", "gold", "gold-order-reversed")}
    assert len(paths) == 4
    assert all(p.name.endswith(".ab12.batch.json") for p in paths)


def test_only_requests_in_no_batch_are_sent(httpserver, fake_openai, tmp_path):
    be = openai_backend(httpserver)
    state_path = tmp_path / "batch.json"
    batch.submit(be, make_requests(3), state_path)
    # a subset of the submitted requests (ids not yet checkpointed) sends nothing
    assert batch.submit(be, make_requests(3)[1:], state_path)["submitted_now"] == 0
    assert fake_openai.posts["batches"] == 1
    # an edited text under a known id, and a new id: only those two go out, in a new batch
    edited = [PromptRequest("doc 0/para-0", [{"role": "user", "content": "edited"}], LABELS),
              *make_requests(3)[1:],
              PromptRequest("doc 9/para-9", [{"role": "user", "content": "other"}],
                            LABELS)]
    state = batch.submit(be, edited, state_path)
    assert state["submitted_now"] == 2 and fake_openai.posts["batches"] == 2
    sent = fake_openai.files["file-in1"].decode()
    assert "edited" in sent and "other" in sent and "Sentence 1" not in sent
    batch.poll(be, state_path, interval=0, sleep=lambda s: None)
    out = []
    batch.collect(be, edited, state_path, out.extend)
    assert sorted(p.id for p in out) == sorted(r.id for r in edited)


def test_a_v1_state_resumes_without_resubmitting(httpserver, fake_openai, tmp_path):
    be = openai_backend(httpserver)
    reqs = make_requests(3)
    state_path = tmp_path / "batch.json"
    state = batch.submit(be, reqs, state_path)
    v1 = {**state, "version": 1,
          "body_hashes": dict(zip(state["ids"], state.pop("hashes"), strict=True))}
    del v1["hashes"]
    state_path.write_text(json.dumps(v1))
    assert batch.submit(be, reqs, state_path)["submitted_now"] == 0
    assert fake_openai.posts["batches"] == 1


def test_openai_chunks(httpserver, fake_openai, tmp_path):
    be = openai_backend(httpserver)
    reqs = make_requests(5)
    state_path = tmp_path / "batch.json"
    batch.submit(be, reqs, state_path, max_per_batch=2)
    assert fake_openai.posts["batches"] == 3
    batch.poll(be, state_path, interval=0, sleep=lambda s: None)
    out = []
    batch.collect(be, reqs, state_path, out.extend)
    assert sorted(p.id for p in out) == sorted(r.id for r in reqs)


class FakeAnthropic:
    def __init__(self, base: str):
        self.base = base
        self.posts = 0
        self.retrieves = 0
        self.requests: list[dict] = []

    def batch_obj(self, ended: bool) -> dict:
        n = len(self.requests)
        return {"id": "msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d", "type": "message_batch",
                "processing_status": "ended" if ended else "in_progress",
                "request_counts": {"processing": 0 if ended else n,
                                   "succeeded": n - 1 if ended else 0,
                                   "errored": 1 if ended else 0, "canceled": 0, "expired": 0},
                "ended_at": "2026-11-29T18:37:24.100435Z" if ended else None,
                "created_at": "2026-11-29T18:37:24.100435Z",
                "expires_at": "2026-11-30T18:37:24.100435Z", "archived_at": None,
                "cancel_initiated_at": None,
                "results_url": (self.base + "/v1/messages/batches/msgbatch_01HkcTjaV5uDC8jWR4Zs"
                                "DV8d/results") if ended else None}

    def handler(self, req: Request) -> Response:
        if req.path == "/v1/messages/batches" and req.method == "POST":
            self.posts += 1
            self.requests = json.loads(req.data)["requests"]
            return jresp(self.batch_obj(False))
        if req.path.endswith("/results"):
            lines = []
            for k, r in enumerate(self.requests):
                if k == 1:
                    lines.append({"custom_id": r["custom_id"], "result": {
                        "type": "errored", "error": {"type": "error", "error": {
                            "type": "invalid_request_error", "message": "max_tokens too low"}}}})
                    continue
                lines.append({"custom_id": r["custom_id"], "result": {
                    "type": "succeeded", "message": {
                        "id": f"msg_{k}", "type": "message", "role": "assistant",
                        "model": r["params"]["model"],
                        "content": [{"type": "text", "text": '{"label":"not_immigration"}'}],
                        "stop_reason": "end_turn", "stop_sequence": None,
                        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0,
                                  "cache_read_input_tokens": 0, "output_tokens": 6}}}})
            return Response("\n".join(json.dumps(x) for x in lines[::-1]) + "\n",
                            content_type="application/binary")
        if req.path.startswith("/v1/messages/batches/"):
            self.retrieves += 1
            return jresp(self.batch_obj(self.retrieves >= 2))
        return jresp({"type": "error", "error": {"type": "not_found_error", "message": "no"}},
                     404)


def test_anthropic_submit_poll_collect(httpserver, tmp_path):
    fake = FakeAnthropic(httpserver.url_for("").rstrip("/"))
    httpserver.expect_request(re.compile("/v1/.*")).respond_with_handler(fake.handler)
    be = make_backend({"backend": "anthropic", "model": "claude-haiku-4-5",
                       "base_url": httpserver.url_for("")})
    reqs = make_requests(4)
    state_path = tmp_path / "a.json"
    batch.submit(be, reqs, state_path)
    batch.submit(be, reqs, state_path)
    assert fake.posts == 1
    assert [r["custom_id"] for r in fake.requests] == ["r0", "r1", "r2", "r3"]
    params = fake.requests[0]["params"]
    assert params["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert params["output_config"]["format"]["schema"]["properties"]["label"]["enum"] == LABELS
    state = batch.poll(be, state_path, interval=0, sleep=lambda s: None)
    assert state["batches"][0]["status"] == "ended"
    out = []
    batch.collect(be, reqs, state_path, out.extend)
    by_id = {p.id: p for p in out}
    assert sorted(by_id) == sorted(r.id for r in reqs)
    assert by_id["doc 1/para-1"].status == "failed"
    assert "max_tokens too low" in by_id["doc 1/para-1"].error
    assert by_id["doc 0/para-0"].label == "not_immigration"
    assert by_id["doc 3/para-3"].usage["prompt_tokens"] == 10


def test_anthropic_batch_backend_submits_then_collects(httpserver, tmp_path):
    """The same two steps with Anthropic Message Batches: submit-only, not ready, collected."""
    fake = FakeAnthropic(httpserver.url_for("").rstrip("/"))
    httpserver.expect_request(re.compile("/v1/.*")).respond_with_handler(fake.handler)
    ck = tmp_path / "ck.jsonl"
    reqs = make_requests(3)

    def backend():
        be = make_backend({"backend": "anthropic", "model": "claude-haiku-4-5",
                           "base_url": httpserver.url_for(""), "batch_api": True,
                           "batch_poll_interval": 0.01})
        be.bind_state(ck)
        return be

    be = backend()
    be.submit_only = True
    with pytest.raises(batch.BatchSubmitted):
        run_with_checkpoint(be, reqs, ck)
    with pytest.raises(batch.BatchNotReady, match="anthropic batches that have not ended"):
        run_with_checkpoint(backend(), reqs, ck)  # first retrieve: in progress
    df = run_with_checkpoint(backend(), reqs, ck, fail_bound=0.5)  # second: ended
    assert fake.posts == 1
    assert len(df) == 3 and (df["status"] == "ok").sum() == 2
    assert df.set_index("id").loc["doc 0/para-0", "usage"]["prompt_tokens"] == 10


def test_requests_of_an_expired_batch_are_sent_again_once(httpserver, fake_openai, tmp_path):
    """An OpenAI batch that expired ran none of its requests (nothing charged): they come back
    failed, and the next run sends exactly those again, in a new batch."""
    ck = tmp_path / "ck.jsonl"
    reqs = make_requests(4)

    def backend():
        be = openai_backend(httpserver, batch_api=True, batch_poll_interval=0.01)
        be.bind_state(ck)
        return be

    with pytest.raises(batch.BatchNotReady):
        run_with_checkpoint(backend(), reqs, ck)
    fake_openai.batches["batch_0"].update(status="expired", polls=-10**9)
    with pytest.raises(BackendError, match="were not classified"):
        run_with_checkpoint(backend(), reqs, ck)  # collected: every text failed (expired)
    fake_openai.polls_until_done = 1
    df = run_with_checkpoint(backend(), reqs, ck, fail_bound=0.5)  # resubmitted, collected
    assert fake_openai.posts == {"files": 2, "batches": 2}
    assert len(df) == 4 and (df["status"] != "failed").sum() == 3  # doc 2 fails in the fake
    # and the new batch is never sent a third time
    run_with_checkpoint(backend(), reqs, ck, fail_bound=0.5)
    assert fake_openai.posts == {"files": 2, "batches": 2}
