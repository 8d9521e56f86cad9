"""Design-weighted calibration and shares: equal weights give today's numbers exactly, and
unequal weights move them the way a corpus estimate must."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textgauge.audits.weighting import audit_design, stratified_share
from textgauge.stats import (
    calibration_bins,
    coverage_accuracy_curve,
    expected_calibration_error,
    maximum_calibration_error,
)


def _items(n: int = 400, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.3, 1.0, n)
    correct = rng.random(n) < conf ** 2  # over-confident at low confidence
    return correct, conf


def test_equal_weights_give_the_unweighted_calibration():
    correct, conf = _items()
    ones = np.ones_like(conf)
    plain = calibration_bins(correct, conf)
    weighted = calibration_bins(correct, conf, weights=ones)
    cols = ["bin", "n", "mean_confidence", "accuracy", "gap", "weight"]
    pd.testing.assert_frame_equal(plain[cols], weighted[cols])
    assert expected_calibration_error(correct, conf, weights=ones) == pytest.approx(
        expected_calibration_error(correct, conf), abs=1e-12)
    assert maximum_calibration_error(correct, conf, weights=ones) == pytest.approx(
        maximum_calibration_error(correct, conf), abs=1e-12)
    pd.testing.assert_frame_equal(coverage_accuracy_curve(correct, conf),
                                  coverage_accuracy_curve(correct, conf, weights=ones))
    # a constant weight is no weight either
    assert expected_calibration_error(correct, conf, weights=ones * 7) == pytest.approx(
        expected_calibration_error(correct, conf), abs=1e-12)


def test_weights_move_the_ece_towards_the_heavier_items():
    correct, conf = _items()
    # the confident items stand for many corpus texts, the unconfident ones for few
    w = np.where(conf > 0.8, 10.0, 1.0)
    assert expected_calibration_error(correct, conf, weights=w) != pytest.approx(
        expected_calibration_error(correct, conf))
    bins = calibration_bins(correct, conf, weights=w)
    assert bins["weight"].sum() == pytest.approx(1.0)
    assert (bins["sum_weights"].sum()) == pytest.approx(w.sum())
    curve = coverage_accuracy_curve(correct, conf, weights=w)
    assert curve["coverage"].iloc[-1] == pytest.approx(1.0)


def test_stratified_share_is_the_cell_weighted_mean():
    x = np.array([1, 1, 0, 0, 0, 1], dtype=float)
    cells = np.array(["a", "a", "b", "b", "b", "b"])
    w = np.array([50, 50, 25, 25, 25, 25], dtype=float)  # a: 100 texts, b: 100 texts
    r = stratified_share(x, w, cells)
    assert r["estimate"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.25)
    assert r["ci_low"] < r["estimate"] < r["ci_high"]


def test_a_proportional_sample_gives_no_weights():
    sample = pd.DataFrame({"id": ["a", "b"], "design": "proportional", "cell": "all",
                           "cell_size": 10, "inclusion_prob": 0.2})
    d = audit_design(["a", "b"], sample)
    assert not d.weighted and d.weights_for(["a"]) is None
    ma = sample.assign(design="model_assisted", cell=["x", "y"], cell_size=[10, 30])
    d = audit_design(["a", "b"], ma)
    assert d.weighted and d.weights_for(["b", "a"]).tolist() == [30.0, 10.0]
