"""Design-weighted metrics and the stratified bootstrap (textgauge.stats.weighted)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textgauge.errors import InputDataError
from textgauge.stats import (
    INVALID_LABEL,
    independent_difference,
    kappa_summary,
    macro_f1_summary,
    stratified_tables,
    weighted_confusion,
    weighted_metrics,
)
from textgauge.stats.bootstrap import f1_from_tables
from textgauge.stats.kappa import kappa_from_tables

LABELS = ["neg", "neu", "pos"]


def _pairs(n: int = 240, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(LABELS, size=n, p=[0.5, 0.3, 0.2]).astype(object)
    pred = np.where(rng.random(n) < 0.75, truth, rng.choice(LABELS, size=n)).astype(object)
    pred[rng.random(n) < 0.04] = INVALID_LABEL  # invalid answers are errors
    return truth, pred


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_equal_weights_equal_the_unweighted_summaries(weights):
    truth, pred = _pairs()
    m = weighted_metrics(truth, pred, LABELS, weights=weights, n_boot=200, seed=1)
    k = kappa_summary(truth, pred, LABELS, bootstrap=0, weights=weights)
    f = macro_f1_summary(truth, pred, LABELS, bootstrap=200, seed=1)
    assert m.estimates["kappa"] == pytest.approx(k["kappa"], rel=1e-12, abs=1e-15)
    assert m.estimates["macro_f1"] == pytest.approx(f["estimate"], rel=1e-12, abs=1e-15)
    assert list(m.scored) == f["labels"]
    assert m.estimates["accuracy"] == pytest.approx(float(np.mean(truth == pred)))
    s = m.summary()
    assert s["kappa"]["ci_low"] < s["kappa"]["estimate"] < s["kappa"]["ci_high"]
    assert s["n"] == len(truth) and s["n_boot"] == 200 and s["confidence"] == 0.95
    assert not s["weighted"] and s["bootstrap"].startswith("items")


def test_integer_weights_equal_repeated_items():
    truth, pred = _pairs(90)
    w = np.random.default_rng(0).integers(1, 4, size=len(truth))
    a = weighted_metrics(truth, pred, LABELS, design_weights=w, n_boot=10)
    b = weighted_metrics(np.repeat(truth, w), np.repeat(pred, w), LABELS, n_boot=10)
    for s in ("kappa", "macro_f1", "accuracy"):
        assert a.estimates[s] == pytest.approx(b.estimates[s], rel=1e-12)
    np.testing.assert_allclose(a.f1, b.f1)
    conf = weighted_confusion(truth, pred, LABELS, w)
    assert conf.to_numpy().sum() == pytest.approx(w.sum())
    assert list(conf.columns) == [*LABELS, INVALID_LABEL]


def test_stratified_tables_keep_cell_totals_and_weights():
    c1 = np.array([0, 0, 1, 1, 1, 0])
    c2 = np.array([0, 1, 1, 1, 0, 0])
    w = np.array([1.0, 1.0, 5.0, 5.0, 5.0, 1.0])
    cells = np.array([0, 0, 1, 1, 1, 0])
    tabs = stratified_tables(c1, c2, 2, w, cells, n_boot=500, seed=4)
    # each cell is resampled to its own size: the weighted total never changes
    np.testing.assert_allclose(tabs.sum(axis=(1, 2)), w.sum())
    # cell 1 holds only reference 1 (weight 5), cell 0 only reference 0 (weight 1)
    np.testing.assert_allclose(tabs[:, 1, :].sum(axis=1), 15.0)
    again = stratified_tables(c1, c2, 2, w, cells, n_boot=500, seed=4)
    np.testing.assert_array_equal(tabs, again)  # seeded


def test_refuses_bad_weights_and_labels():
    truth, pred = _pairs(20)
    with pytest.raises(InputDataError, match="positive"):
        weighted_metrics(truth, pred, LABELS, design_weights=np.zeros(20), n_boot=5)
    with pytest.raises(InputDataError, match="one weight per item"):
        weighted_metrics(truth, pred, LABELS, design_weights=np.ones(3), n_boot=5)
    with pytest.raises(InputDataError, match="not codebook labels"):
        weighted_metrics(truth, np.array(["x"] * 20, dtype=object), LABELS, n_boot=5)


def test_independent_difference_is_the_difference_with_a_ci():
    t1, p1 = _pairs(200, seed=1)
    t2, p2 = _pairs(150, seed=2)
    seeds = np.random.SeedSequence(7).spawn(2)
    a = weighted_metrics(t1, p1, LABELS, n_boot=300, seed=seeds[0])
    b = weighted_metrics(t2, p2, LABELS, n_boot=300, seed=seeds[1])
    for s in ("kappa", "macro_f1", "f1:neg"):
        d = independent_difference(a, b, s)
        first = a.estimates.get(s, a.f1[0])
        second = b.estimates.get(s, b.f1[0])
        assert d["estimate"] == pytest.approx(first - second, abs=1e-15)
        assert d["ci_low"] <= d["estimate"] <= d["ci_high"]
        assert d["n_boot"] == 300 and d["confidence"] == 0.95
    with pytest.raises(ValueError, match="same seed"):
        independent_difference(weighted_metrics(t1, p1, LABELS, n_boot=10, seed=3),
                               weighted_metrics(t2, p2, LABELS, n_boot=10, seed=3))


def _population(seed: int = 11) -> pd.DataFrame:
    """A finite corpus: predicted label x source cells; the rare predicted label 'pos' (5%)
    is answered badly, so over-sampling it drags the unweighted estimate down."""
    rng = np.random.default_rng(seed)
    n = 20_000
    source = rng.choice(["a", "b"], size=n, p=[0.8, 0.2])
    pred = rng.choice(LABELS, size=n, p=[0.6, 0.35, 0.05]).astype(object)
    good = np.where(pred == "pos", 0.35, np.where(source == "b", 0.6, 0.8))
    other = rng.choice(LABELS, size=n)
    truth = np.where(rng.random(n) < good, pred, other).astype(object)
    cell = pd.Series(pred).astype(str) + " | " + pd.Series(source)
    return pd.DataFrame({"truth": truth, "pred": pred, "cell": cell})


def test_simulation_weighted_is_unbiased_and_covers():
    pop = _population()
    t = pd.crosstab(pd.Categorical(pop["truth"], LABELS),
                    pd.Categorical(pop["pred"], LABELS), dropna=False).to_numpy()
    true_kappa = float(kappa_from_tables(t[None].astype(float), np.eye(3))[0])
    true_f1 = float(f1_from_tables(t[None].astype(float))[0].mean())
    sizes = pop.groupby("cell").size()
    per_cell = 60  # equal allocation: the rare cells are heavily over-sampled
    groups = {c: np.flatnonzero(pop["cell"].to_numpy() == c) for c in sizes.index}
    rng = np.random.default_rng(2024)
    seeds = np.random.SeedSequence(5).spawn(400)
    est, raw, cover, cover_f1 = [], [], 0, 0
    for s in seeds:
        idx = np.concatenate([rng.choice(g, size=per_cell, replace=False)
                              for g in groups.values()])
        d = pop.iloc[idx]
        w = d["cell"].map(sizes / per_cell).to_numpy()
        m = weighted_metrics(d["truth"], d["pred"], LABELS, design_weights=w,
                             cells=d["cell"], n_boot=200, seed=s)
        u = weighted_metrics(d["truth"], d["pred"], LABELS, n_boot=1, seed=0)
        est.append(m.estimates["kappa"])
        raw.append(u.estimates["kappa"])
        lo, hi = m.ci("kappa")
        cover += lo <= true_kappa <= hi
        lo, hi = m.ci("macro_f1")
        cover_f1 += lo <= true_f1 <= hi
    est, raw = np.asarray(est), np.asarray(raw)
    se_mean = est.std(ddof=1) / np.sqrt(len(est))
    # weighted: unbiased (within 3 Monte-Carlo SEs, and tiny in absolute terms)
    assert abs(est.mean() - true_kappa) < max(3 * se_mean, 0.005)
    # unweighted: the sample as drawn over-weights the badly answered rare cells
    assert raw.mean() < true_kappa - 0.05
    assert 0.92 <= cover / len(seeds) <= 0.98
    assert 0.92 <= cover_f1 / len(seeds) <= 0.98


def test_a_difference_undefined_in_many_replicates_gets_no_ci():
    """One text of the second label: kappa is 1 or undefined in every resample, so the
    defined replicates cannot give an honest interval; the estimate stays, the CI goes."""
    from textgauge.stats.weighted import (
        MAX_UNDEFINED_SHARE,
        independent_difference,
        weighted_metrics,
    )

    labels = ["a", "b"]
    small_ref = ["a"] * 24 + ["b"]
    rng = np.random.default_rng(0)
    big_ref = rng.choice(labels, 300)
    big_pred = np.where(rng.random(300) < 0.8, big_ref, rng.choice(labels, 300))
    small = weighted_metrics(small_ref, small_ref, labels, n_boot=500, seed=1)
    big = weighted_metrics(big_ref, big_pred, labels, n_boot=500, seed=2)
    d = independent_difference(small, big, "kappa")
    assert d["n_invalid"] > MAX_UNDEFINED_SHARE * 500  # about (24/25)^25 = 36% of resamples
    assert d["estimate"] == pytest.approx(1.0 - big.estimates["kappa"])
    assert d["ci_low"] is None and d["ci_high"] is None and "no CI" in d["ci_note"]
    ok = independent_difference(big, weighted_metrics(big_ref, big_ref, labels, n_boot=500,
                                                      seed=3), "kappa")
    assert ok["ci_low"] < ok["estimate"] < ok["ci_high"] and ok["ci_note"] == ""
