"""PPI and DSL (textgauge.stats.prevalence): coverage of their intervals by simulation."""

from __future__ import annotations

import numpy as np
import pytest

from textgauge.stats.prevalence import dsl_mean, ppi_mean

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
