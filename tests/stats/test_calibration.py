"""Calibration, coverage-accuracy, review queue, kappa after review (+ their figures)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from textgauge.errors import InputDataError
from textgauge.reporting.plots.audits import plot_coverage_accuracy, plot_reliability_diagram
from textgauge.stats.calibration import (
    calibration_bins,
    coverage_accuracy_curve,
    expected_calibration_error,
    gold_correctness,
    kappa_after_review,
    review_queue,
    review_size,
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


@pytest.mark.parametrize("n,frac", [(100, 0.15), (101, 0.15), (7, 0.15), (20, 0.1), (50, 0.0)])
def test_review_queue_exact_size_lowest_confidence(n, frac):
    rng = np.random.default_rng(n)
    conf = rng.uniform(0.3, 1, n)
    preds = pd.DataFrame({"id": [f"d{i}" for i in range(n)], "label": "a", "confidence": conf,
                          "status": "ok", "text": "x"})
    q = review_queue(preds, review_fraction=frac, extra_columns=["text"])
    k = math.ceil(round(frac * n, 9))
    assert len(q) == k == review_size(n, frac)
    assert set(q["id"]) == set(preds.nsmallest(k, "confidence")["id"])
    assert q["rank"].tolist() == list(range(1, k + 1))
    assert q["confidence"].is_monotonic_increasing
    assert "text" in q.columns


def test_review_queue_invalid_first_and_exclusions():
    preds = pd.DataFrame({"id": list("abcdefghij"), "label": ["x"] * 9 + [None],
                          "confidence": [0.9, 0.2, 0.8, 0.7, 0.6, 0.95, 0.99, 0.5, 0.85, None],
                          "status": ["ok"] * 9 + ["failed"]})
    q = review_queue(preds, review_fraction=0.2)
    assert q["id"].tolist() == ["j", "b"]
    assert q["reason"].tolist() == ["invalid_or_failed", "low_confidence"]
    assert q.attrs["threshold"] == 0.2
    q2 = review_queue(preds, review_fraction=0.2, exclude_ids=["j", "b", "a"])
    assert len(q2) == 2 and q2["id"].tolist() == ["h", "e"]


def test_kappa_after_review_accepted_part_is_better():
    rng = np.random.default_rng(4)
    n = 3000
    truth = rng.choice(["pro", "con", "neutral"], n)
    conf = rng.uniform(0.4, 1, n)
    wrong = rng.random(n) > conf  # low confidence -> often wrong
    pred = np.where(wrong, rng.choice(["pro", "con", "neutral"], n), truth)
    preds = pd.DataFrame({"id": [str(i) for i in range(n)], "label": pred,
                          "confidence": conf, "status": "ok"})
    gold = pd.DataFrame({"id": [str(i) for i in range(500)], "reference": truth[:500]})
    out = kappa_after_review(preds, gold, review_fraction=0.15, n_boot=200).set_index("subset")
    assert out.loc["all_gold", "n"] == 500
    assert out.loc["auto_accepted", "n"] + out.loc["reviewed", "n"] == 500
    assert out.loc["auto_accepted", "kappa"] > out.loc["all_gold", "kappa"]
    assert out.loc["all_gold", "kappa_ci_low"] < out.loc["all_gold", "kappa"] < out.loc[
        "all_gold", "kappa_ci_high"]
    gc = gold_correctness(gold, preds)
    assert gc["correct"].mean() == pytest.approx(out.loc["all_gold", "accuracy"])


def test_figures(tmp_path):
    c, p = _simulated(2000, overconfident=True)
    fig = plot_reliability_diagram(calibration_bins(c, p), ece=expected_calibration_error(c, p))
    assert isinstance(fig, Figure)
    fig.savefig(tmp_path / "rel.png")
    fig2 = plot_coverage_accuracy(coverage_accuracy_curve(c, p), review_fraction=0.15)
    fig2.savefig(tmp_path / "cov.png")
    assert (tmp_path / "rel.png").stat().st_size > 1000
    assert (tmp_path / "cov.png").stat().st_size > 1000
