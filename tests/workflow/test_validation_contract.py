"""The contract between the validation/audit steps, their options and the report.

* Every key the report reads from a validation or audit output is written by the step that
  writes that file: the steps run on a synthetic gold set, the report renders their outputs
  through a loader that records each key it asks for, and no key may be missing (the report
  once filtered strata on ``flag`` while the audit wrote ``flagged``: "No stratum flagged"
  beside a stratum at kappa 0.33). A new key in the report that no step writes fails here.
* ``validation.bootstrap`` and ``validation.confidence`` reach every interval of every output
  (each records its level and replicates; none is capped).
* Through snakemake: a degraded stratum is flagged in the report, and the per-stratum numbers
  in ``validation/{model}/per_stratum.csv`` and in the audit output are the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake
from textgauge.reporting.report import REPORT_KEYS
from textgauge.stats import cohen_kappa
from textgauge.steps import audit, report, review, validate

LABELS = ["economic", "moral", "security", "rights"]
PARTIES = ["A", "B", "C"]
BOOTSTRAP, CONFIDENCE, SEED = 2000, 0.90, 5

#: keys the report reads that a step writes only in some runs (key -> when)
OPTIONAL = {
    "human.simulated_truth": "synthetic example only (gold.simulate)",
}


# ------------------------------------------------------------------ a synthetic gold set
def _synthetic(d: Path, design: str = "proportional") -> dict[str, Any]:
    """Inputs of the validation, audit and review steps: a gold set of 180 items in three
    parties, two human coders, a corpus-scope coder that is poor in party C and a gold-scope
    prompted coder (with a second label order), and the summaries the report shows.

    ``design`` "model_assisted": the gold sample (and its summary, gold.json) is drawn by
    the gold step itself around the corpus-scope coder's predictions, so every gold number
    is design-weighted and the report shows the weighted and the as-drawn figures."""
    rng = np.random.default_rng(0)
    n_corpus, n_gold = 900, 180
    ids = [f"t{i:04d}" for i in range(n_corpus)]
    party = rng.choice(PARTIES, n_corpus)
    truth = rng.choice(LABELS, n_corpus, p=[0.4, 0.3, 0.2, 0.1])
    corpus = pd.DataFrame({"id": ids, "text": [f"text {i}" for i in ids], "party": party})
    corpus.to_parquet(d / "corpus.parquet")
    pd.DataFrame({"id": ids, "truth": truth}).to_parquet(d / "truth.parquet")  # stage 5
    gold_idx = np.sort(rng.choice(n_corpus, n_gold, replace=False))
    if design == "model_assisted":
        from textgauge.steps import gold as gold_steps

        first = np.random.default_rng(7)
        err = np.where(party == "C", 0.8, 0.1)
        fp = pd.DataFrame({"id": ids, "status": "ok",
                           "label": np.where(first.random(n_corpus) < err,
                                             first.choice(LABELS, n_corpus), truth),
                           "confidence": first.uniform(0.4, 1, n_corpus)})
        fp.to_parquet(d / "first_pass.parquet")
        gold_steps.sample_gold(corpus=str(d / "corpus.parquet"), labelled=None,
                               sample=str(d / "sample.parquet"), summary=str(d / "gold.json"),
                               size=n_gold, strata=["party"], seed=3, labels=LABELS,
                               design="model_assisted", first_pass="encoder",
                               confidence_bands=2,
                               first_pass_predictions=str(d / "first_pass.parquet"))
        drawn = pd.read_parquet(d / "sample.parquet")
        gold_idx = np.sort(pd.Index(ids).get_indexer(drawn["id"]))
    sample = corpus.iloc[gold_idx].reset_index(drop=True)
    if design == "model_assisted":
        sample = pd.read_parquet(d / "sample.parquet")
    sample.to_parquet(d / "sample.parquet")
    gold_truth = truth[gold_idx]

    def noisy(lab, err):
        return np.where(rng.random(len(lab)) < err, rng.choice(LABELS, len(lab)), lab)

    codes = pd.concat([pd.DataFrame({"id": sample["id"], "coder": c, "label": noisy(gold_truth, e)})
                       for c, e in (("coder_a", 0.1), ("coder_b", 0.15))])
    codes.to_parquet(d / "codes.parquet")
    pd.DataFrame({"id": sample["id"], "reference": gold_truth}).to_parquet(d / "reference.parquet")

    err = np.where(party == "C", 0.8, 0.1)  # the encoder is poor in party C
    enc = pd.DataFrame({"id": ids, "label": noisy(truth, err), "status": "ok",
                        "confidence": rng.uniform(0.4, 1, n_corpus)})
    enc.loc[enc.index[:7], ["label", "status"]] = [None, "failed"]  # invalid answers
    # a temperature-scaled encoder keeps its uncalibrated confidence: the audit shows both
    enc["confidence_raw"] = np.clip(enc["confidence"] + 0.2, 0, 1)
    enc.to_parquet(d / "encoder.parquet")
    zs = pd.DataFrame({"id": sample["id"], "label": noisy(gold_truth, 0.3), "status": "ok",
                       "confidence": rng.uniform(0.3, 1, n_gold),
                       "label_order": "|".join(LABELS), "prompt_hash": "h0"})
    zs.to_parquet(d / "zeroshot.parquet")
    rev = zs.assign(label=noisy(gold_truth, 0.3), label_order="|".join(LABELS[::-1]))
    rev.to_parquet(d / "zeroshot-reversed.parquet")
    variant = zs.assign(label=noisy(gold_truth, 0.35), prompt_hash="h1")
    variant.to_parquet(d / "zeroshot-variant.parquet")
    earlier = zs.assign(label=noisy(zs["label"].to_numpy(), 0.1))
    earlier.to_parquet(d / "zeroshot-earlier.parquet")
    for m in ("encoder", "zeroshot"):
        (d / f"{m}.manifest.json").write_text(json.dumps(
            {"model_revision": f"{m}-rev", "prompt_hash": "h0"}))
    summaries = {
        "ingest": {"rows_read": n_corpus, "rows_kept": n_corpus, "rows_rejected": 0,
                   "rejected_by_reason": {}},
        "gold": {"size": n_gold, "strata": ["party"], "seed": 3, "excluded_training_ids": 0},
        "codes": {"counts": fixture_counts(n_gold)},
    }
    if design == "model_assisted":  # the gold step wrote it
        del summaries["gold"]
    for name, content in summaries.items():
        (d / f"{name}.json").write_text(json.dumps(content))
    return {"n_gold": n_gold}


def fixture_counts(n_gold: int) -> dict[str, Any]:
    """codes.json counts of the shape steps.gold.import_codes writes (keys: COUNT_KEYS; the
    methods sentence is checked on a real import in tests/workflow/test_ties_workflow.py)."""
    return {"sample_size": n_gold, "coders": 2, "codes": 2 * n_gold, "coded": n_gold,
            "uncoded": 0, "missing_per_coder": {"coder_a": 0, "coder_b": 0},
            "rows_missing_per_coder": {}, "majority": n_gold, "tied": 0, "adjudicated": 0,
            "resolved_by_lead_coder": 0, "resolved_at_random": 0, "excluded_ties": 0,
            "excluded": 0, "evaluated": n_gold}


def _config() -> dict[str, Any]:
    return {
        "project": {"name": "contract test", "synthetic": True, "seed": SEED},
        "labels": {lab: f"{lab} framing" for lab in LABELS},
        "models": {"encoder": {"kind": "encoder", "base_model": "tiny", "scope": "corpus"},
                   "zeroshot": {"kind": "prompt", "model": "tiny-llm", "prompt": "p.jinja",
                                "scope": "gold"}},
        "validation": {"kappa_threshold": 0.7, "confidence": CONFIDENCE,
                       "bootstrap": BOOTSTRAP, "review_fraction": 0.15},
        "gold": {}, "training": {},
    }


def _run_steps(d: Path) -> dict[str, list[str]]:
    """Every step of validate/audit/review on the synthetic set; returns the report inputs."""
    opts = {"confidence": CONFIDENCE, "bootstrap": BOOTSTRAP}
    common = {"reference": str(d / "reference.parquet"), "labels": LABELS, "seed": SEED}
    (d / "out").mkdir()
    o = d / "out"
    validate.human_agreement(codes=str(d / "codes.parquet"), sample=str(d / "sample.parquet"),
                             truth=None, coders=None, metrics=str(o / "human.json"),
                             pairwise=str(o / "pairwise.csv"), labels=LABELS, seed=SEED,
                             kappa_threshold=0.7, **opts)
    audits: list[str] = []
    for m in ("encoder", "zeroshot"):
        (o / m).mkdir()
        validate.evaluate(
            model=m, predictions=str(d / f"{m}.parquet"), codes=str(d / "codes.parquet"),
            sample=str(d / "sample.parquet"), human=str(o / "human.json"),
            **{k: str(o / m / f"{k}.{'json' if k == 'metrics' else 'csv'}") for k in
               ("metrics", "per_class", "confusion", "per_stratum", "vs_coders")},
            strata=["party"], kappa_threshold=0.7, **common, **opts)
        audit.audit_model(
            model=m, predictions=str(d / f"{m}.parquet"), codes=str(d / "codes.parquet"),
            sample=str(d / "sample.parquet"), corpus=str(d / "corpus.parquet"),
            per_stratum=str(o / m / "per_stratum.csv"), audit=str(o / m / "audit.json"),
            error_sheet=str(o / m / "error_sheet.csv"),
            review_queue=str(o / m / "review_queue.csv"),
            prevalence=str(o / m / "prevalence.csv"), strata=["party"],
            scope=_config()["models"][m]["scope"], review_fraction=0.15, kappa_threshold=0.7,
            **common, **opts)
        audits.append(str(o / m / "audit.json"))
    audit.positional_audit(model="zeroshot", fixed=str(d / "zeroshot.parquet"),
                           others=[str(d / "zeroshot-reversed.parquet")],
                           sample=str(d / "sample.parquet"),
                           audit=str(o / "zeroshot" / "positional.json"), orders=["reversed"],
                           **common, **opts)
    (o / "ensemble").mkdir()
    audit.ensemble(predictions=[str(d / "encoder.parquet"), str(d / "zeroshot.parquet")],
                   sample=str(d / "sample.parquet"), audit=str(o / "ensemble/ensemble.json"),
                   votes=str(o / "ensemble/votes.parquet"), models=["encoder", "zeroshot"],
                   **common, **opts)
    review.retest(model="zeroshot", current=str(d / "zeroshot.parquet"),
                  current_manifest=str(d / "zeroshot.manifest.json"),
                  earlier=str(d / "zeroshot-earlier.parquet"), earlier_manifest=None,
                  retest=str(o / "zeroshot/retest.json"), **common, **opts)
    review.prompt_stability(model="zeroshot", base=str(d / "zeroshot.parquet"),
                            variants=[str(d / "zeroshot-variant.parquet")],
                            audit=str(o / "zeroshot/prompt_stability.json"),
                            base_prompt="p.jinja", templates=["p2.jinja"],
                            sample=str(d / "sample.parquet"), **common, **opts)
    sheet = pd.read_csv(o / "encoder/error_sheet.csv", dtype={"id": str})
    sheet.assign(category="ambiguity").to_csv(d / "coded_sheet.csv", index=False)
    review.import_error_sheet(model="encoder", coded=str(d / "coded_sheet.csv"),
                              sheet=str(o / "encoder/error_sheet.csv"),
                              patterns=str(o / "encoder/error_patterns.json"))
    queue = pd.read_csv(o / "encoder/review_queue.csv", dtype={"id": str})
    queue.assign(human_label=LABELS[0]).to_csv(d / "coded_queue.csv", index=False)
    review.import_review(model="encoder", coded=str(d / "coded_queue.csv"),
                         queue=str(o / "encoder/review_queue.csv"),
                         predictions=str(d / "encoder.parquet"),
                         reference=str(d / "reference.parquet"),
                         final=str(o / "encoder/final_labels.parquet"),
                         review=str(o / "encoder/review.json"), labels=LABELS,
                         confidence=CONFIDENCE)
    validate.compare(predictions=[str(d / "encoder.parquet"), str(d / "zeroshot.parquet")],
                     reference=str(d / "reference.parquet"), codes=str(d / "codes.parquet"),
                     sample=str(d / "sample.parquet"), comparisons=str(o / "comparisons.json"),
                     table=str(o / "comparisons.csv"), models=["encoder", "zeroshot"],
                     labels=LABELS, seed=SEED, **opts)
    audits += _stage5(d, o, opts)
    spend = _spend(d, o)
    audits += [str(o / "zeroshot/positional.json"), str(o / "ensemble/ensemble.json"),
               str(o / "zeroshot/retest.json"), str(o / "zeroshot/prompt_stability.json"),
               str(o / "encoder/error_patterns.json"), str(o / "encoder/review.json")]
    return {"audits": audits, "metrics": [str(o / m / "metrics.json")
                                          for m in ("encoder", "zeroshot")],
            "comparisons": str(o / "comparisons.json"), "spend": spend}


def _spend(d: Path, o: Path) -> str:
    """Rule spend on the prompted coder's gold predictions (with usage, two answers reused
    from a checkpoint) against a plan of the shape cost_plan writes, with one benchmark
    file; returns spend.json."""
    from textgauge.steps import plan as plan_steps

    res = o / "results"
    (res / "predictions/zeroshot").mkdir(parents=True)
    (res / "benchmarks/predict/zeroshot").mkdir(parents=True)
    zs = pd.read_parquet(d / "zeroshot.parquet").assign(
        usage_prompt_tokens=300, usage_completion_tokens=3, usage_cached_tokens=0)
    zs["answer_reused"] = zs.index < 2
    zs.to_parquet(res / "predictions/zeroshot/gold.parquet")
    (res / "benchmarks/predict/zeroshot/gold.tsv").write_text(
        "s\th:m:s\tmax_rss\tcpu_time\n36.0\t0:00:36\t500.0\t30.0\n")
    planned = {"models": {"zeroshot": {"requests": len(zs), "input_tokens": 300 * len(zs),
                                       "output_tokens": 3 * len(zs), "gpu_hours": 0.001,
                                       "gpu_hours_requested": 0.2}},
               "totals": {"cost_expected_usd": 0.0, "gpu_hours": 0.001,
                          "gpu_hours_requested": 0.2},
               "price_table_as_of": ["2025-11-01"]}
    (o / "plan.json").write_text(json.dumps(planned))
    out = o / "spend.json"
    plan_steps.spend(plan=str(o / "plan.json"),
                     predictions=[str(res / "predictions/zeroshot/gold.parquet")],
                     spend=str(out), models=_config()["models"],
                     batch_api={"zeroshot": False, "encoder": False},
                     gpu={"zeroshot": 1, "encoder": 1}, results=str(res))
    return str(out)


def _stage5(d: Path, o: Path, opts: dict[str, Any]) -> list[str]:
    """Stage 5 completed: the re-validation sample drawn from the encoder's predictions, its
    sheets filled by two noisy coders, imported as gold codes are, and scored
    (rule revalidation_metrics); returns the report inputs (sample and metrics)."""
    from textgauge.steps import gold as gold_steps

    r = o / "revalidation"
    coders = ["coder_a", "coder_b"]
    sheets = [str(r / "sheets" / f"{c}.csv") for c in coders]
    (r / "sheets").mkdir(parents=True)
    audit.revalidation_sample(predictions=str(d / "encoder.parquet"),
                              corpus=str(d / "corpus.parquet"), gold=str(d / "sample.parquet"),
                              train=None, sample=str(r / "sample.parquet"), sheets=sheets,
                              model="encoder", revalidation_size=120, strata=["party"],
                              coders=coders, seed=SEED)
    truth = pd.read_parquet(d / "truth.parquet").set_index("id")["truth"]
    rng = np.random.default_rng(1)
    filled = {}
    for c, path in zip(coders, sheets, strict=True):
        sheet = pd.read_csv(path, dtype=str, keep_default_na=False)
        lab = truth.loc[sheet["id"]].to_numpy()
        sheet["label"] = np.where(rng.random(len(lab)) < 0.15, rng.choice(LABELS, len(lab)), lab)
        sheet.loc[sheet.index[:2], "label"] = ""  # missing codes are counted
        filled[c] = str(r / f"filled_{c}.csv")
        sheet.to_csv(filled[c], index=False)
    gold_steps.import_codes(sample=str(r / "sample.parquet"), codes=str(r / "codes.parquet"),
                            reference=str(r / "reference.parquet"),
                            adjudication_sheet=str(r / "adjudication_sheet.csv"),
                            summary=str(r / "codes.json"), labels=LABELS, sheet_files=filled,
                            coders=coders, ties="random", seed=SEED)
    audit.revalidation_metrics(sample=str(r / "sample.parquet"),
                               reference=str(r / "reference.parquet"),
                               codes=str(r / "codes.json"),
                               predictions=str(d / "encoder.parquet"),
                               gold_reference=str(d / "reference.parquet"),
                               gold_sample=str(d / "sample.parquet"),
                               corpus=str(d / "corpus.parquet"), metrics=str(r / "metrics.json"),
                               table=str(r / "metrics.csv"), model="encoder", labels=LABELS,
                               strata=["party"], seed=SEED, **opts)
    return [str(r / "sample.parquet"), str(r / "metrics.json")]


# ------------------------------------------------------------------ recording what is read
class Recorded(dict):
    """A loaded JSON object that records every key asked for and not there."""

    def __init__(self, data: dict, where: str, misses: set[str]):
        super().__init__({k: _record(v, f"{where}.{k}", misses) for k, v in data.items()})
        self.where, self.misses = where, misses

    def _check(self, key: Any) -> None:
        if not dict.__contains__(self, key):
            self.misses.add(f"{self.where}.{key}")

    def __getitem__(self, key: Any) -> Any:
        self._check(key)
        return dict.__getitem__(self, key)

    def get(self, key: Any, default: Any = None) -> Any:
        self._check(key)
        return dict.get(self, key, default)


def _record(value: Any, where: str, misses: set[str]) -> Any:
    if isinstance(value, dict):
        return Recorded(value, where, misses)
    if isinstance(value, list):
        return [_record(v, f"{where}[]", misses) for v in value]
    return value


def _file_kind(path: Path) -> str:
    """The output a path is, named by the step that writes it."""
    if path.parent.name == "out" and path.name == "human.json":
        return "human"
    if path.parent.name == "revalidation":
        return f"revalidation.{path.stem}"
    if path.name == "gold.json":
        return "gold"
    return {"metrics.json": "metrics", "audit.json": "audit"}.get(path.name, path.stem)


@pytest.fixture(scope="module")
def contract_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("contract")
    _synthetic(d)
    inputs = _run_steps(d)
    return {"dir": d, **inputs}


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same steps on a model-assisted gold sample (design-weighted outputs)."""
    d = tmp_path_factory.mktemp("contract_weighted")
    _synthetic(d, design="model_assisted")
    inputs = _run_steps(d)
    return {"dir": d, "gold_recorded": True, **inputs}


