"""textgauge.reporting.report: what the report says about each coder."""

from __future__ import annotations

from textgauge.reporting.report import _describe_model


def test_a_batch_api_coder_says_how_many_answers_came_from_the_batch_api():
    cfg = {"kind": "prompt", "backend": "openai", "model": "gpt-4.1-mini",
           "prompt": "prompts/zeroshot.jinja", "limits": {"batch_api": True}}
    manifest = {"prompt_hash": "abc", "n": 40, "answers_from_batch_api": 38}
    assert "38 of 40 answers came from the provider's batch API" in _describe_model(
        cfg, manifest)
    online = {**cfg, "limits": {}}
    assert "batch API" not in _describe_model(online, manifest)
