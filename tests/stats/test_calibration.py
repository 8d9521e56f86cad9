"""Calibration and coverage-accuracy (textgauge.stats.calibration) and their figures."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from textgauge.errors import InputDataError
from textgauge.reporting.plots.audits import plot_coverage_accuracy, plot_reliability_diagram
from textgauge.stats.calibration import (
    calibration_bins,
    coverage_accuracy_curve,
    ece_if_calibrated,
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    softmax_with_temperature,
    temperature_scaling,
)


def _simulated(n: int = 20000, overconfident: bool = False, seed: int = 0):
    rng = np.random.default_rng(seed)
    p_true = rng.uniform(0.5, 1.0, n)  # probability of being right
    correct = rng.random(n) < p_true
    conf = np.clip(p_true + 0.25, 0, 1) if overconfident else p_true
    return correct, conf


def test_ece_calibrated_vs_overconfident():
    c, p = _simulated()
    ece_ok = expected_calibration_error(c, p)
    c2, p2 = _simulated(overconfident=True)
    ece_bad = expected_calibration_error(c2, p2)
    assert ece_ok < 0.02
    assert ece_bad > 0.15
    bins = calibration_bins(c2, p2, n_bins=10)
    used = bins[bins.n > 0]
    assert (used["gap"] < 0).all()  # over-confident: accuracy below confidence everywhere
    assert bins["n"].sum() == len(c2)
    q = calibration_bins(c, p, n_bins=5, strategy="quantile")
    assert q["n"].min() > 0.15 * len(c)


def test_ece_hand_example_and_bad_input():
    # bins (0.6,0.7]: 2 items conf .65, 1 right; (0.9,1]: 2 items conf .95, both right
    c = [1, 0, 1, 1]
    p = [0.65, 0.65, 0.95, 0.95]
    assert expected_calibration_error(c, p, n_bins=10) == pytest.approx(
        0.5 * abs(0.5 - 0.65) + 0.5 * abs(1 - 0.95))
    with pytest.raises(InputDataError):
        expected_calibration_error([1], [1.5])


def test_coverage_accuracy_curve():
    c = np.array([1, 1, 0, 1, 0])
    p = np.array([0.9, 0.8, 0.8, 0.6, 0.3])
    curve = coverage_accuracy_curve(c, p)
    assert curve["threshold"].tolist() == [0.9, 0.8, 0.6, 0.3]
    assert curve["n_accepted"].tolist() == [1, 3, 4, 5]
    assert curve["accuracy"].tolist() == pytest.approx([1, 2 / 3, 3 / 4, 3 / 5])
    assert curve["coverage"].iloc[-1] == 1
    c2, p2 = _simulated(seed=1)
    acc = coverage_accuracy_curve(c2, p2)["accuracy"].to_numpy()
    assert acc[len(acc) // 10] > acc[-1] + 0.1  # confident items are more often right


def test_figures(tmp_path):
    c, p = _simulated(2000, overconfident=True)
    fig = plot_reliability_diagram(calibration_bins(c, p), ece=expected_calibration_error(c, p))
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "rel.png")
    fig2 = plot_coverage_accuracy(coverage_accuracy_curve(c, p), review_fraction=0.15)
    fig2.savefig(tmp_path / "cov.png")
    assert (tmp_path / "rel.png").stat().st_size > 1000
    assert (tmp_path / "cov.png").stat().st_size > 1000


# ---------------------------------------------------------------- temperature scaling
def _tempered(n: int = 20000, k: int = 4, true_t: float = 2.5, seed: int = 3):
    """Logits whose labels are drawn from softmax(z / true_t): the right temperature is known."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, size=(n, k))
    p = softmax_with_temperature(z, true_t)
    y = (rng.random(n)[:, None] > np.cumsum(p, axis=1)).sum(axis=1)
    return z, y


def test_fit_temperature_recovers_a_known_temperature():
    for true_t in (0.5, 2.5):
        z, y = _tempered(true_t=true_t)
        assert fit_temperature(z, y) == pytest.approx(true_t, rel=0.05)


def test_temperature_scaling_never_worse_and_keeps_the_argmax():
    z, y = _tempered(n=3000, true_t=3.0, seed=5)
    res = temperature_scaling(z, y)
    assert res["nll_after"] <= res["nll_before"]
    assert res["ece_after"] < res["ece_before"]  # over-confident logits get softer
    assert res["temperature"] > 1 and res["at_bound"] is False and res["n"] == 3000
    assert res["accuracy"] == pytest.approx(float((z.argmax(1) == y).mean()))
    p1, pt = softmax_with_temperature(z, 1.0), softmax_with_temperature(z, res["temperature"])
    assert (p1.argmax(1) == pt.argmax(1)).all()
    assert pt.sum(axis=1) == pytest.approx(np.ones(len(z)))
    # already calibrated: T stays near 1 and the NLL cannot get worse
    z1, y1 = _tempered(n=3000, true_t=1.0, seed=6)
    r1 = temperature_scaling(z1, y1)
    assert r1["temperature"] == pytest.approx(1.0, abs=0.1)
    assert r1["nll_after"] <= r1["nll_before"]
    # a tiny fit set: still never worse than T = 1
    r2 = temperature_scaling(z[:5], y[:5])
    assert r2["nll_after"] <= r2["nll_before"] + 1e-12


def test_temperature_scaling_edge_cases():
    assert fit_temperature(np.zeros((0, 3)), np.zeros(0, dtype=int)) == 1.0
    empty = temperature_scaling(np.zeros((0, 3)), np.zeros(0, dtype=int))
    assert empty["n"] == 0 and empty["temperature"] == 1.0
    # separable (every item right with a big margin): T runs to its lower bound, flagged
    z = np.array([[5.0, 0.0], [0.0, 5.0]] * 10)
    res = temperature_scaling(z, np.array([0, 1] * 10))
    assert res["at_bound"] and res["temperature"] == pytest.approx(0.05, rel=1e-2)
    assert negative_log_likelihood([[0.0, 0.0]], [1]) == pytest.approx(np.log(2))
    with pytest.raises(ValueError):
        softmax_with_temperature(z, 0.0)
    with pytest.raises(InputDataError):
        fit_temperature([[np.nan, 0.0]], [0])


def test_ece_if_calibrated_is_the_binning_noise():
    rng = np.random.default_rng(9)
    p = rng.uniform(0.5, 1.0, 300)
    noise = ece_if_calibrated(p, seed=1)
    assert 0 < noise < 0.1
    assert ece_if_calibrated(p, seed=1) == noise  # seeded
    big = ece_if_calibrated(rng.uniform(0.5, 1.0, 20000), n_sim=20)
    assert big < noise / 3  # shrinks with n
    assert np.isnan(ece_if_calibrated([]))
