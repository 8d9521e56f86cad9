"""Corrected prevalence (PPI, DSL) and the stage-5 re-validation sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textgauge.audits.core import OVERALL
from textgauge.errors import InputDataError
from textgauge.stats.prevalence import (
    corrected_prevalence,
    dsl_mean,
    ppi_mean,
    revalidation_sample,
)

S, N, N_GOLD = 500, 4000, 300
P_TRUE = np.array([0.3, 0.5, 0.2])


def _simulate(seed: int = 20240501):
    """500 corpora; a classifier that sends 25 % of every class to class 0 (over-predicts it)."""
    rng = np.random.default_rng(seed)
    Y = rng.choice(3, size=(S, N), p=P_TRUE)
    pred = np.where(rng.random((S, N)) < 0.25, 0, Y)
    y = (Y == 0).astype(float)
    f = (pred == 0).astype(float)
    return rng, pred, y, f, y.mean(axis=1)


def _coverage(r: dict, truth: np.ndarray) -> float:
    return float(np.mean((r["ci_low"] <= truth) & (truth <= r["ci_high"])))


@pytest.fixture(scope="module")
def sim():
    return _simulate()


def test_ppi_coverage_simple_random_gold(sim):
    rng, _, y, f, truth = sim
    idx = np.argsort(rng.random((S, N)), axis=1)[:, :N_GOLD]
    yg, fg = np.take_along_axis(y, idx, 1), np.take_along_axis(f, idx, 1)
    naive = f.mean(1)
    se = np.sqrt(naive * (1 - naive) / N)
    naive_cov = _coverage({"ci_low": naive - 1.96 * se, "ci_high": naive + 1.96 * se}, truth)
    ppi = ppi_mean(f, yg, fg)
    ppi_paper = ppi_mean(f, yg, fg, finite_population=False)
    cov, cov_paper = _coverage(ppi, truth), _coverage(ppi_paper, truth)
    print(f"naive {naive_cov:.3f}  ppi {cov:.3f}  ppi(superpop SE) {cov_paper:.3f}")
    assert 0.93 <= cov <= 0.97
    assert 0.93 <= cov_paper <= 0.97
    assert naive_cov < 0.05
    assert abs(np.mean(ppi["estimate"] - truth)) < 0.005  # unbiased
    assert np.mean(naive - truth) > 0.15  # the biased classifier over-predicts class 0
    # DSL with pi = n/N on the same samples: valid (conservative) coverage
    sampled = np.zeros((S, N), bool)
    np.put_along_axis(sampled, idx, True, 1)
    dsl = dsl_mean(f, y, sampled, np.full((S, N), N_GOLD / N))
    assert _coverage(dsl, truth) >= 0.93
    assert abs(np.mean(dsl["estimate"] - truth)) < 0.005


def test_ppi_and_dsl_coverage_stratified_gold(sim):
    """Gold drawn 100 per *predicted* class: unequal inclusion probabilities, weighted."""
    rng, pred, y, f, truth = sim
    order = np.argsort(pred + rng.random((S, N)), axis=1)  # by cell, random within cell
    counts = np.stack([(pred == c).sum(1) for c in range(3)], 1)
    start = np.cumsum(counts, 1) - counts
    pos = np.arange(N)[None, :] - np.take_along_axis(start, np.take_along_axis(pred, order, 1), 1)
    sampled = np.zeros((S, N), bool)
    np.put_along_axis(sampled, order, pos < 100, 1)
    pi = 100 / np.take_along_axis(counts, pred, 1)
    yg, fg = y[sampled].reshape(S, -1), f[sampled].reshape(S, -1)
    wg = (1 / pi)[sampled].reshape(S, -1)
    weighted = ppi_mean(f, yg, fg, weights=wg)
    unweighted_naive_gold = yg.mean(1)  # ignoring the design: biased share in the gold set
    dsl = dsl_mean(f, y, sampled, pi)
    cov_w, cov_dsl = _coverage(weighted, truth), _coverage(dsl, truth)
    print(f"weighted ppi {cov_w:.3f}  dsl {cov_dsl:.3f}")
    assert 0.93 <= cov_w <= 0.97
    assert cov_dsl >= 0.93
    assert abs(np.mean(weighted["estimate"] - truth)) < 0.005
    assert abs(np.mean(dsl["estimate"] - truth)) < 0.005
    assert abs(np.mean(unweighted_naive_gold - truth)) > 0.03  # why the weights are needed


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
