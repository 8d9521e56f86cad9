"""Steps of workflow/rules/infer.smk (textgauge.steps.infer): checkpoints are tied to the
settings that shape the answers, and only to them."""

from textgauge.inference.prompting import PromptTemplate
from textgauge.options import run_settings
from textgauge.steps.infer import fingerprinted

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


def test_limits_and_plan_keep_the_checkpoint_answer_settings_do_not():
    """Raising a rate limit or the throughput must resume the same checkpoint (no answer is
    paid for twice); a new temperature must start a fresh one."""
    base = {"kind": "prompt", "backend": "openai", "model": "gpt-4o-mini", "prompt": "p.jinja"}

    def path(settings, limits=None, plan=None):
        m = run_settings(settings, limits, plan)
        return fingerprinted("ck/gold.jsonl", m.answer_settings(), _tpl(), list(CODEBOOK),
                             m.label_order)

    first = path(base)
    assert path(base, {"concurrency": 64, "requests_per_minute": 5000, "max_retries": 1,
                       "timeout": 5, "batch_api": True, "batch_state": "b.json"},
                {"throughput_texts_per_s": 9.0, "tokenizer": "approx:4"}) == first
    assert path({**base, "temperature": 0.7}) != first
    assert path({**base, "max_tokens": 8}) != first
