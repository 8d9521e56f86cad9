"""The methods sentences describe what ran, from the run's own records.

The prompted API coder runs for real (the predict and gather steps) against a fake
OpenAI-compatible server on localhost that answers as a dated snapshot with a
system_fingerprint; the encoder and LoRA sentences are checked against training summaries of
the shape their trainers write.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("openai")
pytest.importorskip("pytest_httpserver")

from werkzeug import Request, Response  # noqa: E402

from textgauge.reporting.methods import coder_sentence  # noqa: E402
from textgauge.steps.infer import gather_predictions, predict  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
PROMPT = str(REPO / "prompts" / "zeroshot.jinja")
CODEBOOK = {"economic": "money", "moral": "right and wrong", "security": "threats",
            "rights": "liberties"}
SNAPSHOT = "fake-model-2026-01-15"


def answer(req: Request) -> Response:
    body = json.loads(req.data)
    return Response(json.dumps({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1767000000,
        "model": SNAPSHOT, "system_fingerprint": "fp_test123",
        "choices": [{"index": 0, "message": {"role": "assistant",
                                             "content": json.dumps({"label": "moral"})},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 90, "completion_tokens": 4, "total_tokens": 94},
        "echo_temperature": body.get("temperature")}), content_type="application/json")


def test_api_coder_sentence_states_decoding_and_the_snapshot_that_answered(tmp_path,
                                                                             httpserver):
    httpserver.expect_request("/v1/chat/completions", method="POST").respond_with_handler(
        answer)
    texts = tmp_path / "texts.parquet"
    pd.DataFrame({"id": [f"t{i}" for i in range(6)],
                  "text": [f"Sentence {i}." for i in range(6)]}).to_parquet(texts)
    settings = {"kind": "prompt", "backend": "openai", "model": "fake-model",
                "base_url": httpserver.url_for("/v1"), "prompt": PROMPT, "scope": "gold",
                "logprobs": False, "temperature": 0.7, "max_tokens": 20,
                "structured": "json_schema", "label_order": "fixed"}
    part = tmp_path / "gold.parquet"
    predict(texts=str(texts), predictions=str(part), settings=settings, labels=CODEBOOK,
            model="api", limits={"concurrency": 2}, seed=1,
            checkpoint=str(tmp_path / "ck" / "gold.jsonl"))
    pred, manifest = tmp_path / "api.parquet", tmp_path / "api.manifest.json"
    gather_predictions(parts=[str(part)], predictions=str(pred), manifest=str(manifest),
                       settings=settings, model="api", prompt=PROMPT)
    man = json.loads(manifest.read_text())
    assert man["served_models"] == {SNAPSHOT: 6}
    assert man["system_fingerprints"] == {"fp_test123": 6}
    assert man["decoding"]["temperature"] == 0.7 and man["decoding"]["max_tokens"] == 20
    assert set(pd.read_parquet(pred)["served_model"]) == {SNAPSHOT}

    text = coder_sentence("api", settings, man, {}, len(CODEBOOK))
    assert "temperature 0.7" in text and "at most 20 tokens" in text
    assert "JSON schema" in text and "repeated runs can give different answers" in text
    assert f"{SNAPSHOT} (6 answers)" in text and "fp_test123 (6)" in text
    assert f"prompt hash {man['prompt_hash']}" in text
    assert "deterministic" not in text and "label scoring" not in text


def test_local_label_scoring_coder_is_described_as_deterministic():
    man = {"decoding": {"backend": "transformers", "decoding": "label scoring"},
           "prompt_hash": "abc", "model_revision": "pkg"}
    cfg = {"kind": "prompt", "backend": "transformers", "model": "tiny", "prompt": "p.jinja",
           "few_shot": 3, "label_order": "rotated"}
    text = coder_sentence("zs", cfg, man, {}, 4)
    assert "highest probability among the 4 labels" in text and "deterministic" in text
    assert "3 few-shot examples per label (up to 12 per prompt)" in text
    assert "rotated order" in text and "API reported" not in text
    # the manifest counts the examples shown (a label with fewer training items gives fewer)
    one = coder_sentence("zs", {**cfg, "few_shot": 1}, {**man, "few_shot": {"n": 3}}, {}, 4)
    assert "1 few-shot example per label (3 per prompt)" in one


def test_encoder_sentence_reads_the_training_summary():
    cfg = {"kind": "encoder", "base_model": "mini", "learning_rate": 1e-4, "epochs": 4,
           "early_stopping_patience": 2, "class_weights": "inverse_frequency"}
    training = {"base_model": {"upstream": "org/mini"}, "n_train": 720, "n_val": 180,
                "epochs_run": 3.0, "stopped_early": True, "config": {"seed": 13},
                "class_weights": {"economic": 0.7563, "moral": 1.0909}}
    text = coder_sentence("enc", cfg, {}, training, 2)
    assert "org/mini fine-tuned for sequence classification on 720 labelled texts" in text
    assert "180 for validation" in text and "learning rate 0.0001" in text
    assert "early stopping on validation macro-F1 (patience 2), 3 run, stopped early" in text
    assert "economic 0.76, moral 1.09" in text and "seed 13" in text
    no_stop = coder_sentence("enc", {**cfg, "early_stopping_patience": None}, {},
                             {**training, "epochs_run": 4.0, "stopped_early": False}, 2)
    assert "no early stopping, 4 run" in no_stop


def test_lora_sentence_is_not_an_encoder_sentence():
    cfg = {"kind": "lora", "base_model": "tiny-llama", "learning_rate": 2e-4, "epochs": 2,
           "prompt": "prompts/zeroshot.jinja", "seed": 13, "quantize": "4bit"}
    training = {"base_model": {"upstream": "org/tiny-llama"}, "n_train": 96, "n_val": 24,
                "epochs_run": 2.0, "adapter_meta": {
                    "lora": {"r": 8, "alpha": 16, "dropout": 0.05,
                             "target_modules": "all-linear"},
                    "quantize": "4bit", "prompt_hash": "feedbeef"}}
    text = coder_sentence("lora", cfg, {"prompt_hash": "feedbeef"}, training, 4)
    assert "sequence classification" not in text
    assert "LoRA adapters (rank 8, alpha 16, dropout 0.05, target modules all-linear" in text
    assert "QLoRA" in text and "96 prompted training texts" in text and "2 run" in text
    assert "hash feedbeef" in text and "label scoring" in text
    plain = coder_sentence("lora", {**cfg, "quantize": "none"}, {}, {
        **training, "adapter_meta": {**training["adapter_meta"], "quantize": "none"}}, 4)
    assert "no quantisation of the base model" in plain and "QLoRA" not in plain


def test_a_local_decoder_states_precision_prefix_reuse_and_shortened_texts():
    """#15 / #14.5: the precision check, the reused prefix and the shortened texts, from the
    predictions manifest the transformers backend fills."""
    from textgauge.reporting.methods import local_run_sentence
    from textgauge.reporting.report import truncation_sentence

    manifest = {"n": 300, "n_truncated": 2, "decoding": {
        "decoding": "label scoring", "max_length": 1024,
        "precision_check": {"n": 32, "used": "fp32", "prob_tolerance": 0.01, "trials": [
            {"precision": "bf16", "label_agreement": 1.0, "max_prob_diff": 0.05,
             "speedup": 2.8, "passes": False}]},
        "prefix_reuse": {"texts_from_cached_prefix": 298, "prefix_tokens": 212}}}
    text = local_run_sentence(manifest)
    assert "It ran in fp32: no lower precision passed the check against fp32 on 32" in text
    assert "(212 tokens" in text and "2 texts were shortened" in text
    manifest["decoding"]["precision_check"]["used"] = "bf16"
    assert "It ran in bf16 after a check against fp32 on 32 texts" in local_run_sentence(manifest)
    assert local_run_sentence({"n": 3}) == ""
    sentence = truncation_sentence(manifest, {"kind": "prompt", "max_length": 1024}, {})
    assert sentence.startswith("2 of 300 texts shortened to fit max_length 1024 tokens")


def test_lora_sentence_counts_training_texts_left_out_for_length():
    cfg = {"kind": "lora", "base_model": "tiny", "r": 4, "alpha": 8, "epochs": 1,
           "max_length": 256, "prompt": "p.jinja", "seed": 13}
    training = {"n_train": 14, "n_val": 4, "epochs_run": 1.0,
                "adapter_meta": {"lora": {"r": 4}, "max_length": 256}}
    text = coder_sentence("tuned", cfg, {}, training, 4)
    assert "trained on the answer tokens of 14 prompted training texts (4 for" in text
    cut = coder_sentence("tuned", cfg, {}, {**training, "n_too_long": {"train": 2, "val": 0}}, 4)
    assert ("14 prompted training texts (2 more left out: prompt + answer longer than "
            "max_length 256 tokens)") in cut
