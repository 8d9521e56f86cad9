"""The one per-stratum table (textgauge.stats.strata) and its flag rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from textgauge.stats import (
    INVALID_LABEL,
    OVERALL,
    STRATUM_COLUMNS,
    cohen_kappa,
    flag_stratum,
    per_stratum,
)

LABELS = ["pos", "neg", "neu", "other"]


def _study(seed: int = 0, n: int = 200):
    rng = np.random.default_rng(seed)
    truth = rng.choice(["pos", "neg", "neu"], n, p=[0.3, 0.5, 0.2])
    pred = np.where(rng.random(n) < 0.85, truth, rng.choice(["pos", "neg", "neu"], n))
    return pd.DataFrame({"src": np.repeat(["a", "b"], n // 2), "reference": truth,
                         "label": pred})


def test_per_stratum_numbers_are_those_of_the_whole_set_scoring():
    df = _study()
    df.loc[3, "label"] = None  # no answer: an error, not dropped
    tab = per_stratum(df, ["src"], LABELS, bootstrap=200, seed=0)
    assert list(tab.columns) == list(STRATUM_COLUMNS)
    assert tab["stratum"].tolist() == [OVERALL, "a", "b"]
    a = tab.set_index("stratum").loc["a"]
    part = df[df.src == "a"].fillna({"label": INVALID_LABEL})
    assert a["n"] == 100 and a["n_valid"] == 99 and a["coverage"] == 0.99
    assert a["kappa"] == pytest.approx(cohen_kappa_score(part.reference, part.label))
    assert a["macro_f1"] == pytest.approx(
        f1_score(part.reference, part.label, labels=["pos", "neg", "neu"], average="macro"))
    assert (tab.kappa_ci_low < tab.kappa).all() and (tab.macro_f1 < tab.macro_f1_ci_high).all()
    assert (tab.confidence == 0.95).all() and (tab.n_boot == 200).all()


def test_a_label_absent_from_a_stratum_is_left_out_of_its_macro_f1():
    """The defect of two paths: 0.605 on one, 0.454 (absent label as F1 = 0) on the other."""
    df = _study(n=120)
    df.loc[df.src == "a", "reference"] = df.loc[df.src == "a", "reference"].replace("neu", "pos")
    df.loc[df.src == "a", "label"] = df.loc[df.src == "a", "label"].replace("neu", "pos")
    tab = per_stratum(df, ["src"], LABELS, bootstrap=300, seed=1).set_index("stratum")
    part = df[df.src == "a"]
    assert tab.loc["a", "macro_f1"] == pytest.approx(
        f1_score(part.reference, part.label, average="macro"))
    assert tab.loc["a", "macro_f1_ci_low"] <= tab.loc["a", "macro_f1"] <= tab.loc[
        "a", "macro_f1_ci_high"]


def test_flag_rule_is_the_ci_upper_bound_below_the_threshold():
    df = _study(n=400)
    bad = (df.src == "b").to_numpy()
    rng = np.random.default_rng(3)
    df.loc[bad, "label"] = rng.choice(["pos", "neg", "neu"], bad.sum())
    tab = per_stratum(df, ["src"], LABELS, kappa_threshold=0.7, bootstrap=100).set_index(
        "stratum")
    assert tab.loc["b", "flagged"] and tab.loc["b", "kappa_ci_high"] < 0.7
    assert not tab.loc["a", "flagged"] and not tab.loc[OVERALL, "flagged"]
    # a point estimate below the threshold whose CI reaches it is not flagged
    assert not flag_stratum(0.72, 0.70) and flag_stratum(0.69, 0.70)
    assert not flag_stratum(float("nan"), 0.70)


def test_level_reaches_the_interval():
    df = _study()
    t95 = per_stratum(df, ["src"], LABELS, bootstrap=200, confidence=0.95).set_index("stratum")
    t90 = per_stratum(df, ["src"], LABELS, bootstrap=200, confidence=0.90).set_index("stratum")
    part = df[df.src == "a"]
    k90 = cohen_kappa(part.reference, part.label, labels=LABELS, confidence=0.90)
    assert t90.loc["a", "kappa_ci_low"] == pytest.approx(k90.ci_low)
    assert (t90.loc["a", "macro_f1_ci_high"] - t90.loc["a", "macro_f1_ci_low"]
            < t95.loc["a", "macro_f1_ci_high"] - t95.loc["a", "macro_f1_ci_low"])
    assert (t90.confidence == 0.9).all()


def test_per_stratum_design_weighted_rows_are_the_weighted_metrics_of_each_stratum():
    import numpy as np

    from textgauge.stats import per_stratum, weighted_metrics

    rng = np.random.default_rng(4)
    n = 160
    labs = ["p", "q"]
    ref = rng.choice(labs, n)
    lab = np.where(rng.random(n) < 0.8, ref, rng.choice(labs, n)).astype(object)
    lab[:3] = "__invalid__"
    df = pd.DataFrame({"reference": ref, "label": lab, "src": rng.choice(["s1", "s2"], n)})
    w = np.where(np.arange(n) % 2 == 0, 5.0, 1.0)
    cells = np.where(w > 1, "c5", "c1")
    t = per_stratum(df, ["src"], labs, bootstrap=200, seed=3, design_weights=w, cells=cells)
    plain = per_stratum(df, ["src"], labs, bootstrap=200, seed=3)
    assert list(t.columns) == list(plain.columns) and len(t) == len(plain) == 3
    overall = weighted_metrics(ref, lab, labs, design_weights=w, cells=cells, n_boot=200,
                               seed=3)
    assert t.loc[0, "kappa"] == pytest.approx(overall.estimates["kappa"])
    assert t.loc[0, "kappa_ci_low"] == pytest.approx(overall.ci("kappa")[0])
    valid = lab != "__invalid__"
    assert t.loc[0, "coverage"] == pytest.approx(w[valid].sum() / w.sum())
    assert t.loc[0, "n"] == n
    m = (df["src"] == "s1").to_numpy()
    s1 = weighted_metrics(ref[m], lab[m], labs, design_weights=w[m], cells=cells[m],
                          n_boot=200, seed=3)
    assert t.loc[1, "kappa"] == pytest.approx(s1.estimates["kappa"])
    assert t.loc[1, "accuracy"] == pytest.approx(s1.estimates["accuracy"])
    assert t.loc[0, "kappa"] != pytest.approx(plain.loc[0, "kappa"])
