"""The transformers backend: shared-prefix KV reuse gives the full prompt's answers, and a
text too long for max_length is shortened (only the text), answered and counted (#15, #14.5).

A tiny random Llama built on the fly (no downloads); a few texts each.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

pytest.importorskip("transformers")

import torch  # noqa: E402

from tests.tiny_models import tiny_llama  # noqa: E402
from textgauge.inference.backends.transformers import TransformersBackend  # noqa: E402
from textgauge.inference.prompting import (  # noqa: E402
    TRUNCATION_MARKER,
    PromptTemplate,
    shorten_to_fit,
)

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parents[3]
CODEBOOK = {"economic": "costs, jobs, taxes", "security": "crime, borders, police",
            "moral": "right and wrong, duty", "rights": "liberties, privacy, equality"}
#: labels whose first tokens are shared: each full continuation is scored
SHARED_FIRST = {"pro tax": "for taxes", "pro jobs": "for jobs", "anti tax": "against taxes"}
WORDS = "taxes budget jobs crime border police duty fairness privacy equality the we must our".split()


def _texts(n: int, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(f"t{i}", " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))))
            for i in range(n)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    corpus = [t for _, t in _texts(40)] + list(CODEBOOK) + list(SHARED_FIRST) + [
        "Codebook Examples Text Category Answer with the category name only"]
    return tiny_llama(tmp_path_factory.mktemp("tiny") / "llama", corpus, seed=3)


def _run(backend: TransformersBackend, reqs) -> dict:
    out: list = []
    backend.classify(reqs, out.extend)
    return {p.id: p for p in out}


@pytest.mark.parametrize("codebook", [CODEBOOK, SHARED_FIRST], ids=["first-token", "full-label"])
def test_prefix_reuse_matches_the_full_prompt(model_dir, codebook):
    """Few-shot examples in the prefix, a rotated label order (several prefixes), texts of
    mixed lengths in one padded batch: same labels, probabilities within 1e-4."""
    examples = [(t, list(codebook)[i % len(codebook)]) for i, (_, t) in enumerate(_texts(2, 9))]
    tpl = PromptTemplate.from_file(ROOT / "prompts" / "zeroshot.jinja", codebook,
                                   "Code the frame.", examples)
    reqs = tpl.requests(_texts(12, 1), order="rotated", seed=5)
    assert len({tuple(r.labels) for r in reqs}) > 1
    ref = _run(TransformersBackend(str(model_dir), inference_batch_size=4, device="cpu",
                                   dtype="float32", prefix_reuse=False), reqs)
    reuse_backend = TransformersBackend(str(model_dir), inference_batch_size=4, device="cpu",
                                        dtype="float32")
    got = _run(reuse_backend, reqs)
    info = reuse_backend.describe()["prefix_reuse"]
    assert info["texts_from_cached_prefix"] >= 6 and info["prefixes"] >= 2
    assert info["texts_from_cached_prefix"] + info["texts_from_full_prompt"] == len(reqs)
    for r in reqs:
        a, b = ref[r.id], got[r.id]
        assert a.status == b.status == "ok"
        assert a.label == b.label
        assert max(abs(a.probs[k] - b.probs[k]) for k in codebook) < 1e-4
        assert b.usage.get("cached_tokens", 0) > 0 or info["texts_from_full_prompt"]
    if codebook is CODEBOOK:  # the padded full-prompt batch equals one unpadded pass
        r = reqs[0]
        tok, model = reuse_backend.tok, reuse_backend.model
        ids = tok(reuse_backend._prompt(r), add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            logp = torch.log_softmax(model(**ids).logits[0, -1].float(), -1)
        first = [tok.encode(lab, add_special_tokens=False)[0] for lab in r.labels]
        p = torch.softmax(logp[first], -1).tolist()
        assert max(abs(p[i] - ref[r.id].probs[lab]) for i, lab in enumerate(r.labels)) < 1e-4


def test_a_long_text_is_shortened_not_the_prompt(model_dir):
    tpl = PromptTemplate.from_file(ROOT / "prompts" / "zeroshot.jinja", CODEBOOK, "Code it.")
    long_text = " ".join(["taxes budget jobs crime"] * 150)
    reqs = tpl.requests([("long", long_text), ("short", "taxes and jobs")])
    backend = TransformersBackend(str(model_dir), inference_batch_size=2, device="cpu",
                                  dtype="float32", max_length=320)
    seen: list = []
    orig = backend._score_batch

    def spy(items):
        seen.extend(items)
        return orig(items)

    backend._score_batch = spy  # type: ignore[method-assign]
    got = _run(backend, reqs)
    assert got["long"].status == "ok" and got["long"].label in CODEBOOK
    assert got["long"].truncated is True and got["short"].truncated is False
    assert backend.describe()["texts_shortened_to_fit"] == 1
    item = next(it for it in seen if it.req.id == "long")
    assert len(item.ids) <= 320
    prompt = backend.tok.decode(item.ids)
    assert TRUNCATION_MARKER.strip() in prompt
    assert prompt.rstrip().endswith("Category:<|im_end|>\n<|im_start|>assistant".rstrip())
    assert "Codebook:" in prompt and "Code it." in prompt


def test_shorten_to_fit_keeps_what_surrounds_the_text():
    tpl = PromptTemplate.from_file(ROOT / "prompts" / "zeroshot.jinja", CODEBOOK, "")
    req = tpl.requests([("a", "one two three four five six seven eight nine ten")])[0]

    def enc(s: str) -> list[int]:
        return list(range(len(s.split())))

    def count(r) -> int:
        return sum(len(m["content"].split()) for m in r.messages)

    def dec(ids: list[int]) -> str:
        return " ".join(req.text.split()[:len(ids)])

    same, cut = shorten_to_fit(req, count, 10_000, enc, dec)
    assert same is req and not cut
    budget = count(req) - 4
    short, cut = shorten_to_fit(req, count, budget, enc, dec)
    assert cut and count(short) <= budget
    assert short.text.endswith(TRUNCATION_MARKER) and short.text.startswith("one two")
    assert short.messages[0] == req.messages[0]
    assert short.messages[-1]["content"].endswith("Category:")
    with pytest.raises(ValueError, match="does not fit"):
        shorten_to_fit(req, count, 3, enc, dec)


def test_vllm_shortens_only_the_text_to_fit_max_model_len(model_dir):
    """vLLM's max_model_len is known: a long text is shortened before the engine sees it
    (a fake engine with a real tokenizer stands in for vLLM; no vllm needed)."""
    from types import SimpleNamespace

    from transformers import AutoTokenizer

    from textgauge.inference.backends.vllm import VLLMBackend

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    sent: list = []

    class Engine:
        def get_tokenizer(self):
            return tok

        def chat(self, messages, params, **kw):
            sent.extend(messages)
            comp = SimpleNamespace(text="economic", token_ids=[1], logprobs=None)
            return [SimpleNamespace(outputs=[comp], prompt_token_ids=[1], num_cached_tokens=0)
                    for _ in messages]

    vb = VLLMBackend.__new__(VLLMBackend)
    vb.inference_batch_size, vb.max_tokens, vb.logprobs = 8, 16, 0
    vb.label_from, vb.adapter, vb._llm = "generated", None, Engine()
    vb.engine_args = {"max_model_len": 300}
    vb._sampling_params = lambda labels: None  # type: ignore[method-assign]
    tpl = PromptTemplate.from_file(ROOT / "prompts" / "zeroshot.jinja", CODEBOOK, "Code it.")
    reqs = tpl.requests([("long", " ".join(["taxes budget jobs crime"] * 150)),
                         ("short", "taxes")])
    got: list = []
    vb.classify(reqs, got.extend)
    by = {p.id: p for p in got}
    assert by["long"].truncated and not by["short"].truncated
    assert by["long"].status == "ok"
    long_msgs = next(m for m in sent if "[…]" in m[-1]["content"])
    prompt = tok.apply_chat_template(long_msgs, tokenize=False, add_generation_prompt=True)
    assert len(tok.encode(prompt, add_special_tokens=False)) <= 300 - 16
    assert long_msgs[-1]["content"].endswith("Category:")


def test_low_precision_only_after_a_check_and_batch_size_from_measured_throughput(model_dir):
    """dtype auto on CPU: the check against fp32 is recorded (and a failing candidate is not
    used); without inference_batch_size the size comes from timed trials."""
    tpl = PromptTemplate.from_file(ROOT / "prompts" / "zeroshot.jinja", CODEBOOK, "Code it.")
    reqs = tpl.requests(_texts(40, 2))
    ref = _run(TransformersBackend(str(model_dir), inference_batch_size=8, device="cpu",
                                   dtype="float32", prefix_reuse=False), reqs)
    backend = TransformersBackend(str(model_dir), device="cpu", dtype="auto")
    got = _run(backend, reqs)
    d = backend.describe()
    check = d["precision_check"]
    assert check["n"] == 32 and check["used"] == d["precision"]
    trial = check["trials"][0]
    assert trial["precision"] in ("bf16", "int8")
    assert trial["passes"] == (check["used"] != "fp32")
    if check["used"] == "fp32":  # then every answer is the fp32 one
        assert all(max(abs(ref[i].probs[k] - got[i].probs[k]) for k in CODEBOOK) < 1e-4
                   for i in ref)
    assert d["batch_size_trials"] and d["batch_size_trials"][0]["batch_size"] == 4
    assert len(got) == len(reqs)
