"""Stage 5 coded: the coder on the re-validation sample vs the gold set
(textgauge.audits.revalidation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.audits.simulated import LABELS
from textgauge.audits.revalidation import (
    design_weights,
    revalidation_comparison,
    revalidation_sample,
    revalidation_table,
)
from textgauge.stats import OVERALL, weighted_metrics


def _corpus(n: int = 3000, seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = rng.choice(LABELS, n, p=[0.6, 0.3, 0.1])
    party = rng.choice(["A", "B"], n, p=[0.8, 0.2])
    err = np.where(party == "B", 0.4, 0.1)
    label = np.where(rng.random(n) < err, rng.choice(LABELS, n), truth)
    return pd.DataFrame({"id": [f"c{i}" for i in range(n)], "truth": truth, "party": party,
                         "label": label, "status": "ok"})


def _scored(n_sample: int = 240):
    corpus = _corpus()
    gold = corpus.sample(200, random_state=1)
    drawn = revalidation_sample(corpus[["id", "label", "status"]], n=n_sample,
                                strata=["party"], metadata=corpus[["id", "party"]],
                                exclude_ids=gold["id"], seed=3)
    truth = corpus.set_index("id")["truth"]
    rev = drawn.assign(reference=truth.loc[drawn["id"]].to_numpy())
    g = gold.rename(columns={"truth": "reference"})[["id", "reference", "label", "party"]]
    return corpus, rev, g


def test_design_weights_are_inverse_inclusion_probabilities_adjusted_for_nonresponse():
    _, rev, _ = _scored()
    np.testing.assert_allclose(design_weights(rev), rev["weight"])
    # one item of a cell left without a reference: its cell-mates carry its share
    cell = rev["cell"].iloc[0]
    fewer = rev.drop(index=rev.index[0])
    w = design_weights(fewer)
    in_cell = fewer["cell"] == cell
    assert w[in_cell].sum() == pytest.approx(rev.loc[rev["cell"] == cell, "weight"].sum())


def test_comparison_is_weighted_minus_gold_overall_and_per_stratum():
    _, rev, gold = _scored()
    res = revalidation_comparison(rev, gold, LABELS, ["party"], n_boot=200, seed=7)
    ov = res["overall"]
    assert ov["stratum_col"] == ov["stratum"] == OVERALL
    assert ov["n"] == len(rev) and ov["n_gold"] == len(gold)
    w = weighted_metrics(rev["reference"], rev["label"], LABELS,
                         design_weights=rev["weight"], cells=rev["cell"], n_boot=10)
    assert ov["weighted"]["kappa"]["estimate"] == pytest.approx(w.estimates["kappa"])
    for stat in ("kappa", "macro_f1", "accuracy"):
        d = ov["difference"][stat]
        assert d["estimate"] == pytest.approx(ov["weighted"][stat]["estimate"]
                                              - ov["gold"][stat]["estimate"], abs=1e-12)
        assert d["ci_low"] <= d["estimate"] <= d["ci_high"]
    assert any(k.startswith("f1:") for k in ov["difference"])
    # the rare party B is over-sampled: the sample as drawn is worse than the weighted one
    assert ov["drawn"]["kappa"]["estimate"] < ov["weighted"]["kappa"]["estimate"]
    parties = {r["stratum"]: r for r in res["strata"]}
    assert set(parties) == {"A", "B"}
    assert parties["A"]["n"] + parties["B"]["n"] == len(rev)
    table = revalidation_table(res)
    assert set(table["sample"]) == {"weighted", "drawn", "gold", "difference"}
    assert (table["n_boot"] == 200).all() and (table["confidence"] == 0.95).all()
    again = revalidation_comparison(rev, gold, LABELS, ["party"], n_boot=200, seed=7)
    assert again == res  # seeded


def test_a_stratum_missing_from_gold_has_no_comparison_and_says_so():
    _, rev, gold = _scored()
    res = revalidation_comparison(rev, gold[gold["party"] == "A"], LABELS, ["party"],
                                  n_boot=50)
    b = next(r for r in res["strata"] if r["stratum"] == "B")
    assert b["gold"] is None and b["difference"] is None and "no gold item" in b["note"]
