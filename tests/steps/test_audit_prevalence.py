"""Step audit_model: the corrected prevalence covers the texts the gold sample could draw.

The gold sampler (steps.gold.sample_gold) leaves the labelled training data out of the gold
sample; audit_model reads the same file (input ``training_ids``), leaves those texts out of
the prevalence population, says how many in audit.json, and reports every corpus stratum.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from textgauge.errors import InputDataError
from textgauge.stats import OVERALL
from textgauge.steps import audit

LABELS = ["oppose", "support"]


def _files(d: Path) -> dict[str, str]:
    rng = np.random.default_rng(4)
    n, n_train, n_gold = 2400, 800, 240
    train = np.arange(n) < n_train
    ids = np.array([f"t{i}" for i in range(n)])
    truth = np.where(rng.random(n) < np.where(train, 0.8, 0.2), "support", "oppose")
    pred = np.where(~train & (rng.random(n) < 0.2), "support", truth)
    corpus = pd.DataFrame({"id": ids, "text": [f"text {i}" for i in ids],
                           "party": rng.choice(["left", "right"], n),
                           "year": rng.choice(["2019", "2020"], n)})
    corpus.to_parquet(d / "corpus.parquet")
    pd.DataFrame({"id": ids, "label": pred, "status": "ok",
                  "confidence": rng.uniform(0.5, 1, n)}).to_parquet(d / "preds.parquet")
    # labelled training data as the user gives it (training.labelled, id column "doc")
    pd.DataFrame({"doc": ids[train], "label": truth[train]}).to_csv(d / "labelled.csv",
                                                                    index=False)
    gold_idx = np.sort(rng.choice(np.flatnonzero(~train), n_gold, replace=False))
    sample = corpus.iloc[gold_idx].assign(stratum="all", inclusion_prob=n_gold / (n - n_train))
    sample.to_parquet(d / "sample.parquet")
    pd.DataFrame({"id": ids[gold_idx], "reference": truth[gold_idx]}).to_parquet(
        d / "reference.parquet")
    pd.DataFrame({"id": ids[gold_idx], "coder": "a", "label": truth[gold_idx]}).to_parquet(
        d / "codes.parquet")
    pd.DataFrame({"stratum_col": [OVERALL], "stratum": [OVERALL], "flagged": [False]}).to_csv(
        d / "per_stratum.csv", index=False)
    return {"share_outside": float((truth[~train] == "support").mean()),
            "share_all": float((truth == "support").mean())}


def _audit(d: Path, **extra) -> tuple[dict, pd.DataFrame]:
    out = d / extra.pop("name", "out")
    out.mkdir()
    audit.audit_model(
        model="enc", predictions=str(d / "preds.parquet"), reference=str(d / "reference.parquet"),
        codes=str(d / "codes.parquet"), sample=str(d / "sample.parquet"),
        corpus=str(d / "corpus.parquet"), per_stratum=str(d / "per_stratum.csv"),
        audit=str(out / "audit.json"), error_sheet=str(out / "error_sheet.csv"),
        review_queue=str(out / "review_queue.csv"), prevalence=str(out / "prevalence.csv"),
        labels=LABELS, strata=["party", "year"], scope="corpus", review_fraction=0.1,
        kappa_threshold=0.7, confidence=0.9, bootstrap=20, seed=1, **extra)
    return (json.loads((out / "audit.json").read_text()),
            pd.read_csv(out / "prevalence.csv", dtype={"stratum": str}))


def test_audit_leaves_training_texts_out_and_reports_every_stratum(tmp_path):
    truth = _files(tmp_path)
    res, table = _audit(tmp_path, training_ids=str(tmp_path / "labelled.csv"),
                        training_id_column="doc")
    pop = res["prevalence_population"]
    assert (pop["corpus"], pop["excluded_training"], pop["population"]) == (2400, 800, 1600)
    assert "training" in pop["excluded_reason"] and pop["note"] is None
    assert pop["strata"] == ["party", "year"] and pop["confidence"] == 0.9
    assert set(table["stratum_col"]) == {OVERALL, "party", "year"}
    assert (table["confidence"] == 0.9).all()
    ppi = table[(table.stratum_col == OVERALL) & (table.label == "support")
                & (table.method == "ppi")].iloc[0]
    assert ppi["n_corpus"] == 1600
    assert ppi["ci_low"] <= truth["share_outside"] <= ppi["ci_high"]
    # without the training ids: the whole corpus, and the PPI estimate misses the population
    res0, table0 = _audit(tmp_path, name="all")
    assert res0["prevalence_population"]["excluded_training"] == 0
    old = table0[(table0.stratum_col == OVERALL) & (table0.label == "support")
                 & (table0.method == "ppi")].iloc[0]
    assert old["n_corpus"] == 2400
    assert not old["ci_low"] <= truth["share_outside"] <= old["ci_high"]


def test_gold_drawn_from_every_text_keeps_the_whole_corpus_and_says_so(tmp_path):
    _files(tmp_path)
    res, table = _audit(tmp_path, training_ids=str(tmp_path / "labelled.csv"),
                        training_id_column="doc", exclude_from_gold=False)
    pop = res["prevalence_population"]
    assert (pop["excluded_training"], pop["population"]) == (0, 2400)
    assert pop["training_in_population"] == 800
    assert "exclude_from_gold is false" in pop["note"]
    assert table["n_corpus"].max() == 2400


def test_a_wrong_id_column_names_the_file(tmp_path):
    _files(tmp_path)
    with pytest.raises(InputDataError, match="labelled.csv.*'id'"):
        _audit(tmp_path, training_ids=str(tmp_path / "labelled.csv"), training_id_column="id")
