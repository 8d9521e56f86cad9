"""Step audit_model (and ensemble) under a model-assisted gold sample: the headline numbers
are design-weighted (weights from textgauge.stats.design.gold_design), the sample as drawn
is beside them, and a proportional sample keeps the historical path (as_drawn None)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from textgauge.stats import OVERALL
from textgauge.steps import audit

LABELS = ["oppose", "support"]


def _files(d: Path, design: str = "model_assisted") -> None:
    """A corpus whose first pass is right on confident texts and often wrong on the rest;
    the gold sample over-samples the low-confidence cells (as model_assisted does)."""
    rng = np.random.default_rng(11)
    n = 3000
    ids = np.array([f"t{i}" for i in range(n)])
    truth = np.where(rng.random(n) < 0.3, "support", "oppose")
    conf = rng.uniform(0.5, 1.0, n)
    low = conf < 0.7
    wrong = rng.random(n) < np.where(low, 0.45, 0.05)
    pred = np.where(wrong, np.where(truth == "support", "oppose", "support"), truth)
    corpus = pd.DataFrame({"id": ids, "text": [f"text {i}" for i in ids],
                           "party": rng.choice(["left", "right"], n)})
    corpus.to_parquet(d / "corpus.parquet")
    pd.DataFrame({"id": ids, "label": pred, "status": "ok",
                  "confidence": conf}).to_parquet(d / "preds.parquet")
    cell = np.array([f"{p} | band {'0' if lo else '1'} | all" for p, lo in zip(pred, low,
                                                                                strict=True)])
    take = {c: (80 if "band 0" in c else 40) for c in set(cell)}
    if design == "proportional":
        cell = np.full(n, "all")
        take = {"all": 240}
    rows = []
    for c, k in take.items():
        members = np.flatnonzero(cell == c)
        drawn = rng.choice(members, min(k, len(members)), replace=False)
        rows.append(corpus.iloc[np.sort(drawn)].assign(
            stratum="all", design=design, cell=c, cell_size=len(members),
            inclusion_prob=len(drawn) / len(members)))
    sample = pd.concat(rows, ignore_index=True)
    sample.to_parquet(d / "sample.parquet")
    t = dict(zip(ids, truth, strict=True))
    ref = pd.DataFrame({"id": sample["id"], "reference": sample["id"].map(t)})
    ref.to_parquet(d / "reference.parquet")
    ref.rename(columns={"reference": "label"}).assign(coder="a").to_parquet(
        d / "codes.parquet")
    pd.DataFrame({"stratum_col": [OVERALL], "stratum": [OVERALL], "flagged": [False]}).to_csv(
        d / "per_stratum.csv", index=False)


def _audit(d: Path) -> dict:
    out = d / "out"
    out.mkdir()
    return audit.audit_model(
        model="enc", predictions=str(d / "preds.parquet"), reference=str(d / "reference.parquet"),
        codes=str(d / "codes.parquet"), sample=str(d / "sample.parquet"),
        corpus=str(d / "corpus.parquet"), per_stratum=str(d / "per_stratum.csv"),
        audit=str(out / "audit.json"), error_sheet=str(out / "error_sheet.csv"),
        review_queue=str(out / "review_queue.csv"), prevalence=str(out / "prevalence.csv"),
        labels=LABELS, strata=["party"], scope="corpus", review_fraction=0.1,
        kappa_threshold=0.7, confidence=0.9, bootstrap=30, seed=1)


def _ppi(rows: list[dict]) -> float:
    return next(r["estimate"] for r in rows if r["stratum_col"] == OVERALL
                and r["label"] == "support" and r["method"] == "ppi")


def test_model_assisted_audit_weights_and_keeps_the_sample_as_drawn(tmp_path):
    _files(tmp_path)
    res = _audit(tmp_path)
    saved = json.loads((tmp_path / "out" / "audit.json").read_text())
    assert saved["design"]["design"] == "model_assisted" and saved["design"]["weighted"]
    assert saved["design"]["n_cells"] == 4
    drawn = saved["as_drawn"]
    assert set(drawn) >= {"calibration", "coverage_curve", "review", "asymmetry", "prevalence",
                          "shift"}
    # low-confidence (error-prone) texts are over-sampled: as drawn, the coder looks worse
    # calibrated and less accurate than it is on the corpus
    assert res["calibration"]["ece"] != pytest.approx(drawn["calibration"]["ece"])
    acc = {r["subset"]: r["accuracy"] for r in res["review"]["kappa"]}
    acc_drawn = {r["subset"]: r["accuracy"] for r in drawn["review"]["kappa"]}
    assert acc["all_gold"] > acc_drawn["all_gold"]
    # the corrected prevalence uses the design's inclusion probabilities; as drawn it takes
    # the gold items for a simple random sample
    truth = 0.3
    assert abs(_ppi(res["prevalence"]) - truth) < abs(_ppi(drawn["prevalence"]) - truth)
    assert _ppi(res["prevalence"]) != pytest.approx(_ppi(drawn["prevalence"]))
    assert all(r.get("weighted") for r in res["asymmetry"])


def test_proportional_audit_has_no_as_drawn(tmp_path):
    _files(tmp_path, design="proportional")
    res = _audit(tmp_path)
    assert res["design"]["design"] == "proportional" and not res["design"]["weighted"]
    assert res["as_drawn"] is None
    assert "sum_weights" not in res["calibration"]["bins"][0]


def test_ensemble_headline_is_weighted_with_the_sample_as_drawn_beside(tmp_path):
    _files(tmp_path)
    res = audit.ensemble(
        predictions=[str(tmp_path / "preds.parquet")] * 2, reference=str(
            tmp_path / "reference.parquet"), sample=str(tmp_path / "sample.parquet"),
        audit=str(tmp_path / "ens.json"), votes=str(tmp_path / "votes.parquet"),
        models=["a", "b"], labels=LABELS, confidence=0.9, bootstrap=30, seed=1)
    assert res["design"]["weighted"]
    assert res["kappa"]["kappa"] > res["as_drawn"]["kappa"]["kappa"]
    assert res["kappa"]["ci_low"] <= res["kappa"]["kappa"] <= res["kappa"]["ci_high"]


def test_positional_flip_rate_is_weighted_under_model_assisted(tmp_path):
    _files(tmp_path)
    sample = pd.read_parquet(tmp_path / "sample.parquet")
    low = sample["cell"].str.contains("band 0").to_numpy()
    preds = pd.read_parquet(tmp_path / "preds.parquet").set_index("id").loc[sample["id"]]
    fixed = pd.DataFrame({"id": sample["id"], "label": preds["label"].to_numpy(),
                          "status": "ok", "label_order": "oppose|support"})
    # the order flips the answer on the low-confidence (over-sampled) texts only
    flipped = np.where(low, np.where(fixed["label"] == "support", "oppose", "support"),
                       fixed["label"])
    other = fixed.assign(label=flipped, label_order="support|oppose")
    fixed.to_parquet(tmp_path / "fixed.parquet")
    other.to_parquet(tmp_path / "reversed.parquet")
    res = audit.positional_audit(
        model="p", fixed=str(tmp_path / "fixed.parquet"),
        others=[str(tmp_path / "reversed.parquet")], reference=str(
            tmp_path / "reference.parquet"), sample=str(tmp_path / "sample.parquet"),
        audit=str(tmp_path / "positional.json"), orders=["reversed"], labels=LABELS,
        confidence=0.9, bootstrap=0, seed=1)
    assert res["design"]["weighted"]
    assert res["as_drawn"]["any_flip_rate"] == pytest.approx(low.mean())
    # weighted: the share of the corpus in the low-confidence cells
    cells = sample.drop_duplicates("cell")
    share = cells.loc[cells["cell"].str.contains("band 0"), "cell_size"].sum() / cells[
        "cell_size"].sum()
    assert res["any_flip_rate"] == pytest.approx(share)
    assert res["pairs"][0]["flip_rate"] == pytest.approx(share)
