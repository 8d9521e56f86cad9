"""Classification metrics and the decision rule (textgauge.stats.classification)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from tests.stats.reference_data import (
    SAS_TABLE,
)
from textgauge.agreement import (
    classification_metrics,
    cohen_kappa,
    cohen_kappa_table,
    decide,
)
from textgauge.stats import (
    INVALID_LABEL,
    kappa_summary,
    macro_f1_summary,
    per_class_f1_ci,
    scored_labels,
)


def test_classification_metrics_sklearn_docs_example():
    # scikit-learn docs, sklearn.metrics.classification_report example:
    # class 0: P .50 R 1.00 F1 .67 (1); class 1: 0 0 0 (1); class 2: 1.00 .67 .80 (3);
    # accuracy .60; macro avg .50 .56 .49; weighted avg .70 .60 .61 (support 5).
    rep = classification_metrics([0, 1, 2, 2, 2], [0, 0, 2, 2, 1])
    pc = rep.per_class.round(2)
    assert pc.precision.tolist() == [0.5, 0.0, 1.0]
    assert pc.recall.tolist() == [1.0, 0.0, 0.67]
    assert pc.f1.tolist() == [0.67, 0.0, 0.8]
    assert pc.support.tolist() == [1, 1, 3]
    av = rep.averages.set_index("average").round(2)
    assert av.loc["macro", ["precision", "recall", "f1"]].tolist() == [0.5, 0.56, 0.49]
    assert av.loc["weighted", ["precision", "recall", "f1"]].tolist() == [0.7, 0.6, 0.61]
    assert round(rep.accuracy, 2) == 0.6
    assert rep.confusion.tolist() == [[1, 0, 0], [1, 0, 0], [0, 1, 2]]
    assert rep.confusion_table(normalized=True).loc[2, 2] == pytest.approx(2 / 3)
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["n"] == 5 and len(d["per_class"]) == 3


def test_decide():
    assert decide({"ci_low": 0.72, "ci_high": 0.9}) == "pass"
    assert decide({"ci_low": 0.5, "ci_high": 0.69}) == "fail"
    assert decide({"ci_low": 0.6, "ci_high": 0.8}) == "inconclusive"
    assert decide(cohen_kappa_table(SAS_TABLE), threshold=0.2) == "pass"


# ------------------------------------------------ how a coder is scored (the rules used everywhere)


def test_per_class_f1_ci_brackets_the_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)
    labs = ["a", "b", "c"]

    def widths(n):
        t = rng.choice(labs, n)
        p = np.where(rng.random(n) < 0.7, t, rng.choice(labs, n))
        ci = per_class_f1_ci(t, p, labs, confidence=0.95, bootstrap=1000, seed=0)
        est = f1_score(t, p, labels=labs, average=None)
        assert (ci["f1_ci_low"] <= est + 1e-12).all() and (est <= ci["f1_ci_high"] + 1e-12).all()
        assert (ci["confidence"] == 0.95).all() and (ci["n_boot"] == 1000).all()
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
        ci = per_class_f1_ci(t, p, labs, bootstrap=400, seed=s).set_index("label")
        hits += ci.loc["a", "f1_ci_low"] <= true_f1 <= ci.loc["a", "f1_ci_high"]
    assert 0.90 <= hits / 200 <= 0.99


def test_kappa_summary_reports_both_intervals_with_level_and_replicates():
    rng = np.random.default_rng(2)
    t = rng.choice(["x", "y", "z"], 300)
    p = np.where(rng.random(300) < 0.8, t, rng.choice(["x", "y", "z"], 300))
    k = kappa_summary(t, p, ["x", "y", "z"], confidence=0.95, bootstrap=500, seed=0)
    assert k["n"] == 300 and k["confidence"] == 0.95 and k["n_boot"] == 500
    assert k["ci_low"] < k["kappa"] < k["ci_high"]
    assert k["boot_ci_low"] < k["kappa"] < k["boot_ci_high"]
    assert k["kappa"] == pytest.approx(cohen_kappa_score(t, p))
    k90 = kappa_summary(t, p, ["x", "y", "z"], confidence=0.90, bootstrap=500, seed=0)
    assert k90["ci_high"] - k90["ci_low"] < k["ci_high"] - k["ci_low"]
    assert k90["ci_low"] == pytest.approx(cohen_kappa(t, p, confidence=0.90).ci_low)


def test_invalid_answers_count_as_errors_everywhere():
    """The invalid-answer rule: an invalid answer is an extra column, never an agreement."""
    ref = ["a", "b", "a", "b"] * 10
    pred = ["a", "b", INVALID_LABEL, "b"] * 10
    k = kappa_summary(ref, pred, ["a", "b"], bootstrap=0)
    assert k["n"] == 40  # nothing dropped
    assert k["kappa"] == pytest.approx(cohen_kappa_score(ref, pred))
    assert k["kappa"] < 1
    f = macro_f1_summary(ref, pred, ["a", "b"], bootstrap=100)
    # invalid answers are false negatives of 'a', not a class of the average
    assert f["labels"] == ["a", "b"]
    assert f["estimate"] == pytest.approx(f1_score(ref, pred, labels=["a", "b"], average="macro"))
    # two runs of one coder that both failed on an item do not agree
    twice = kappa_summary(pred, pred, ["a", "b"], bootstrap=0)
    assert twice["p_observed"] == pytest.approx(0.75)


def test_macro_f1_averages_over_the_labels_present():
    """A label absent from reference and answers is left out of the average (not F1 = 0)."""
    ref = ["a", "b", "a", "c"] * 15
    pred = ["a", "b", "b", "c"] * 15
    f = macro_f1_summary(ref, pred, ["a", "b", "c", "d"], bootstrap=200, seed=0)
    assert f["labels"] == ["a", "b", "c"]
    assert f["estimate"] == pytest.approx(f1_score(ref, pred, average="macro"))
    assert f["ci_low"] <= f["estimate"] <= f["ci_high"]
    assert scored_labels(ref, pred, ["d", "c", "b", "a"]) == ["c", "b", "a"]
