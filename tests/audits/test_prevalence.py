"""Corrected prevalence per stratum (audits.prevalence) and the stage-5 sample (audits.revalidation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textgauge.audits.prevalence import corrected_prevalence
from textgauge.audits.revalidation import revalidation_sample
from textgauge.errors import InputDataError
from textgauge.stats import OVERALL


def _small_world(seed: int = 3):
    rng = np.random.default_rng(seed)
    n = 2000
    party = rng.choice(["left", "right"], n)
    truth = np.where(rng.random(n) < np.where(party == "left", 0.4, 0.2), "support", "oppose")
    pred = np.where(rng.random(n) < 0.2, "support", truth)
    corpus = pd.DataFrame({"id": [f"t{i}" for i in range(n)], "label": pred,
                           "confidence": 0.9, "status": "ok", "party": party})
    corpus.loc[5, "status"] = "invalid"
    corpus.loc[5, "label"] = None
    gold_idx = rng.choice(n, 400, replace=False)
    gold = pd.DataFrame({"id": corpus["id"].to_numpy()[gold_idx], "reference": truth[gold_idx]})
    return corpus, gold, truth


def test_corrected_prevalence_table_matches_formula():
    corpus, gold, truth = _small_world()
    out = corrected_prevalence(corpus, gold, strata=["party"])
    assert set(out["method"]) == {"naive", "ppi", "dsl"}
    assert set(out["stratum_col"]) == {OVERALL, "party"}
    row = out[(out.stratum_col == OVERALL) & (out.label == "support")].set_index("method")
    f = (corpus["label"] == "support").to_numpy(float)
    g = gold.merge(corpus, on="id")
    d = (g["reference"] == "support").to_numpy(float) - (g["label"] == "support").to_numpy(float)
    assert row.loc["ppi", "estimate"] == pytest.approx(f.mean() + d.mean())
    assert row.loc["naive", "estimate"] == pytest.approx(f[corpus.status == "ok"].mean())
    true_share = (truth == "support").mean()
    assert row.loc["ppi", "ci_low"] <= true_share <= row.loc["ppi", "ci_high"]
    assert not row.loc["naive", "ci_low"] <= true_share <= row.loc["naive", "ci_high"]
    assert row.loc["dsl", "estimate"] == pytest.approx(row.loc["ppi", "estimate"], abs=0.02)
    left = out[(out.stratum == "left") & (out.label == "support") & (out.method == "ppi")]
    assert left["n_gold"].iloc[0] == (gold.merge(corpus, on="id")["party"] == "left").sum()


def test_corrected_prevalence_uses_inclusion_probabilities():
    corpus, _, truth = _small_world(seed=5)
    sample = revalidation_sample(corpus, n=300, allocation="equal", seed=1)
    gold = sample[["id", "inclusion_prob"]].assign(
        reference=truth[sample["id"].str[1:].astype(int)])
    out = corrected_prevalence(corpus, gold, methods=("ppi", "dsl"))
    est = out[out.label == "support"].set_index("method")
    true_share = (truth == "support").mean()
    for m in ("ppi", "dsl"):
        assert est.loc[m, "ci_low"] - 0.01 <= true_share <= est.loc[m, "ci_high"] + 0.01
    unweighted = corrected_prevalence(corpus, gold.drop(columns="inclusion_prob"),
                                      methods=("ppi",))
    assert unweighted.set_index("label").loc["support", "estimate"] != pytest.approx(
        est.loc["ppi", "estimate"])


def test_gold_outside_corpus_and_bad_probabilities_are_named():
    corpus, gold, _ = _small_world()
    extra = pd.concat([gold, pd.DataFrame({"id": ["zz9"], "reference": ["support"]})])
    with pytest.raises(InputDataError, match="zz9"):
        corrected_prevalence(corpus, extra)
    bad = gold.assign(inclusion_prob=0.5)
    bad.loc[bad.index[0], "inclusion_prob"] = 0
    with pytest.raises(InputDataError, match=str(bad["id"].iloc[0])):
        corrected_prevalence(corpus, bad)


def test_revalidation_sample_design():
    corpus, gold, _ = _small_world()
    train_ids = ["t1", "t2", "t3"]
    s1 = revalidation_sample(corpus, n=250, strata=["party"],
                             exclude_ids=list(gold["id"]) + train_ids, seed=7)
    s2 = revalidation_sample(corpus, n=250, strata=["party"],
                             exclude_ids=list(gold["id"]) + train_ids, seed=7)
    pd.testing.assert_frame_equal(s1, s2)  # seeded
    assert len(s1) == 250 and s1["id"].is_unique
    assert not set(s1["id"]) & (set(gold["id"]) | set(train_ids))
    design = s1.attrs["design"]
    frame = corpus[~corpus["id"].isin(set(gold["id"]) | set(train_ids))]
    # cells = predicted label (invalid answers: a cell of their own) x party
    assert len(design) == frame.assign(
        lab=frame["label"].fillna("x")).groupby(["lab", "party"]).ngroups
    everything = revalidation_sample(corpus, n=250, strata=["party"]).attrs["design"]
    assert everything["cell"].str.startswith("__invalid__").sum() == 1
    assert design["cell_size"].sum() == len(frame)
    big = design[design["cell_size"] >= 100]
    assert big["cell_n"].max() - big["cell_n"].min() <= 1  # equal allocation
    small = design[design["cell_size"] < 100]
    assert (small["cell_n"] == small["cell_size"]).all()  # capped at the cell size
    counts = s1.groupby("cell").size()
    merged = design.set_index("cell")
    assert (counts == merged.loc[counts.index, "cell_n"]).all()
    assert np.allclose(s1["inclusion_prob"], s1["cell_n"] / s1["cell_size"])
    assert np.allclose(s1["weight"] * s1["inclusion_prob"], 1)
    prop = revalidation_sample(corpus, n=200, strata=["party"], allocation="proportional")
    d = prop.attrs["design"]
    assert d["cell_n"].sum() == 200
    assert np.allclose(d["cell_n"], 200 * d["cell_size"] / d["cell_size"].sum(), atol=1)


def _training_world(seed: int = 11):
    """3000 texts: 1000 labelled training texts (80% 'support', the coder fit on them and is
    right there) and 2000 others (20% 'support', the coder sends 20% of them to 'support').
    The gold sample (300) is drawn from the others only, as the gold sampler does."""
    rng = np.random.default_rng(seed)
    n, n_train = 3000, 1000
    train = np.arange(n) < n_train
    truth = np.where(rng.random(n) < np.where(train, 0.8, 0.2), "support", "oppose")
    pred = np.where(~train & (rng.random(n) < 0.2), "support", truth)
    corpus = pd.DataFrame({"id": [f"t{i}" for i in range(n)], "label": pred, "status": "ok",
                           "confidence": 0.9, "party": rng.choice(["left", "right"], n),
                           "year": rng.choice(["2019", "2020", "2021"], n)})
    ids = corpus["id"].to_numpy()
    gold_idx = rng.choice(np.flatnonzero(~train), 300, replace=False)
    gold = pd.DataFrame({"id": ids[gold_idx], "reference": truth[gold_idx],
                         "inclusion_prob": 300 / (n - n_train)})
    return corpus, gold, truth, train, list(ids[train])


def test_training_texts_are_left_out_of_the_population():
    corpus, gold, truth, train, train_ids = _training_world()
    share_outside = (truth[~train] == "support").mean()  # the population gold was drawn from
    share_all = (truth == "support").mean()
    before = corrected_prevalence(corpus, gold, strata=["party", "year"])
    after = corrected_prevalence(corpus, gold, strata=["party", "year"], exclude_ids=train_ids)
    assert after.attrs["population"] == {"corpus": 3000, "excluded_training": 1000,
                                         "population": 2000}
    assert before.attrs["population"]["excluded_training"] == 0

    def overall(t, m):
        return t[(t.stratum_col == OVERALL) & (t.label == "support")].set_index(
            "method").loc[m]

    for m in ("ppi", "dsl"):
        new, old = overall(after, m), overall(before, m)
        # now: the share among the texts the gold sample could draw, inside the CI
        assert new["ci_low"] <= share_outside <= new["ci_high"]
        assert abs(new["estimate"] - share_outside) < 0.03
        assert new["n_corpus"] == 2000
        # before: not the share where the gold sample was drawn (0.20), CI far from it
        assert abs(old["estimate"] - share_outside) > 0.15
        assert not old["ci_low"] <= share_outside <= old["ci_high"]
    # PPI before: the corpus mean of f (training texts in) plus the errors outside: a mix that
    # is neither the population's share nor the whole corpus's (0.37 vs 0.20 and 0.41)
    old_ppi = overall(before, "ppi")["estimate"]
    assert abs(old_ppi - share_all) > 0.03 and abs(old_ppi - share_outside) > 0.15
    # every stratum variable has its rows, over the population only
    assert set(after["stratum_col"]) == {OVERALL, "party", "year"}
    assert set(after.loc[after.stratum_col == "year", "stratum"]) == {"2019", "2020", "2021"}
    for col in ("party", "year"):
        rows = after[(after.stratum_col == col) & (after.method == "dsl")
                     & (after.label == "support")]
        assert rows["n_corpus"].sum() == 2000 and rows["n_gold"].sum() == 300
        for _, r in rows.iterrows():
            part = (corpus[col] == r["stratum"]).to_numpy() & ~train
            true = (truth[part] == "support").mean()
            assert r["ci_low"] - 0.02 <= true <= r["ci_high"] + 0.02


def test_a_gold_item_among_the_excluded_ids_is_an_error():
    corpus, gold, _, _, train_ids = _training_world()
    with pytest.raises(InputDataError, match="excluded from the prevalence population"):
        corrected_prevalence(corpus, gold, exclude_ids=[*train_ids, gold["id"].iloc[0]])


def test_prevalence_intervals_use_the_confidence_level():
    corpus, gold, _, _, train_ids = _training_world()
    kw = {"exclude_ids": train_ids, "methods": ("ppi", "dsl")}
    at95 = corrected_prevalence(corpus, gold, confidence=0.95, **kw)
    at80 = corrected_prevalence(corpus, gold, confidence=0.80, **kw)
    assert (at80["confidence"] == 0.80).all()
    ratio = (at80["ci_high"] - at80["ci_low"]) / (at95["ci_high"] - at95["ci_low"])
    assert np.allclose(ratio, 1.2816 / 1.96, atol=1e-3)