def _render(run: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> tuple[str, set[str]]:
    d, o = run["dir"], run["dir"] / "out"
    misses: set[str] = set()
    mine = {str(Path(p)) for p in [*run["audits"], *run["metrics"], str(o / "human.json"),
                                   run["comparisons"], run["spend"]]}
    if run.get("gold_recorded"):  # written by the gold step itself
        mine.add(str(d / "gold.json"))
    plain = report.load_json

    def recording(path: str | Path) -> Any:
        data = plain(path)
        if str(Path(path)) in mine:
            return _record(data, _file_kind(Path(path)), misses)
        return data

    monkeypatch.setattr(report, "load_json", recording)
    out = {k: str(d / f"report.{k}") for k in ("html", "methods", "latex", "manifest")}
    report.report(metrics=run["metrics"], manifests=[str(d / "encoder.manifest.json"),
                                                     str(d / "zeroshot.manifest.json")],
                  human=str(o / "human.json"), ingest=str(d / "ingest.json"),
                  gold=str(d / "gold.json"), codes=str(d / "codes.json"), training=None,
                  label_issues=None, audits=run["audits"], **out, config=_config(),
                  models=["encoder", "zeroshot"], comparisons=run["comparisons"],
                  spend=run["spend"])
    return Path(out["html"]).read_text(encoding="utf-8"), misses


def test_every_key_the_report_reads_is_written_by_its_step(contract_run, monkeypatch):
    html, misses = _render(contract_run, monkeypatch)
    assert "Machine coder: encoder" in html
    assert "Paired comparisons" in html and "encoder − zeroshot" in html
    assert "Spend: planned vs actual" in html
    assert "before calibration" in html and "ranked on the uncalibrated confidence" in html
    added = {f"audit.{k}" for k in REPORT_KEYS}  # the report's own keys, not audit.json's
    unexpected = sorted(m for m in misses if m not in OPTIONAL and m not in added)
    assert not unexpected, ("the report reads keys that no step writes: "
                            f"{unexpected}; write them in the step or drop them from the report")


def test_every_key_the_report_reads_is_written_under_a_model_assisted_design(weighted_run,
                                                                          monkeypatch):
    """The design-weighted branch of the report (the as-drawn column, the gold design section,
    the as-drawn ECE, flip rate and ensemble kappa) reads only keys the steps write."""
    html, misses = _render(weighted_run, monkeypatch)
    assert "Gold design" in html and "as drawn" in html.lower()
    added = {f"audit.{k}" for k in REPORT_KEYS}
    unexpected = sorted(m for m in misses if m not in OPTIONAL and m not in added)
    assert not unexpected, ("the report reads keys that no step writes: "
                            f"{unexpected}; write them in the step or drop them from the report")
    o = weighted_run["dir"] / "out"
    for path in (o / "encoder/metrics.json", o / "human.json", o / "encoder/audit.json",
                 o / "ensemble/ensemble.json", o / "zeroshot/positional.json",
                 o / "zeroshot/prompt_stability.json"):
        out = json.loads(path.read_text())
        assert out["design"]["weighted"] is True and out["as_drawn"] is not None, path
    methods = (weighted_run["dir"] / "report.methods").read_text()
    assert "designed around the predictions of encoder" in methods


def test_the_recorder_catches_the_old_flag_key():
    """The old defect: the report filtered strata rows on 'flag', the audit wrote 'flagged'."""
    misses: set[str] = set()
    row = _record({"strata": [{"flagged": True}]}, "audit", misses)["strata"][0]
    assert row.get("flag") is None and misses == {"audit.strata[].flag"}


def test_a_stratum_flagged_by_the_audit_is_flagged_in_the_report(contract_run, monkeypatch):
    o = contract_run["dir"] / "out"
    table = pd.read_csv(o / "encoder/per_stratum.csv")
    flagged = table[table["flagged"]]
    assert flagged[["stratum_col", "stratum"]].values.tolist() == [["party", "C"]]
    audit_json = json.loads((o / "encoder/audit.json").read_text())
    assert [(r["stratum_col"], r["stratum"]) for r in audit_json["flagged_strata"]] == [
        ("party", "C")]
    html, _ = _render(contract_run, monkeypatch)
    section = html[html.index("Machine coder: encoder"):html.index("Machine coder: zeroshot")]
    assert "Flagged strata" in section and "party=C" in section
    assert "No stratum flagged" not in section


def _intervals(obj: Any, where: str = "") -> Iterator[tuple[str, dict]]:
    """Every dict in an output that holds a CI (a *ci_low key)."""
    if isinstance(obj, dict):
        if any(k.endswith("ci_low") for k in obj):
            yield where, obj
        for k, v in obj.items():
            yield from _intervals(v, f"{where}.{k}")
    elif isinstance(obj, list):
        for v in obj:
            yield from _intervals(v, f"{where}[]")


def test_bootstrap_and_confidence_reach_every_interval(contract_run):
    """validation.bootstrap 2000 and confidence 0.90: recorded beside every CI, and the CIs
    are the 90% ones (nothing capped at 1000/500, nothing left at 0.95)."""
    o = contract_run["dir"] / "out"
    seen = 0
    for path in sorted(o.rglob("*.json")):
        data = json.loads(path.read_text())
        for where, ci in _intervals(data):
            seen += 1
            level = ci.get("confidence", data.get("confidence"))
            assert level == CONFIDENCE, f"{path.name}{where}: confidence {level}"
            reps = ci.get("n_boot", data.get("n_boot"))
            assert reps in (BOOTSTRAP, 0), f"{path.name}{where}: n_boot {reps}"
            if "boot_ci_low" in ci or where.endswith("macro_f1") or where.endswith("alpha"):
                assert reps == BOOTSTRAP, f"{path.name}{where}: bootstrap without replicates"
    for path in sorted(o.rglob("*.csv")):
        if path.stat().st_size <= 1:  # prevalence.csv of a gold-scope coder: empty
            continue
        df = pd.read_csv(path)
        if any(c.endswith("ci_low") for c in df.columns) and len(df):
            seen += 1
            assert (df["confidence"] == CONFIDENCE).all(), path.name
            assert df["n_boot"].isin([BOOTSTRAP, 0]).all(), path.name
    assert seen > 20
    # the 90% interval: the analytic kappa CI equals the one at level 0.90
    metrics = json.loads((o / "zeroshot/metrics.json").read_text())
    ref = pd.read_parquet(contract_run["dir"] / "reference.parquet")
    zs = pd.read_parquet(contract_run["dir"] / "zeroshot.parquet")
    both = ref.merge(zs, on="id")
    k = cohen_kappa(both["reference"], both["label"], labels=LABELS, confidence=CONFIDENCE)
    assert metrics["kappa"]["ci_low"] == pytest.approx(k.ci_low)
    assert metrics["macro_f1"]["n_boot"] == BOOTSTRAP
    human = json.loads((o / "human.json").read_text())
    assert human["alpha"]["n_boot"] == BOOTSTRAP and human["alpha"]["confidence"] == CONFIDENCE


# ------------------------------------------------------------------ through snakemake
def _merged(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` as snakemake merges a --configfile."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.mark.slow
def test_degraded_stratum_is_flagged_in_the_report_and_the_numbers_agree(tmp_path):
    """The tiny workflow (its prompted coder only, on the 40 gold items) with the coder's
    answers in one party made wrong: the report flags that stratum, and per_stratum.csv and
    audit.json hold the same numbers for it."""
    wd = copy_workflow(tmp_path / "wf")
    cfg = _merged(yaml.safe_load((wd / "config.yaml").read_text()),
                  yaml.safe_load((wd / "config/test.yaml").read_text()))
    cfg["models"] = {"zeroshot": cfg["models"]["zeroshot"]}  # no training: a quicker DAG
    # the only config file (a --configfile would be merged into config.yaml's models)
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(wd)
    r = wd / "results"
    sample = pd.read_parquet(r / "gold/sample.parquet")
    party = sample["party"].value_counts().index[0]  # the largest stratum
    in_party = set(sample.loc[sample["party"] == party, "id"].astype(str))
    preds = pd.read_parquet(r / "predictions/zeroshot.parquet")
    ref = pd.read_parquet(r / "gold/reference.parquet").set_index("id")["reference"]
    wrong = {lab: LABELS[(i + 1) % len(LABELS)] for i, lab in enumerate(LABELS)}
    bad = preds["id"].astype(str).isin(in_party)
    preds.loc[bad, "label"] = preds.loc[bad, "id"].map(ref).map(wrong)
    preds.loc[bad, "status"] = "ok"
    preds.to_parquet(r / "predictions/zeroshot.parquet")  # newer than what it feeds
    snakemake(wd)

    table = pd.read_csv(r / "validation/zeroshot/per_stratum.csv")
    row = table[(table["stratum_col"] == "party") & (table["stratum"] == party)].iloc[0]
    assert row["flagged"] and row["kappa"] < 0.1
    html = (r / "report/index.html").read_text()
    section = html[html.index("Machine coder: zeroshot"):]
    assert "Flagged strata" in section and f"party={party}" in section
    assert re.search(rf"party = {re.escape(str(party))}.*?flagged", section, re.S)

    audit_json = json.loads((r / "audits/zeroshot/audit.json").read_text())
    same = [s for s in audit_json["strata"]
            if s["stratum_col"] == "party" and str(s["stratum"]) == str(party)]
    assert len(same) == 1
    for col in ("n", "kappa", "kappa_ci_low", "kappa_ci_high", "macro_f1", "macro_f1_ci_low",
                "macro_f1_ci_high", "flagged"):
        assert same[0][col] == row[col], col
    assert str(party) in [f["stratum"] for f in audit_json["flagged_strata"]]


def test_the_fixture_codes_summary_has_every_count_import_codes_writes():
    """The made-up codes.json above must not drift from what import_codes writes."""
    from textgauge.steps.gold import COUNT_KEYS

    assert set(fixture_counts(10)) == set(COUNT_KEYS)


def test_stage5_and_the_shift_reach_the_report(contract_run, monkeypatch):
    """Stage 5 (re-validation vs gold, design-weighted, per stratum) and the per-stratum shift
    (party C, where the encoder is poor, differs from the rest) are in the report."""
    o = contract_run["dir"] / "out"
    rv = json.loads((o / "revalidation/metrics.json").read_text())
    assert rv["counts"]["sample_size"] == rv["n_sample"] == 120
    assert rv["counts"]["missing_per_coder"] == {"coder_a": 2, "coder_b": 2}
    assert rv["overall"]["weighted"]["weighted"] and rv["overall"]["difference"]["kappa"]
    shift = {r["stratum"]: r for r in json.loads((o / "encoder/audit.json").read_text())["shift"]}
    assert shift["C"]["shifted"] and shift["C"]["kappa_diff_ci_high"] < 0
    assert shift["C"]["n_boot"] == BOOTSTRAP and shift["C"]["confidence"] == CONFIDENCE
    html, _ = _render(contract_run, monkeypatch)
    assert "Coder re-validated: <b>encoder</b>" in html and 'alt="stage 5 minus gold"' in html
    section = html[html.index("encoder: shift between strata"):]
    assert "Strata whose κ differs from the rest" in section[:3000]
    assert "party=C (" in section[:3000]
    assert 'alt="per-stratum shift encoder"' in html
