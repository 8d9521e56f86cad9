"""The workflow's validation layer: per-class F1 CIs and the evaluation of one coder."""

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from textgauge.steps.validation import kappa_summary, per_class_f1_ci


def test_per_class_f1_ci_brackets_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)
    labs = ["a", "b", "c"]

    def widths(n):
        t = rng.choice(labs, n)
        p = np.where(rng.random(n) < 0.7, t, rng.choice(labs, n))
        ci = per_class_f1_ci(t, p, labs, 1000, 0, 0.95)
        est = f1_score(t, p, labels=labs, average=None)
        assert (ci["f1_ci_low"] <= est + 1e-12).all() and (est <= ci["f1_ci_high"] + 1e-12).all()
        return (ci["f1_ci_high"] - ci["f1_ci_low"]).to_numpy()

    assert (widths(2000) < widths(200)).all()


def test_per_class_f1_ci_covers_the_population_value():
    """Coverage of the percentile interval for one class over 200 simulated studies."""
    rng = np.random.default_rng(1)
    labs = ["a", "b"]
    # population: prevalence 0.3 of 'a', recall 0.8, false-positive rate 0.1
    prec = 0.3 * 0.8 / (0.3 * 0.8 + 0.7 * 0.1)
    true_f1 = 2 * prec * 0.8 / (prec + 0.8)
    hits = 0
    for s in range(200):
        t = np.where(rng.random(400) < 0.3, "a", "b")
        flip = rng.random(400)
        p = np.where(t == "a", np.where(flip < 0.8, "a", "b"), np.where(flip < 0.1, "a", "b"))
        ci = per_class_f1_ci(t, p, labs, 400, s, 0.95).set_index("label")
        hits += ci.loc["a", "f1_ci_low"] <= true_f1 <= ci.loc["a", "f1_ci_high"]
    assert 0.90 <= hits / 200 <= 0.99


def test_kappa_summary_reports_both_intervals():
    rng = np.random.default_rng(2)
    t = rng.choice(["x", "y", "z"], 300)
    p = np.where(rng.random(300) < 0.8, t, rng.choice(["x", "y", "z"], 300))
    k = kappa_summary(t, p, ["x", "y", "z"], 0.95, 500, 0)
    assert k["n"] == 300
    assert k["ci_low"] < k["kappa"] < k["ci_high"]
    assert k["boot_ci_low"] < k["kappa"] < k["boot_ci_high"]
    assert k["kappa"] == pytest.approx(cohen_kappa_score(t, p))
