"""Steps of workflow/rules/validate.smk (textgauge.steps.validate), called directly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from textgauge.steps.validate import evaluate, human_agreement

LABELS = ["economic", "moral", "security", "rights"]


def test_evaluate_counts_invalid_and_unanswered_items_as_errors(tmp_path):
    rng = np.random.default_rng(3)
    n = 120
    ids = [f"g{i:03d}" for i in range(n)]
    truth = rng.choice(LABELS, n)
    pd.DataFrame({"id": ids, "reference": truth}).to_parquet(tmp_path / "reference.parquet")
    pd.DataFrame({"id": ids, "party": rng.choice(["A", "B"], n)}).to_parquet(
        tmp_path / "sample.parquet")
    codes = pd.concat([pd.DataFrame({"id": ids, "coder": c, "label": truth})
                       for c in ("a", "b")])
    codes.to_parquet(tmp_path / "codes.parquet")
    pred = np.where(rng.random(n) < 0.8, truth, rng.choice(LABELS, n))
    preds = pd.DataFrame({"id": ids, "label": pred, "status": "ok", "confidence": 0.8})
    preds.loc[:4, ["label", "status"]] = [None, "invalid"]
    preds = preds.iloc[:-3]  # three gold items never answered
    preds.to_parquet(tmp_path / "preds.parquet")
    kw = {"labels": LABELS, "seed": 1, "kappa_threshold": 0.7, "confidence": 0.95,
          "bootstrap": 300}
    human_agreement(codes=str(tmp_path / "codes.parquet"), sample=str(tmp_path / "sample.parquet"),
                    truth=None, coders=None, metrics=str(tmp_path / "human.json"),
                    pairwise=str(tmp_path / "pairwise.csv"), **kw)
    out = {k: str(tmp_path / f"{k}.out") for k in ("metrics", "per_class", "confusion",
                                                  "per_stratum", "vs_coders")}
    m = evaluate(model="m", predictions=str(tmp_path / "preds.parquet"),
                 reference=str(tmp_path / "reference.parquet"), codes=str(tmp_path / "codes.parquet"),
                 sample=str(tmp_path / "sample.parquet"), human=str(tmp_path / "human.json"),
                 **out, strata=["party"], **kw)
    assert m["n_gold"] == m["n_evaluated"] == n and m["n_valid"] == n - 8
    assert m["coverage"] == pytest.approx((n - 8) / n)
    assert m["status_counts"] == {"ok": n - 8, "invalid": 5, "missing": 3}
    answered = np.array(list(preds.set_index("id").reindex(ids)["label"].fillna("x")))
    answered[:5] = "x"
    assert m["kappa"]["kappa"] == pytest.approx(cohen_kappa_score(truth, answered))
    table = pd.read_csv(out["per_stratum"])
    assert table.loc[0, "n"] == n and table.loc[0, "kappa"] == pytest.approx(m["kappa"]["kappa"])
    assert json.loads(open(out["metrics"]).read())["per_stratum"][0]["coverage"] == pytest.approx(
        (n - 8) / n)
