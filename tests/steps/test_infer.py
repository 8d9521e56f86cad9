"""Steps of workflow/rules/infer.smk (textgauge.steps.infer): checkpoints are tied to the
settings that shape the answers, and only to them."""

from textgauge.inference.prompting import PromptTemplate
from textgauge.options import run_settings
from textgauge.steps.infer import few_shot_record, fingerprinted

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
                       "timeout": 5, "batch_api": True, "batch_wait": 30},
                {"throughput_texts_per_s": 9.0, "tokenizer": "approx:4"}) == first
    assert path({**base, "temperature": 0.7}) != first
    assert path({**base, "max_tokens": 8}) != first


def test_few_shot_record_names_the_training_items_shown():
    """The manifest records which training items were the few-shot examples (ids, labels,
    counts per label), so a reader can check they never came from gold."""
    import pandas as pd

    from textgauge.inference.prompting import select_examples

    pool = pd.DataFrame({"id": ["t1", "t2", "t3", "t4", "t5"],
                         "text": ["a", "b", "c", "d", "a"],
                         "label": ["x", "x", "y", "y", "y"]})
    examples = select_examples(list(zip(pool["text"], pool["label"], strict=True)), 1, 7)
    rec = few_shot_record(pool, examples, "results/training/train.parquet", 1, 7)
    assert rec["n"] == 2 and rec["by_label"] == {"x": 1, "y": 1} and rec["per_label"] == 1
    assert set(rec["ids"]) <= set(pool["id"]) and rec["labels"] == [lab for _, lab in examples]
    by_id = pool.set_index("id")
    assert [(by_id.loc[i, "text"], by_id.loc[i, "label"]) for i in rec["ids"]] == examples


def test_a_text_longer_than_max_length_is_answered_shortened_and_counted(tmp_path):
    """#14.5 through the predict and gather steps: the long text is answered (its prompt keeps
    the answer cue), its row says truncated, the manifest counts it, the report says so."""
    import json

    import pandas as pd

    from tests.tiny_models import tiny_llama
    from textgauge.reporting.methods import local_run_sentence
    from textgauge.reporting.report import truncation_sentence
    from textgauge.steps.infer import gather_predictions, predict

    words = "taxes budget jobs crime border police duty fairness privacy".split()
    model = tiny_llama(tmp_path / "llama", words + ["economic security moral rights Category"])
    codebook = {"economic": "money", "security": "threats", "moral": "duty", "rights": "law"}
    texts = tmp_path / "texts.parquet"
    pd.DataFrame({"id": ["long", "short"],
                  "text": [" ".join(words * 40), "taxes and jobs"]}).to_parquet(texts)
    prompt = "prompts/zeroshot.jinja"
    settings = {"kind": "prompt", "backend": "transformers", "model": str(model),
                "prompt": prompt, "scope": "gold", "label_order": "fixed", "max_length": 300,
                "dtype": "float32"}
    part = tmp_path / "gold.parquet"
    predict(texts=str(texts), predictions=str(part), settings=settings, labels=codebook,
            model="local", limits={}, seed=1, checkpoint=str(tmp_path / "ck" / "gold.jsonl"),
            threads=1)
    pred, manifest = tmp_path / "local.parquet", tmp_path / "local.manifest.json"
    gather_predictions(parts=[str(part)], predictions=str(pred), manifest=str(manifest),
                       settings=settings, model="local", prompt=prompt)
    df = pd.read_parquet(pred).set_index("id")
    assert df.loc["long", "status"] == "ok" and df.loc["long", "label"] in codebook
    assert bool(df.loc["long", "truncated"]) and not bool(df.loc["short", "truncated"])
    man = json.loads(manifest.read_text())
    assert man["n_truncated"] == 1
    assert man["decoding"]["texts_shortened_to_fit"] == 1
    assert man["decoding"]["max_length"] == 300
    assert "1 text was shortened" in local_run_sentence(man)
    assert truncation_sentence(man, settings, {}).startswith("1 of 2 texts shortened to fit")
