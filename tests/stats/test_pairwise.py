"""Coder pairs and the human ceiling (textgauge.stats.pairwise)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from textgauge.agreement import (
    compare_with_humans,
    pairwise_agreement,
)


def _study(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 200
    truth = rng.choice(["pos", "neg", "neu"], n, p=[0.3, 0.5, 0.2])

    def noisy(acc):
        return np.where(rng.random(n) < acc, truth, rng.choice(["pos", "neg", "neu"], n))

    humans = pd.DataFrame([{"id": i, "coder": c, "label": lab}
                           for c, acc in (("h1", 0.9), ("h2", 0.85), ("h3", 0.8))
                           for i, lab in enumerate(noisy(acc))])
    preds = pd.DataFrame({"gpt": noisy(0.85), "bert": noisy(0.6)})
    return truth, humans, preds


def test_pairwise_agreement_long_and_wide():
    _, humans, _ = _study()
    tidy = pairwise_agreement(humans, unit="id", coder="coder", label="label")
    assert len(tidy) == 3 and set(tidy.columns) >= {"kappa", "ci_low", "ci_high", "n"}
    wide = humans.pivot(index="id", columns="coder", values="label")
    row = tidy[(tidy.coder_a == "h1") & (tidy.coder_b == "h2")].iloc[0]
    assert row.kappa == pytest.approx(cohen_kappa_score(wide.h1, wide.h2))
    assert pairwise_agreement(wide).kappa.tolist() == pytest.approx(tidy.kappa.tolist())


def test_compare_with_humans():
    truth, humans, preds = _study()
    res = compare_with_humans(humans, pd.Series(truth), preds, threshold=0.7)
    kinds = res.pairs.kind.value_counts().to_dict()
    assert kinds == {"model-human": 6, "human-human": 3, "model-reference": 2,
                     "human-reference": 3}
    s = res.summary.set_index("model")
    assert s.loc["gpt", "kappa_vs_reference"] > s.loc["bert", "kappa_vs_reference"]
    assert s.loc["bert", "decision"] == "fail"
    assert set(res.pairs.decision) <= {"pass", "fail", "inconclusive"}
    json.dumps(res.to_dict())
