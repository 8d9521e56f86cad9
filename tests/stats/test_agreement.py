"""Tests of textgauge.agreement against published values and reference implementations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from textgauge.agreement import (
    bootstrap_kappa,
    bootstrap_macro_f1,
    brennan_prediger_table,
    classification_metrics,
    cohen_kappa,
    cohen_kappa_table,
    compare_with_humans,
    decide,
    fleiss_kappa,
    fleiss_kappa_long,
    gwet_ac1,
    gwet_ac1_counts,
    gwet_ac1_table,
    krippendorff_alpha,
    krippendorff_alpha_long,
    pairwise_agreement,
    per_stratum,
    scott_pi_table,
)
from textgauge.errors import InputDataError

NAN = np.nan

# Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", section C: 4 observers x
# 12 units with missing values (also R irrCAC dataset cac.raw4raters).
KRIPP = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
    [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN],
]

# Fleiss (1971) Psychol Bull 76:378-382, Table 1: 30 patients x 6 psychiatrists, 5 diagnoses
# (R irr dataset `diagnoses`; 1=Depression 2=Personality disorder 3=Schizophrenia 4=Neurosis
# 5=Other).
DIAGNOSES = """444444 222555 233335 555555 222444 113333 333355 113334 114444 555555
144444 124444 222333 144444 224445 333335 111455 111112 224444 133555
555555 244444 224555 114444 144445 222224 111155 224444 133333 555555"""

# R irr dataset `anxiety` (20 subjects x 3 raters), as printed in statsmodels'
# stats/tests/test_inter_rater.py.
ANXIETY = np.array([
    3, 3, 3, 4, 5, 5, 2, 3, 5, 2, 2, 6, 1, 5, 2, 2, 1, 2, 4, 3,
    3, 6, 4, 6, 2, 4, 2, 4, 3, 3, 2, 3, 3, 3, 2, 2, 1, 3, 3, 4,
    2, 1, 4, 4, 3, 2, 1, 6, 1, 1, 1, 2, 3, 3, 1, 1, 3, 3, 2, 2,
]).reshape(20, 3, order="F")

# SAS PROC FREQ example printout reproduced in statsmodels' test_inter_rater.py (table10).
SAS_TABLE = [[0, 4, 1], [0, 8, 0], [0, 1, 5]]

# R irrCAC dataset cont3x3abstractors (irrCAC README / "overview" vignette).
ABSTRACTORS = [[13, 0, 0], [0, 20, 7], [0, 4, 56]]

# R irrCAC dataset distrib.6raters (irrCAC "overview" vignette).
DISTRIB6 = [[0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
            [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
            [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1]]


def _diagnoses() -> np.ndarray:
    return np.array([[int(c) for c in row] for row in DIAGNOSES.split()])


def _diagnoses_counts() -> np.ndarray:
    d = _diagnoses()
    return np.stack([(d == c).sum(axis=1) for c in range(1, 6)], axis=1)


# ---------------------------------------------------------------------------- Cohen's kappa


def test_cohen_kappa_sas_example():
    # SAS PROC FREQ printout (statsmodels test_inter_rater.py, TestUnweightedCohens):
    # Kappa 0.4842, ASE 0.1380, 95% CL 0.2137-0.7547, ASE under H0 0.1484, Z 3.2626,
    # two-sided p 0.0011.
    r = cohen_kappa_table(SAS_TABLE)
    got = [r.estimate, r.se, r.ci_low, r.ci_high, r.se0, r.z, r.p_value]
    np.testing.assert_allclose(got, [0.4842, 0.1380, 0.2137, 0.7547, 0.1484, 3.2626, 0.0011],
                               atol=6e-5)
    assert r.n == 19


def test_weighted_kappa_sas_example():
    # SAS PROC FREQ weighted kappa, Cicchetti-Allison weights (statsmodels
    # TestWeightedCohens): 0.4701, ASE 0.1457, CL 0.1845-0.7558, ASE0 0.1426, Z 3.2971.
    r = cohen_kappa_table(SAS_TABLE, weights="linear")
    got = [r.estimate, r.se, r.ci_low, r.ci_high, r.se0, r.z]
    np.testing.assert_allclose(got, [0.4701, 0.1457, 0.1845, 0.7558, 0.1426, 3.2971],
                               atol=6e-5)


@pytest.mark.parametrize("weights,value,z", [
    # R irr::kappa2(anxiety[, 2:3]) outputs recorded in statsmodels' test_inter_rater.py
    (None, -0.006289308, -0.0604067),        # unweighted
    ("linear", 0.1459075, 1.282472),         # weight = "equal"
    ("quadratic", 0.2520325, 1.437451),      # weight = "squared"
])
def test_cohen_kappa_matches_r_irr(weights, value, z):
    r = cohen_kappa(ANXIETY[:, 1], ANXIETY[:, 2], weights=weights)
    assert r.estimate == pytest.approx(value, abs=1e-7)
    assert r.z == pytest.approx(z, abs=1e-5)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_equals_sklearn(weights):
    rng = np.random.default_rng(3)
    a = rng.integers(0, 4, 300)
    b = np.where(rng.random(300) < 0.6, a, rng.integers(0, 4, 300))
    ours = cohen_kappa(a, b, weights=weights).estimate
    assert ours == pytest.approx(cohen_kappa_score(a, b, weights=weights), abs=1e-12)


def test_cohen_kappa_missing_dropped_and_strings():
    y1 = ["a", "b", None, "c", "a", np.nan]
    y2 = ["a", "b", "b", "c", "b", "a"]
    r = cohen_kappa(y1, y2)
    assert r.n == 4 and r.n_dropped == 2
    assert r.categories == ("a", "b", "c")
    assert r.estimate == pytest.approx(cohen_kappa_score(["a", "b", "c", "a"],
                                                         ["a", "b", "c", "b"]))
    json.dumps(r.to_dict())


def test_custom_weights_and_validation():
    w = np.array([[1, 0.5, 0], [0.5, 1, 0.5], [0, 0.5, 1]])
    assert cohen_kappa_table(SAS_TABLE, weights=w).estimate == pytest.approx(
        cohen_kappa_table(SAS_TABLE, weights="linear").estimate)
    with pytest.raises(ValueError, match="diagonal"):
        cohen_kappa_table(SAS_TABLE, weights=1 - w)
    with pytest.raises(InputDataError, match="same length"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(InputDataError, match="not in labels"):
        cohen_kappa([1, 2], [1, 3], labels=[1, 2])
    with pytest.raises(InputDataError, match="square"):
        cohen_kappa_table([[1, 2, 3]])


# ------------------------------------------------------------- Gwet, Scott, Brennan-Prediger


def test_two_rater_cacs_match_irrcac():
    # R irrCAC README, cont3x3abstractors: Scott's Pi 0.7962397 (se 0.05905473),
    # Gwet's AC1 0.8493305 (se 0.04321747, CI (0.764, 0.935)), Brennan-Prediger 0.835
    # (se 0.04693346), Cohen's kappa 0.7964094.
    pi = scott_pi_table(ABSTRACTORS)
    ac1 = gwet_ac1_table(ABSTRACTORS)
    bp = brennan_prediger_table(ABSTRACTORS)
    assert (pi.estimate, pi.se) == pytest.approx((0.7962397, 0.05905473), abs=1e-7)
    assert (ac1.estimate, ac1.se) == pytest.approx((0.8493305, 0.04321747), abs=1e-7)
    assert (round(ac1.ci_low, 3), round(ac1.ci_high, 3)) == (0.764, 0.935)
    assert (bp.estimate, bp.se) == pytest.approx((0.835, 0.04693346), abs=1e-7)
    assert cohen_kappa_table(ABSTRACTORS).estimate == pytest.approx(0.7964094, abs=1e-7)


def test_gwet_ac1_multirater_matches_irrcac():
    # irrCAC vignette: gwet.ac1.dist(distrib.6raters) -> AC1 0.4448007, se 0.08418757,
    # pa 0.5511111, pe 0.1914815.
    r = gwet_ac1_counts(DISTRIB6)
    assert (r.estimate, r.se) == pytest.approx((0.4448007, 0.08418757), abs=1e-7)
    assert (r.p_observed, r.p_expected) == pytest.approx((0.5511111, 0.1914815), abs=1e-7)
    # irrCAC vignette: gwet.ac1.raw(cac.raw4raters) -> AC1 0.77544, se 0.14295 (missing data).
    k = np.array(KRIPP)
    counts = np.stack([(k == c).sum(axis=0) for c in range(1, 6)], axis=1)
    r = gwet_ac1_counts(counts)
    assert (r.estimate, r.se) == pytest.approx((0.77544, 0.14295), abs=1e-5)


def test_gwet_ac1_raw_equals_table():
    a = ["x", "y", "y", "z", "x", None]
    b = ["x", "y", "z", "z", "y", "x"]
    r = gwet_ac1(a, b)
    assert r.n == 5 and r.n_dropped == 1
    assert r.estimate == pytest.approx(gwet_ac1_table([[1, 1, 0], [0, 1, 1], [0, 0, 1]]).estimate)


# ---------------------------------------------------------------------------- Fleiss' kappa


def test_fleiss_kappa_fleiss_1971():
    # Fleiss (1971): kappa = .430. R irr::kappam.fleiss(diagnoses): Kappa 0.4302445,
    # z 17.65183 (recorded in statsmodels' test_inter_rater.py); irr uses the Fleiss, Nee &
    # Landis (1979) null variance, so se0 = 0.4302445 / 17.65183.
    r = fleiss_kappa(_diagnoses_counts(), categories=["dep", "pd", "schiz", "neur", "other"])
    assert round(r.estimate, 3) == 0.430
    assert r.estimate == pytest.approx(0.4302445, abs=1e-7)
    assert r.z == pytest.approx(17.65183, abs=1e-4)
    assert r.se0 == pytest.approx(0.4302445 / 17.65183, rel=1e-6)
    assert r.n_units == 30 and r.n_raters == 6
    # Fleiss (1971) eq. 11-12: overall kappa is the p_j q_j-weighted mean of category kappas.
    pc = r.per_category
    pq = pc.proportion * (1 - pc.proportion)
    assert (pq * pc.kappa).sum() / pq.sum() == pytest.approx(r.estimate)
    json.dumps(r.to_dict())


def test_fleiss_kappa_long_matches_counts():
    d = _diagnoses()
    rows = [{"id": i, "coder": j, "label": int(d[i, j])} for i in range(30) for j in range(6)]
    assert fleiss_kappa_long(pd.DataFrame(rows)).estimate == pytest.approx(0.4302445, abs=1e-7)
    with pytest.raises(InputDataError, match="same number"):
        fleiss_kappa([[2, 0], [1, 2]])


# ----------------------------------------------------------------------- Krippendorff alpha


@pytest.mark.parametrize("level,value", [
    # Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", sections C-E.
    ("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849), ("ratio", 0.797),
])
def test_krippendorff_canonical_example(level, value):
    r = krippendorff_alpha(KRIPP, level=level, n_boot=500, seed=1)
    assert round(r.estimate, 3) == value
    assert r.n_units == 11 and r.n_coders == 4
    assert r.ci_low < r.estimate < r.ci_high


def test_krippendorff_strings_long_and_bca():
    letters = {1: "a", 2: "b", 3: "c", 4: "d", 5: "e"}
    s = [[letters.get(v) if v == v else None for v in row] for row in KRIPP]
    assert krippendorff_alpha(s, n_boot=0).estimate == pytest.approx(0.743421, abs=1e-6)
    rows = [{"id": u, "coder": c, "label": s[c][u]} for c in range(4) for u in range(12)]
    r = krippendorff_alpha_long(pd.DataFrame(rows), method="bca", n_boot=300)
    assert r.estimate == pytest.approx(0.743421, abs=1e-6)
    assert r.ci_low < r.estimate < r.ci_high
    # bootstrap replicate machinery reproduces the estimate on the full sample
    with pytest.raises(InputDataError, match="numeric"):
        krippendorff_alpha(s, level="interval")


# -------------------------------------------------------------------------------- bootstrap


def test_bootstrap_kappa_seeded_and_consistent():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 400)
    b = np.where(rng.random(400) < 0.7, a, rng.integers(0, 3, 400))
    r1 = bootstrap_kappa(a, b, n_boot=400, seed=5, engine="indices")
    r2 = bootstrap_kappa(a, b, n_boot=400, seed=5, engine="indices")
    assert r1.ci_low == r2.ci_low and r1.ci_high == r2.ci_high
    assert r1.estimate == pytest.approx(cohen_kappa_score(a, b))
    # replicate 0 equals sklearn on the same resample (same generator, same draws)
    idx = np.random.default_rng(5).integers(0, 400, size=(1, 400), dtype=np.int32)[0]
    assert r1.replicates[0] == pytest.approx(cohen_kappa_score(a[idx], b[idx]))
    an = cohen_kappa(a, b)
    assert r1.se == pytest.approx(an.se, rel=0.15)
    bca = bootstrap_kappa(a, b, n_boot=400, seed=5, method="bca")
    assert bca.ci_low < bca.estimate < bca.ci_high
    mult = bootstrap_kappa(a, b, n_boot=2000, seed=5, engine="multinomial")
    assert mult.se == pytest.approx(r1.se, rel=0.15)
    json.dumps(r1.to_dict())


def test_bootstrap_macro_f1():
    y = [0, 1, 2, 2, 2, 1, 0, 0, 1, 2] * 10
    p = [0, 0, 2, 2, 1, 1, 0, 1, 1, 2] * 10
    r = bootstrap_macro_f1(y, p, n_boot=300, seed=0, method="bca")
    assert r.estimate == pytest.approx(f1_score(y, p, average="macro"))
    assert r.ci_low < r.estimate < r.ci_high


# ------------------------------------------------------------------- classification metrics


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


# ----------------------------------------------------------- pairwise, ceiling, strata, decide


def test_decide():
    assert decide({"ci_low": 0.72, "ci_high": 0.9}) == "pass"
    assert decide({"ci_low": 0.5, "ci_high": 0.69}) == "fail"
    assert decide({"ci_low": 0.6, "ci_high": 0.8}) == "inconclusive"
    assert decide(cohen_kappa_table(SAS_TABLE), threshold=0.2) == "pass"


def _study(seed: int = 0):
    rng = np.random.default_rng(seed)
    n = 200
    truth = rng.choice(["pos", "neg", "neu"], n, p=[0.3, 0.5, 0.2])

    def noisy(acc):
        return np.where(rng.random(n) < acc, truth, rng.choice(["pos", "neg", "neu"], n))

    humans = pd.DataFrame([{"id": i, "coder": c, "label": lab}
                           for c, acc in (("h1", 0.9), ("h2", 0.85), ("h3", 0.8))
                           for i, lab in enumerate(noisy(acc))])
    preds = pd.DataFrame({"gpt": noisy(0.85), "bert": noisy(0.6)})
    return truth, humans, preds


def test_pairwise_agreement_long_and_wide():
    _, humans, _ = _study()
    tidy = pairwise_agreement(humans, unit="id", coder="coder", label="label")
    assert len(tidy) == 3 and set(tidy.columns) >= {"kappa", "ci_low", "ci_high", "n"}
    wide = humans.pivot(index="id", columns="coder", values="label")
    row = tidy[(tidy.coder_a == "h1") & (tidy.coder_b == "h2")].iloc[0]
    assert row.kappa == pytest.approx(cohen_kappa_score(wide.h1, wide.h2))
    assert pairwise_agreement(wide).kappa.tolist() == pytest.approx(tidy.kappa.tolist())


def test_compare_with_humans():
    truth, humans, preds = _study()
    res = compare_with_humans(humans, pd.Series(truth), preds, threshold=0.7)
    kinds = res.pairs.kind.value_counts().to_dict()
    assert kinds == {"model-human": 6, "human-human": 3, "model-reference": 2,
                     "human-reference": 3}
    s = res.summary.set_index("model")
    assert s.loc["gpt", "kappa_vs_reference"] > s.loc["bert", "kappa_vs_reference"]
    assert s.loc["bert", "decision"] == "fail"
    assert set(res.pairs.decision) <= {"pass", "fail", "inconclusive"}
    json.dumps(res.to_dict())


def test_per_stratum():
    truth, _, preds = _study()
    df = pd.DataFrame({"src": np.repeat(["a", "b"], 100), "y": truth, "p": preds.gpt})
    df.loc[3, "p"] = None
    tab = per_stratum(df, "src", "y", "p", n_boot=200)
    assert tab.stratum.tolist() == ["a", "b", "__overall__"]
    a = df[df.src == "a"].dropna()
    assert tab.loc[0, "n"] == 99
    assert tab.loc[0, "kappa"] == pytest.approx(cohen_kappa_score(a.y, a.p))
    assert tab.loc[0, "macro_f1"] == pytest.approx(f1_score(a.y, a.p, average="macro"))
    assert (tab.kappa_ci_low < tab.kappa).all() and (tab.macro_f1 < tab.macro_f1_ci_high).all()
