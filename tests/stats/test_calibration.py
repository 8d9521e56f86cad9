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
    expected_calibration_error,
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
