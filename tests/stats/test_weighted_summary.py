"""Design-weighted blocks in the schemas of the unweighted summaries
(textgauge.stats.weighted_summary)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, precision_recall_fscore_support

from textgauge.stats import (
    INVALID_LABEL,
    classification_summary,
    kappa_summary,
    macro_f1_summary,
    weighted_metrics,
)
from textgauge.stats.weighted_summary import (
    CI_METHOD,
    classification_block,
    confusion_frame,
    kappa_block,
    macro_f1_block,
    per_class_table,
)

LABELS = ["a", "b", "c"]


def _data(n: int = 150, seed: int = 0):
    rng = np.random.default_rng(seed)
    truth = rng.choice(LABELS, n, p=[0.5, 0.3, 0.2])
    pred = np.where(rng.random(n) < 0.75, truth, rng.choice(LABELS, n)).astype(object)
    pred[:4] = INVALID_LABEL
    return truth, pred


def test_equal_weights_reproduce_the_unweighted_schemas_and_numbers():
    truth, pred = _data()
    wm = weighted_metrics(truth, pred, LABELS, design_weights=np.full(len(truth), 3.0),
                          n_boot=300, seed=1)
    k = kappa_block(wm, LABELS)
    plain = kappa_summary(truth, pred, LABELS, bootstrap=300, seed=1)
    assert set(plain) <= set(k) and k["ci_method"] == CI_METHOD
    for key in ("kappa", "p_observed", "p_expected", "n"):
        assert k[key] == pytest.approx(plain[key])
    assert k["ci_low"] < k["kappa"] < k["ci_high"] and k["se"] > 0
    assert k["sum_weights"] == pytest.approx(3 * len(truth))
    f = macro_f1_block(wm)
    pf = macro_f1_summary(truth, pred, LABELS, bootstrap=300, seed=1)
    assert set(pf) <= set(f) and f["estimate"] == pytest.approx(pf["estimate"])
    assert f["labels"] == pf["labels"]
    cls = classification_block(wm, LABELS)
    pcls, pdf, pcm = classification_summary(truth, pred, LABELS)
    assert set(pcls) <= set(cls)
    for key in ("accuracy", "balanced_accuracy", "mcc"):
        assert cls[key] == pytest.approx(pcls[key])
    for avg in ("macro", "micro", "weighted"):
        for m in ("precision", "recall", "f1"):
            assert cls["averages"][avg][m] == pytest.approx(pcls["averages"][avg][m])
    table = per_class_table(wm, LABELS)
    assert list(table["label"]) == LABELS
    for m in ("precision", "recall", "f1"):
        assert table[m].to_numpy() == pytest.approx(pdf[m].to_numpy())
    assert table["support"].to_numpy() == pytest.approx(3 * pdf["support"].to_numpy())
    assert (table["f1_ci_low"] <= table["f1"]).all() and (table["f1"] <= table["f1_ci_high"]).all()
    cm = confusion_frame(wm)
    assert cm.to_numpy() == pytest.approx(3 * pcm.to_numpy())
    assert list(cm.index) == list(pcm.index) and cm.index.name == "true"


def test_weights_give_the_population_table_statistics():
    """Items of a cell standing for 10 texts each count 10 times: every block equals the
    plain statistic of the population where each item is repeated by its weight."""
    truth, pred = _data(120, seed=3)
    w = np.where(np.arange(len(truth)) % 3 == 0, 10.0, 1.0)
    cells = np.where(w > 1, "heavy", "light")
    wm = weighted_metrics(truth, pred, LABELS, design_weights=w, cells=cells, n_boot=200,
                          seed=2, weights=None)
    reps = np.repeat(np.arange(len(truth)), w.astype(int))
    big_t, big_p = truth[reps], pred[reps]
    assert kappa_block(wm, LABELS)["kappa"] == pytest.approx(cohen_kappa_score(big_t, big_p))
    p, r, f, s = precision_recall_fscore_support(big_t, big_p, labels=LABELS, zero_division=0)
    table = per_class_table(wm, LABELS)
    assert table["precision"].to_numpy() == pytest.approx(p)
    assert table["recall"].to_numpy() == pytest.approx(r)
    assert table["f1"].to_numpy() == pytest.approx(f)
    assert table["support"].to_numpy() == pytest.approx(s)
    cls = classification_block(wm, LABELS)
    assert cls["accuracy"] == pytest.approx(np.mean(big_t == big_p))
    assert cls["n"] == len(truth) and cls["weighted"] is True
    assert pd.DataFrame(cls["per_class"])["label"].tolist() == [*LABELS, INVALID_LABEL]


def test_quadratic_weights_are_recorded_and_used():
    truth, pred = _data(100, seed=4)
    wm = weighted_metrics(truth, pred, LABELS, design_weights=np.ones(100),
                          weights="quadratic", n_boot=100, seed=1)
    k = kappa_block(wm, LABELS, "quadratic")
    plain = kappa_summary(truth, pred, LABELS, bootstrap=0, weights="quadratic")
    assert k["weights"] == "quadratic"
    for key in ("kappa", "p_observed", "p_expected"):
        assert k[key] == pytest.approx(plain[key])


def test_ordinal_block_equals_ordinal_summary_with_equal_weights_and_weights_the_table():
    from textgauge.stats import ordinal_summary
    from textgauge.stats.weighted_summary import ordinal_block

    truth, pred = _data(140, seed=5)
    plain = ordinal_summary(truth, pred, LABELS, bootstrap=200, seed=1)
    eq = ordinal_block(truth, pred, LABELS, design_weights=np.full(140, 4.0), bootstrap=200,
                       seed=1)
    assert set(plain) <= set(eq)
    for m in ("exact", "off_by_one", "within_one", "mae", "mean_error"):
        assert eq[m]["estimate"] == pytest.approx(plain[m]["estimate"])
        assert eq[m]["ci_low"] <= eq[m]["estimate"] <= eq[m]["ci_high"]
    assert (eq["n"], eq["n_invalid"]) == (plain["n"], plain["n_invalid"])
    w = np.where(np.arange(140) % 2 == 0, 9.0, 1.0)
    wb = ordinal_block(truth, pred, LABELS, design_weights=w, cells=w, bootstrap=100, seed=1)
    rep = np.repeat(np.arange(140), w.astype(int))
    big = ordinal_summary(truth[rep], pred[rep], LABELS, bootstrap=0)
    for m in ("exact", "off_by_one", "mae"):
        assert wb[m]["estimate"] == pytest.approx(big[m]["estimate"])
    assert wb["coverage"] == pytest.approx(big["coverage"])
