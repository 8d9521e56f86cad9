"""Human round trips: the coded review queue and the coded error sheet back into the workflow."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import snakemake
from textgauge.audits.review_queue import (
    NO_ANSWER,
    final_labels,
    gold_correctness,
    import_review,
    kappa_after_review,
    read_review_codes,
    review_queue,
    review_size,
    tabulate_review,
)
from textgauge.errors import InputDataError

LABELS = ["economic", "moral", "security", "rights"]
INCLUDE = 'include: "workflow/rules/review.smk"'


def with_review_rules(wd: Path) -> Path:
    """Make sure the workflow copy includes the review rules (the Snakefile may predate them)."""
    snakefile = wd / "Snakefile"
    text = snakefile.read_text()
    if "workflow/rules/review.smk" not in text:
        snakefile.write_text(text.rstrip("\n") + f"\n{INCLUDE}\n")
    return wd


def audit_variant(wd: Path, name: str, **audits) -> str:
    """config/test.yaml plus some audits.* keys, written in key order (params compare it)."""
    cfg = yaml.safe_load((wd / "config/test.yaml").read_text())
    cfg.setdefault("audits", {}).update(audits)
    path = wd / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return f"config/{name}.yaml"


# ------------------------------------------------------------------ library


@pytest.fixture
def corpus():
    preds = pd.DataFrame({
        "id": [f"t{i}" for i in range(10)],
        "label": ["economic", "moral", "moral", None, "rights", "economic", "security",
                  "moral", "economic", "rights"],
        "confidence": [0.3, 0.35, 0.4, None, 0.45, 0.9, 0.95, 0.8, 0.85, 0.99],
        "status": ["ok", "ok", "ok", "invalid", "ok", "ok", "ok", "ok", "ok", "ok"]})
    queue = pd.DataFrame({"rank": [1, 2, 3, 4, 5], "id": ["t3", "t0", "t1", "t2", "t4"],
                          "label": ["", "economic", "moral", "moral", "rights"],
                          "reason": ["invalid_or_failed"] + ["low_confidence"] * 4})
    return preds, queue


def test_round_trip_final_labels_and_tabulation(corpus, tmp_path):
    preds, queue = corpus
    coded = queue.assign(human_label=["Security ", "economic", "rights", "", "moral"])
    path = tmp_path / "coded.csv"
    coded.to_csv(path, index=False)
    gold = pd.DataFrame({"id": ["t9"], "reference": ["moral"]})
    final, tab = import_review(path, preds, LABELS, queue=queue, gold=gold)
    f = final.set_index("id")
    assert f.loc["t3", "label"] == "security" and f.loc["t3", "source"] == "human"
    assert f.loc["t0", "label"] == "economic" and f.loc["t0", "source"] == "human"
    assert f.loc["t1", ["label", "model_label"]].tolist() == ["rights", "moral"]
    assert f.loc["t2", "source"] == "model" and f.loc["t2", "label"] == "moral"  # blank: later
    assert f.loc["t9", ["label", "human_source"]].tolist() == ["moral", "gold"]
    assert f.loc["t5", ["label", "source"]].tolist() == ["economic", "model"]
    assert len(final) == 10 and final["id"].is_unique
    assert tab["n_queue"] == 5 and tab["n_reviewed"] == 4 and tab["n_not_reviewed"] == 1
    assert tab["n_changed"] == 3 and tab["share_changed"] == pytest.approx(0.75)
    assert tab["share_changed_ci_low"] < 0.75 < tab["share_changed_ci_high"]
    pairs = {(c["model_label"], c["human_label"]): c["n"] for c in tab["changes"]}
    assert pairs == {(NO_ANSWER, "security"): 1, ("moral", "rights"): 1, ("rights", "moral"): 1}
    assert tab["sources"] == {"model": 5, "human": 5}
    assert tab["human_sources"] == {"review": 4, "gold": 1}
    reasons = {r["reason"]: r["n_changed"] for r in tab["by_reason"]}
    assert reasons == {"invalid_or_failed": 1, "low_confidence": 2}
    prev = {r["label"]: (r["model_n"], r["final_n"]) for r in tab["prevalence"]}
    assert prev["security"] == (1, 2) and prev["rights"] == (2, 1)
    assert sum(n for _, n in prev.values()) == 10  # the invalid answer got a human label


def test_bad_codes_are_reported_with_rows(corpus):
    preds, queue = corpus
    bad = queue.assign(human_label=["economic", "ecnomic", "", "moral", "Rights?"])
    with pytest.raises(InputDataError, match=r"row 2 \('ecnomic'\).*row 5 \('Rights\?'\)"):
        read_review_codes(bad, LABELS, queue)
    with pytest.raises(InputDataError, match="no column 'human_label'"):
        read_review_codes(queue, LABELS, queue)
    stranger = pd.concat([queue, pd.DataFrame({"id": ["x9"], "label": ["moral"]})])
    stranger["human_label"] = "moral"
    with pytest.raises(InputDataError, match=r"not in the review queue: row 6 \(id x9\)"):
        read_review_codes(stranger, LABELS, queue)
    twice = pd.concat([queue, queue.iloc[[1]]]).assign(human_label="moral")
    with pytest.raises(InputDataError, match=r"more than once: row 2 \(id t0\), row 6"):
        read_review_codes(twice, LABELS, queue)


def test_nothing_reviewed_yet(corpus):
    preds, queue = corpus
    reviewed = read_review_codes(queue.assign(human_label=""), LABELS, queue)
    final = final_labels(preds, reviewed)
    assert (final["source"] == "model").all()
    tab = tabulate_review(final, reviewed, LABELS)
    assert tab["n_reviewed"] == 0 and tab["share_changed"] is None and tab["changes"] == []


# ------------------------------------------------------------------ in the workflow


@pytest.mark.slow
def test_review_and_error_sheet_round_trip_in_the_workflow(tiny_run):
    wd = with_review_rules(tiny_run)
    audit = wd / "results/audits/encoder"
    # the reviewer codes the first 30 texts of the queue: 20 keep the model's label, 10 change
    queue = pd.read_csv(audit / "review_queue.csv", dtype=str, keep_default_na=False)
    assert len(queue) >= 30
    other = {"economic": "moral", "moral": "security", "security": "rights",
             "rights": "economic", "": "economic"}
    human = [""] * len(queue)
    for i in range(30):
        human[i] = other[queue.at[i, "label"]] if i % 3 == 0 else queue.at[i, "label"] or "moral"
    n_changed = sum(1 for i in range(30) if human[i] != queue.at[i, "label"])
    coded_dir = wd / "coded"
    coded_dir.mkdir(exist_ok=True)
    queue.assign(human_label=human).to_csv(coded_dir / "review_encoder.csv", index=False)
    # the researcher codes the error sheet of the encoder: all but the last error
    sheet = pd.read_csv(audit / "error_sheet.csv", dtype=str, keep_default_na=False)
    cats = ["Sarcasm / Irony", "ambiguity", "ambiguity", "mixed signals"]
    sheet["category"] = [cats[i % 4] for i in range(len(sheet))]
    sheet.loc[len(sheet) - 1, "category"] = ""
    sheet.to_csv(coded_dir / "errors_encoder.csv", index=False)

    variant = audit_variant(wd, "review", review_codes={"encoder": "coded/review_encoder.csv"},
                            error_codes={"encoder": "coded/errors_encoder.csv"})
    snakemake(wd, "results/audits/encoder/review.json",
              "results/audits/encoder/error_patterns.json", "--configfile", variant)

    tab = json.loads((audit / "review.json").read_text())
    assert tab["n_queue"] == len(queue) and tab["n_reviewed"] == 30
    assert tab["n_changed"] == n_changed and sum(c["n"] for c in tab["changes"]) == n_changed
    assert tab["share_changed"] == pytest.approx(n_changed / 30)
    final = pd.read_parquet(audit / "final_labels.parquet")
    preds = pd.read_parquet(wd / "results/predictions/encoder.parquet")
    assert set(final["id"]) == set(preds["id"])
    f = final.set_index("id")
    reviewed = dict(zip(queue["id"][:30], human[:30], strict=True))
    assert (f.loc[list(reviewed), "label"] == pd.Series(reviewed)).all()
    assert (f.loc[list(reviewed), "human_source"] == "review").all()
    assert tab["human_sources"] == {"review": 30, "gold": 40}
    assert (f["source"] == "human").sum() == 70

    pat = json.loads((audit / "error_patterns.json").read_text())
    n = len(sheet)
    counts = {r["category"]: r["n"] for r in pat["patterns"]}
    expect = pd.Series([cats[i % 4] for i in range(n - 1)]).value_counts()
    assert counts["ambiguity"] == expect["ambiguity"]
    assert counts["sarcasm_irony"] == expect["Sarcasm / Irony"]
    assert counts["(uncoded)"] == 1 and pat["n_coded"] == n - 1 and pat["n_errors"] == n
    assert sum(r["share"] for r in pat["patterns"] if r["share"] is not None) == pytest.approx(1)

    # a wrong label stops the step with the row, not a traceback
    queue.assign(human_label=["moral", "Ecnomic"] + [""] * (len(queue) - 2)).to_csv(
        coded_dir / "review_bad.csv", index=False)
    bad = audit_variant(wd, "review_bad", review_codes={"encoder": "coded/review_bad.csv"})
    out = snakemake(wd, "results/audits/encoder/review.json", "--forcerun", "import_review",
                    "--configfile", bad, check=False)
    assert out.returncode != 0
    log = " ".join((wd / "results/logs/audit/encoder-review.log").read_text().split())
    assert "row 2 ('Ecnomic')" in log and "Traceback" not in log
    assert "label_map" not in log
    # the good import again, so later tests find its outputs
    snakemake(wd, "results/audits/encoder/review.json", "--configfile", variant)


@pytest.mark.slow
def test_report_shows_the_imported_sections(tiny_run, tmp_path):
    """audit_sections + the template: the imported audits render; unconfigured ones stay out."""
    from textgauge.reporting.report import audit_sections
    from textgauge.steps.report import load_json, report

    wd = tiny_run
    r = wd / "results"
    if not (r / "audits/encoder/review.json").exists():
        test_review_and_error_sheet_round_trip_in_the_workflow(tiny_run)
    config = json.loads((r / "report/manifest.json").read_text())["run_config"]
    models = list(config["models"])
    base = [str(r / f"audits/{m}/audit.json") for m in models]
    extra = [str(r / "audits/encoder/review.json"), str(r / "audits/encoder/error_patterns.json")]
    sections = audit_sections([(p, load_json(p)) for p in base + extra],
                              config["validation"]["review_fraction"])
    enc = sections["models"]["encoder"]
    assert enc["review_import"]["n_reviewed"] == 30 and enc["error_patterns"]["n_coded"] > 0
    assert "retest" not in enc and "review_import" not in sections["models"]["zeroshot"]

    def inputs(audit_paths):
        return {"metrics": [str(r / f"validation/{m}/metrics.json") for m in models],
                "manifests": [str(r / f"predictions/{m}.manifest.json") for m in models],
                "human": str(r / "validation/human/metrics.json"),
                "ingest": str(r / "corpus/ingest.json"), "gold": str(r / "gold/sample.json"),
                "codes": str(r / "gold/codes.json"),
                "training": [str(r / "models/encoder/training.json")], "audits": audit_paths,
                "label_issues": None}

    def render(audit_paths, name):
        out = {k: str(tmp_path / f"{name}.{k}") for k in ("html", "methods", "latex",
                                                         "manifest")}
        report(**inputs(audit_paths), **out, config=config, models=models)
        return Path(out["html"]).read_text()

    html = render(base + extra, "with")
    assert "encoder: human review of the queue" in html
    assert "Reviewed 30 of the" in html and "final_labels.parquet" in html
    assert "error pattern</th>" in html and "sarcasm_irony" in html
    plain = render(base, "without")
    assert "human review of the queue" not in plain and "error pattern</th>" not in plain
    assert "test-retest" not in plain and "prompt stability" not in plain
    assert "audits.error_codes" in plain


# ------------------------------------------------------------- selecting the queue


@pytest.mark.parametrize("n,frac", [(100, 0.15), (101, 0.15), (7, 0.15), (20, 0.1), (50, 0.0)])
def test_review_queue_exact_size_lowest_confidence(n, frac):
    rng = np.random.default_rng(n)
    conf = rng.uniform(0.3, 1, n)
    preds = pd.DataFrame({"id": [f"d{i}" for i in range(n)], "label": "a", "confidence": conf,
                          "status": "ok", "text": "x"})
    q = review_queue(preds, review_fraction=frac, extra_columns=["text"])
    k = math.ceil(round(frac * n, 9))
    assert len(q) == k == review_size(n, frac)
    assert set(q["id"]) == set(preds.nsmallest(k, "confidence")["id"])
    assert q["rank"].tolist() == list(range(1, k + 1))
    assert q["confidence"].is_monotonic_increasing
    assert "text" in q.columns


def test_review_queue_ranks_on_the_calibrated_confidence():
    """An encoder's predictions carry the temperature-scaled ``confidence`` and the raw one;
    the queue follows the calibrated confidence even where the raw one ranks differently."""
    from textgauge.stats import softmax_with_temperature

    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, size=(200, 4))
    raw = softmax_with_temperature(logits, 1.0).max(axis=1)
    cal = softmax_with_temperature(logits, 0.4).max(axis=1)
    preds = pd.DataFrame({"id": [f"d{i:03d}" for i in range(200)], "label": "a",
                          "confidence": cal, "confidence_raw": raw, "status": "ok"})
    q = review_queue(preds, review_fraction=0.15)
    assert set(q["id"]) == set(preds.nsmallest(len(q), "confidence")["id"])
    assert set(q["id"]) != set(preds.nsmallest(len(q), "confidence_raw")["id"])  # differs


def test_review_queue_invalid_first_and_exclusions():
    preds = pd.DataFrame({"id": list("abcdefghij"), "label": ["x"] * 9 + [None],
                          "confidence": [0.9, 0.2, 0.8, 0.7, 0.6, 0.95, 0.99, 0.5, 0.85, None],
                          "status": ["ok"] * 9 + ["failed"]})
    q = review_queue(preds, review_fraction=0.2)
    assert q["id"].tolist() == ["j", "b"]
    assert q["reason"].tolist() == ["invalid_or_failed", "low_confidence"]
    assert q.attrs["threshold"] == 0.2
    q2 = review_queue(preds, review_fraction=0.2, exclude_ids=["j", "b", "a"])
    assert len(q2) == 2 and q2["id"].tolist() == ["h", "e"]


def test_kappa_after_review_accepted_part_is_better():
    rng = np.random.default_rng(4)
    n = 3000
    truth = rng.choice(["pro", "con", "neutral"], n)
    conf = rng.uniform(0.4, 1, n)
    wrong = rng.random(n) > conf  # low confidence -> often wrong
    pred = np.where(wrong, rng.choice(["pro", "con", "neutral"], n), truth)
    preds = pd.DataFrame({"id": [str(i) for i in range(n)], "label": pred,
                          "confidence": conf, "status": "ok"})
    gold = pd.DataFrame({"id": [str(i) for i in range(500)], "reference": truth[:500]})
    out = kappa_after_review(preds, gold, review_fraction=0.15, bootstrap=200).set_index("subset")
    assert out.loc["all_gold", "n"] == 500
    assert out.loc["auto_accepted", "n"] + out.loc["reviewed", "n"] == 500
    assert out.loc["auto_accepted", "kappa"] > out.loc["all_gold", "kappa"]
    assert out.loc["all_gold", "kappa_ci_low"] < out.loc["all_gold", "kappa"] < out.loc[
        "all_gold", "kappa_ci_high"]
    gc = gold_correctness(gold, preds)
    assert gc["correct"].mean() == pytest.approx(out.loc["all_gold", "accuracy"])
