"""Majority vote, agreement rate, review routing and self-consistency."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textgauge.audits.ensemble import (
    agreement_rate,
    disagreements_to_review,
    majority_vote,
    self_consistency,
)
from textgauge.audits.review_queue import review_queue
from textgauge.errors import InputDataError


def _table(labels, confs, status=None):
    return pd.DataFrame({"id": ["i1", "i2", "i3", "i4", "i5"], "label": labels,
                         "confidence": confs, "status": status or ["ok"] * 5})


@pytest.fixture
def three():
    return {
        "A": _table(["pro", "con", "pro", "pro", "neutral"], [0.9, 0.8, 0.6, 0.7, 0.6]),
        "B": _table(["pro", "con", "con", "con", "neutral"], [0.8, 0.9, 0.9, 0.7, 0.7]),
        "C": _table(["con", "con", "neutral", None, "pro"], [0.7, 0.7, 0.5, None, 0.9],
                    status=["ok", "ok", "ok", "invalid", "ok"]),
    }


def test_majority_vote_hand_example(three):
    v = majority_vote(three).set_index("id")
    # hand-computed: i1 pro 2:1; i2 unanimous con; i3 three-way tie -> con (mean conf .9);
    # i4 pro/con tie at equal confidence (C invalid) -> alphabetical 'con', unresolved;
    # i5 neutral 2:1
    assert v["label"].to_dict() == {"i1": "pro", "i2": "con", "i3": "con", "i4": "con",
                                    "i5": "neutral"}
    assert v["n_votes"].tolist() == [2, 3, 1, 1, 2]
    assert v["n_coders"].tolist() == [3, 3, 3, 2, 3]
    assert v["tie"].tolist() == [False, False, True, True, False]
    assert v["tie_resolved"].tolist() == [False, False, True, False, False]
    assert v["unanimous"].tolist() == [False, True, False, False, False]
    assert v.loc["i1", "agreement"] == pytest.approx(2 / 3)
    assert v.loc["i1", "mean_confidence"] == pytest.approx(0.85)
    assert v.loc["i1", "votes"] == "pro:2;con:1"
    assert v.loc["i4", "label_C"] is None or pd.isna(v.loc["i4", "label_C"])
    assert v.loc["i3", "label_B"] == "con"


def test_agreement_rate(three):
    a = agreement_rate(three)
    assert a["n_items"] == 5
    assert a["unanimous_rate"] == pytest.approx(1 / 5)
    pairs = a["pairs"].set_index(["coder_a", "coder_b"])
    assert pairs.loc[("A", "B"), "agreement"] == pytest.approx(3 / 5)
    assert pairs.loc[("A", "C"), "n"] == 4
    assert pairs.loc[("A", "C"), "agreement"] == pytest.approx(1 / 4)
    assert a["mean_pairwise_agreement"] == pytest.approx(np.mean([3 / 5, 1 / 4, 1 / 4]))


def test_disagreements_to_review(three):
    v = majority_vote(three)
    r = disagreements_to_review(v)
    assert r["id"].tolist() == ["i1", "i3", "i4", "i5"]
    assert r.set_index("id").loc["i3", "reason"] == "ensemble_tie"
    q = review_queue(three["A"], review_fraction=0.2)  # i3 (0.6 ties i5; id order)
    merged = disagreements_to_review(v, q)
    assert merged["id"].tolist()[0] == q["id"].iloc[0]
    assert merged["id"].is_unique
    assert merged["rank"].tolist() == list(range(1, len(merged) + 1))


def test_list_of_tables_and_duplicate_ids(three):
    v = majority_vote([t.assign(model=m) for m, t in three.items()])
    assert {"label_A", "label_B", "label_C"} <= set(v.columns)
    bad = pd.concat([three["A"], three["A"].head(1)])
    with pytest.raises(InputDataError, match="repeat"):
        majority_vote({"A": bad, "B": three["B"]})


def test_self_consistency_samples():
    rng = np.random.default_rng(0)
    ids = [f"t{i}" for i in range(200)]
    truth = rng.choice(["pro", "con"], 200)
    rows = []
    for k in range(5):
        flip = rng.random(200) < 0.2
        lab = np.where(flip, np.where(truth == "pro", "con", "pro"), truth)
        rows.append(pd.DataFrame({"id": ids, "label": lab, "confidence": 0.8, "sample": k}))
    out = self_consistency(pd.concat(rows))
    vote = out["vote"].set_index("id").loc[ids]
    single = rows[0]["label"].to_numpy()
    assert (vote["label"].to_numpy() == truth).mean() > (single == truth).mean()
    assert (vote["agreement"] >= 0.6).all()  # 5 samples, 2 labels: winner has >= 3
    assert not vote["tie"].any()
    assert 0.2 < out["agreement"]["unanimous_rate"] < 0.5  # 0.8^5 + 0.2^5 ~ 0.33
