"""Answers are reused only for the same question.

The predict step (steps.infer.predict) runs a prompted API coder against a fake
OpenAI-compatible server on localhost that counts the requests. Its answer depends on the
text and on the label order shown (the label at position hash(text) % 2 of the order the
prompt lists), so a stale answer or a wrong ``label_order`` column shows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("openai")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response  # noqa: E402

from textgauge.inference.prompting import PromptTemplate  # noqa: E402
from textgauge.steps.infer import gather_predictions, predict  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PROMPT = str(REPO / "prompts" / "zeroshot.jinja")
CODEBOOK = {"economic": "money", "moral": "right and wrong", "security": "threats",
            "rights": "liberties"}
N = 10


def pick(text: str, shown: list[str]) -> str:
    return shown[int(hashlib.sha256(text.encode()).hexdigest(), 16) % 2]


class FakeServer:
    """Answers like a model with a position bias; records the texts it was asked."""

    def __init__(self):
        self.asked: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, req: Request) -> Response:
        body = json.loads(req.data)
        system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
        shown = re.search(r"one of: (.*)\.\s*$", system).group(1).split(", ")
        text = user.removeprefix("Text: ").removesuffix("Category:").strip()
        with self.lock:
            self.asked.append(text)
        content = json.dumps({"label": pick(text, shown)})
        return Response(json.dumps({
            "id": "chatcmpl-reuse", "object": "chat.completion", "created": 1732000000,
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105}}),
            content_type="application/json")


@pytest.fixture
def fake(httpserver):
    server = FakeServer()
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(
        server)
    server.url = httpserver.url_for("/v1")
    return server


def items(edit: dict[str, str] | None = None) -> pd.DataFrame:
    df = pd.DataFrame({"id": [f"t{i}" for i in range(N)],
                       "text": [f"Sentence {i} about taxes and borders." for i in range(N)]})
    for i, t in (edit or {}).items():
        df.loc[df["id"] == i, "text"] = t
    return df


def run_predict(tmp_path, fake, df, *, seed=1, order="fixed", name="gold"):
    texts = tmp_path / f"{name}-texts.parquet"
    df.to_parquet(texts)
    out = tmp_path / f"{name}.parquet"
    settings = {"kind": "prompt", "backend": "openai", "model": "fake-model",
                "base_url": fake.url, "prompt": PROMPT, "scope": "gold", "logprobs": False,
                "label_order": order}
    limits = {"concurrency": 2, "max_retries": 1, "backoff_initial": 0.01,
              "backoff_max": 0.05, "report_interval": 0.05}
    fake.asked.clear()
    predict(texts=str(texts), predictions=str(out), settings=settings, labels=CODEBOOK,
            model="apicoder", limits=limits, seed=seed,
            checkpoint=str(tmp_path / "checkpoints" / "gold.jsonl"))
    return pd.read_parquet(out)


def consistent(pred: pd.DataFrame, df: pd.DataFrame) -> bool:
    """Every answer is the one the fake gives for that text under the recorded label order."""
    text = dict(zip(df["id"], df["text"], strict=True))
    return all(lab == pick(text[i], order.split("|"))
               for i, lab, order in zip(pred["id"], pred["label"], pred["label_order"],
                                        strict=True))


def test_an_edited_text_and_only_it_is_asked_again(tmp_path, fake):
    first = run_predict(tmp_path, fake, items())
    assert len(fake.asked) == N and (first["status"] == "ok").all()
    again = run_predict(tmp_path, fake, items())
    assert fake.asked == []  # the same questions: every answer reused
    edited = items({"t3": "An edited sentence about prisons and fairness."})
    pred = run_predict(tmp_path, fake, edited)
    assert fake.asked == ["An edited sentence about prisons and fairness."]
    assert consistent(pred, edited)
    assert pred.attrs["checkpoint"]["reused"] == N - 1
    assert pred.attrs["checkpoint"]["asked_again_changed_request"] == 1
    pd.testing.assert_frame_equal(
        again.drop(columns="run_timestamp").loc[again["id"] != "t3"].reset_index(drop=True),
        pred.drop(columns="run_timestamp").loc[pred["id"] != "t3"].reset_index(drop=True))


def test_a_new_seed_with_rotated_orders_asks_again_and_records_the_order_shown(tmp_path,
                                                                            fake):
    df = items()
    template = PromptTemplate.from_file(PROMPT, CODEBOOK)
    first = run_predict(tmp_path, fake, df, seed=1, order="rotated")
    assert len(fake.asked) == N and consistent(first, df)
    second = run_predict(tmp_path, fake, df, seed=2, order="rotated")
    want = {i: "|".join(template.label_order("rotated", i, 2)) for i in df["id"]}
    assert dict(zip(second["id"], second["label_order"], strict=True)) == want
    changed = [i for i in df["id"]
               if want[i] != "|".join(template.label_order("rotated", i, 1))]
    assert changed  # the seed moves some orders ...
    text = dict(zip(df["id"], df["text"], strict=True))
    assert sorted(fake.asked) == sorted(text[i] for i in changed)  # ... and those are asked
    assert consistent(second, df)  # answers belong to the orders recorded with them
    assert second.attrs["checkpoint"]["asked"] == len(changed)
    # back to the first seed: those answers are still there, nothing is asked
    third = run_predict(tmp_path, fake, df, seed=1, order="rotated")
    assert fake.asked == [] and consistent(third, df)
    assert list(third["label_order"]) == list(first["label_order"])


def test_corrupt_lines_are_counted_and_a_label_outside_the_codebook_is_not_reused(
        tmp_path, fake, caplog):
    run_predict(tmp_path, fake, items())
    (ck,) = (tmp_path / "checkpoints").glob("gold.*.jsonl")
    lines = ck.read_text().splitlines()
    rec = json.loads(lines[4])
    rec["label"] = "not_a_label"
    lines[4] = json.dumps(rec)
    lines[2:2] = ["{this is not json", "[1, 2, 3]", json.dumps({"label": "moral"})]
    ck.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="textgauge"):
        pred = run_predict(tmp_path, fake, items())
    stats = pred.attrs["checkpoint"]
    assert stats["corrupt_lines"] == 3 and stats["corrupt_line_numbers"] == [3, 4, 5]
    assert stats["corrupt_reasons"] == {"not JSON": 1, "not a JSON object": 1, "no id": 1}
    assert stats["asked_again_not_valid"] == 1 and len(fake.asked) == 1
    assert pred.set_index("id").loc[rec["id"], "label"] in CODEBOOK
    assert "3 line(s) are not usable records" in caplog.text
    assert "not valid for the codebook" in caplog.text
    manifest = tmp_path / "apicoder.manifest.json"
    gather_predictions(parts=[str(tmp_path / "gold.parquet")],
                       predictions=str(tmp_path / "apicoder.parquet"), manifest=str(manifest),
                       settings={"prompt": PROMPT}, model="apicoder", prompt=PROMPT)
    m = json.loads(manifest.read_text())
    assert m["checkpoint_corrupt_lines"] == 3 and m["answers_asked"] == 1
    assert m["answers_reused"] == N - 1
    assert m["prompt_template"] == Path(PROMPT).read_text()
