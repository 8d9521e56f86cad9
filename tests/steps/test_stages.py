"""Checkpoints are tied to the settings that produced their answers."""

from textgauge.inference.prompting import PromptTemplate
from textgauge.steps.stages import fingerprinted

CODEBOOK = {"a": "first", "b": "second"}


def _tpl(source="{% block system %}S{% endblock %}{% block user %}{{ text }}{% endblock %}"):
    return PromptTemplate(source, CODEBOOK)


def test_same_settings_same_checkpoint_and_any_change_a_new_one():
    cfg = {"kind": "prompt", "model": "m", "prompt": "p.jinja"}
    base = fingerprinted("ck/gold.jsonl", cfg, _tpl(), list(CODEBOOK), "fixed")
    assert base == fingerprinted("ck/gold.jsonl", dict(cfg), _tpl(), list(CODEBOOK), "fixed")
    assert base.startswith("ck/gold.") and base.endswith(".jsonl")
    changed = [
        fingerprinted("ck/gold.jsonl", {**cfg, "model": "other"}, _tpl(), list(CODEBOOK), "fixed"),
        fingerprinted("ck/gold.jsonl", cfg, _tpl("{% block system %}T{% endblock %}"
                                                  "{% block user %}{{ text }}{% endblock %}"),
                      list(CODEBOOK), "fixed"),
        fingerprinted("ck/gold.jsonl", cfg, _tpl(), list(CODEBOOK), "reversed"),
        fingerprinted("ck/gold.jsonl", cfg, PromptTemplate(_tpl().source, {"a": "x", "b": "y"}),
                      list(CODEBOOK), "fixed"),
    ]
    assert len({base, *changed}) == 5
