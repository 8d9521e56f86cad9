"""Ordinal codebooks: textgauge.stats.ordinal, and the weighted kappa / ordinal alpha the
workflow computes for them (kappa_weights_for, kappa_summary(weights=), per_stratum(weights=),
krippendorff_alpha_long(level="ordinal")) against published reference values."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.stats.reference_data import ANXIETY, KRIPP, SAS_TABLE
from textgauge.errors import InputDataError
from textgauge.stats import (
    INVALID_LABEL,
    cohen_kappa_table,
    kappa_summary,
    kappa_weights_for,
    krippendorff_alpha_long,
    label_weight_matrix,
    ordinal_from_tables,
    ordinal_summary,
    per_stratum,
)

#: a 5-point scale whose alphabetical order is NOT the scale order (so a sort would show)
SCALE = ["strongly_oppose", "oppose", "neutral", "support", "strongly_support"]


def _vectors(table: list[list[int]], labels: list[str]) -> tuple[list[str], list[str]]:
    """Rating vectors with exactly the counts of ``table`` (rows = first rater)."""
    y1, y2 = [], []
    for i, row in enumerate(table):
        for j, c in enumerate(row):
            y1 += [labels[i]] * c
            y2 += [labels[j]] * c
    return y1, y2


def test_kappa_weights_for():
    assert kappa_weights_for("nominal", "linear") is None  # ignored for a nominal scale
    assert kappa_weights_for(None) is None
    assert kappa_weights_for("ordinal") == "quadratic"
    assert kappa_weights_for("ordinal", "linear") == "linear"
    with pytest.raises(ValueError, match="scale"):
        kappa_weights_for("interval")
    with pytest.raises(ValueError, match="kappa_weights"):
        kappa_weights_for("ordinal", "cubic")


@pytest.mark.parametrize("weights,value", [
    # R irr::kappa2(anxiety[, 2:3], weight = "equal" / "squared"), as recorded in statsmodels'
    # test_inter_rater.py; here through the workflow's path with string labels in scale order
    ("linear", 0.1459075), ("quadratic", 0.2520325),
])
def test_kappa_summary_weighted_matches_r_irr(weights, value):
    levels = sorted(set(ANXIETY[:, 1]) | set(ANXIETY[:, 2]))
    names = [f"level_{chr(ord('z') - int(v))}" for v in levels]  # alphabetical != scale
    name = dict(zip(levels, names, strict=True))
    a = [name[v] for v in ANXIETY[:, 1]]
    b = [name[v] for v in ANXIETY[:, 2]]
    k = kappa_summary(a, b, names, weights=weights, bootstrap=500, seed=1)
    assert k["kappa"] == pytest.approx(value, abs=1e-7)
    assert k["weights"] == weights
    assert k["boot_ci_low"] < k["kappa"] < k["boot_ci_high"]
    assert k["n_boot"] == 500


def test_kappa_summary_weighted_sas_interval():
    # SAS PROC FREQ weighted kappa (Cicchetti-Allison = linear): 0.4701, ASE 0.1457,
    # 95% CL 0.1845-0.7558 (statsmodels TestWeightedCohens)
    labs = ["low", "mid", "high"]
    y1, y2 = _vectors(SAS_TABLE, labs)
    k = kappa_summary(y1, y2, labs, weights="linear", bootstrap=0)
    np.testing.assert_allclose([k["kappa"], k["se"], k["ci_low"], k["ci_high"]],
                               [0.4701, 0.1457, 0.1845, 0.7558], atol=6e-5)
    # unweighted is the default, and differs (SAS: 0.4842)
    assert kappa_summary(y1, y2, labs, bootstrap=0)["kappa"] == pytest.approx(0.4842, abs=6e-5)


def test_invalid_answers_get_no_partial_credit():
    labs = ["low", "mid", "high"]
    w = label_weight_matrix(labs, [*labs, INVALID_LABEL], "linear")
    assert w[3, :3].tolist() == [0, 0, 0] and w[:3, 3].tolist() == [0, 0, 0]
    assert label_weight_matrix(labs, labs, None) is None
    y1 = ["low", "mid", "high", "high"] * 10
    y2 = ["low", "mid", "high", INVALID_LABEL] * 10
    k = kappa_summary(y1, y2, labs, weights="linear", bootstrap=0)
    # by hand: the invalid column is an error of weight 0 with every label
    t = np.zeros((4, 4))
    t[0, 0] = t[1, 1] = t[2, 2] = t[2, 3] = 10
    assert k["kappa"] == pytest.approx(cohen_kappa_table(t, weights=w).estimate)
    # an invalid answer is worse than the nearest wrong label
    near = kappa_summary(y1, ["low", "mid", "high", "mid"] * 10, labs, weights="linear",
                         bootstrap=0)
    assert k["kappa"] < near["kappa"]


def test_ordinal_alpha_krippendorff_2011_with_labels():
    # Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", section D: ordinal
    # alpha = 0.815 (nominal 0.743) -- through the long-format path human_agreement uses,
    # with string labels whose order comes from the codebook, not from sorting
    rows = [{"coder": f"c{c}", "id": f"u{u:02d}", "label": SCALE[int(v) - 1]}
            for c, codes in enumerate(KRIPP) for u, v in enumerate(codes) if np.isfinite(v)]
    df = pd.DataFrame(rows)
    ordinal = krippendorff_alpha_long(df, level="ordinal", categories=SCALE, n_boot=200)
    assert round(ordinal.estimate, 3) == 0.815
    assert ordinal.level == "ordinal"
    assert round(krippendorff_alpha_long(df, categories=SCALE, n_boot=0).estimate, 3) == 0.743


def test_ordinal_summary_by_hand():
    labs = ["a", "b", "c", "d"]
    y_true = ["a", "b", "c", "d", "a", "b", "c", "d", "a", "d"]
    y_pred = ["a", "b", "c", "d", "b", "a", "a", "c", INVALID_LABEL, None]
    s = ordinal_summary(y_true, y_pred, labs, bootstrap=300, seed=2)
    # exact 4/10; one step away: (a,b), (b,a), (d,c) = 3/10; invalid/missing: 2 (neither)
    assert s["exact"]["estimate"] == pytest.approx(0.4)
    assert s["off_by_one"]["estimate"] == pytest.approx(0.3)
    assert s["within_one"]["estimate"] == pytest.approx(0.7)
    # MAE over the 8 valid answers: 0+0+0+0+1+1+2+1 = 5 steps; signed: +1 -1 -2 -1 = -3
    assert s["mae"]["estimate"] == pytest.approx(5 / 8)
    assert s["mean_error"]["estimate"] == pytest.approx(-3 / 8)
    assert (s["n"], s["n_valid"], s["n_invalid"]) == (10, 8, 2)
    assert s["coverage"] == pytest.approx(0.8)
    assert s["n_boot"] == 300 and s["confidence"] == 0.95
    for m in ("exact", "off_by_one", "mae"):
        assert s[m]["ci_low"] <= s[m]["estimate"] <= s[m]["ci_high"]
    assert "invalid" in s["invalid_rule"]
    # seeded: the same call gives the same interval
    assert ordinal_summary(y_true, y_pred, labs, bootstrap=300, seed=2) == s
    with pytest.raises(InputDataError):
        ordinal_summary(["a", INVALID_LABEL], ["a", "b"], labs)


def test_ordinal_from_tables_is_vectorised():
    rng = np.random.default_rng(0)
    tabs = rng.integers(0, 20, size=(50, 6, 6))  # 5 labels + an invalid column
    tabs[:, 5, :] = 0
    got = ordinal_from_tables(tabs, 5)
    for b in (0, 17, 49):
        t = tabs[b]
        i, j = np.nonzero(t[:5, :5] >= 0)
        cnt = t[:5, :5][i, j]
        assert got["mae"][b] == pytest.approx((cnt * abs(i - j)).sum() / cnt.sum())
        assert got["exact"][b] == pytest.approx(np.trace(t[:5, :5]) / t.sum())


def test_ordinal_bootstrap_interval_coverage():
    # a coder whose errors are one step off (15% down, 15% up, clipped at the ends of the
    # scale, where the clipped answer is exact): the true off-by-one rate is
    # 3/5 * 0.30 + 2/5 * 0.15 = 0.24; its 95% interval covers it in about 95% of 200 studies
    rng = np.random.default_rng(11)
    true_rate = 0.24
    hits = 0
    for s in range(200):
        t = rng.integers(0, 5, 300)
        step = rng.choice([-1, 0, 1], size=300, p=[0.15, 0.7, 0.15])
        p = np.clip(t + step, 0, 4)
        r = ordinal_summary([SCALE[x] for x in t], [SCALE[x] for x in p], SCALE,
                            bootstrap=300, seed=s)["off_by_one"]
        hits += r["ci_low"] <= true_rate <= r["ci_high"]
    assert 0.9 <= hits / 200 <= 0.99


def test_per_stratum_weighted():
    labs = ["low", "mid", "high"]
    rng = np.random.default_rng(4)
    t = rng.integers(0, 3, 120)
    p = np.clip(t + rng.choice([-1, 0, 1], size=120, p=[0.2, 0.6, 0.2]), 0, 2)
    df = pd.DataFrame({"reference": [labs[x] for x in t], "label": [labs[x] for x in p],
                       "party": rng.choice(["x", "y"], 120)})
    plain = per_stratum(df, ["party"], labs, bootstrap=50)
    weighted = per_stratum(df, ["party"], labs, bootstrap=50, weights="quadratic")
    overall = weighted.iloc[0]
    k = kappa_summary(df["reference"], df["label"], labs, weights="quadratic", bootstrap=0)
    assert overall["kappa"] == pytest.approx(k["kappa"])
    # off-by-one errors earn partial credit: weighted kappa above unweighted
    assert (weighted["kappa"] > plain["kappa"]).all()


def test_weighted_kappa_interval_covers_the_known_truth():
    """1,000 simulated studies of the bundled ordinal example's two coders (200 items each,
    errors mostly one step away): the 95% Wald interval of the quadratic-weighted kappa
    covers the known population value in 93-97% of them (the tables are drawn directly from
    the coders' joint distribution; kappa_parts is vectorised over studies)."""
    from scipy import stats

    from textgauge.data.example import true_kappa
    from textgauge.data.example_ordinal import CODER_CONFUSION, SOURCE_PREVALENCE
    from textgauge.stats import agreement_weights, kappa_parts

    a, b = CODER_CONFUSION["coder_a"], CODER_CONFUSION["coder_b"]
    pi = np.mean([SOURCE_PREVALENCE[s] for s in SOURCE_PREVALENCE], axis=0)
    joint = np.einsum("t,ta,tb->ab", pi, a, b)
    truth = true_kappa(pi, a, b, "quadratic")
    rng = np.random.default_rng(2026)
    tables = rng.multinomial(200, joint.ravel(), size=1000).reshape(1000, 5, 5)
    parts = kappa_parts(tables.astype(float), agreement_weights(5, "quadratic"))
    half = stats.norm.ppf(0.975) * np.sqrt(parts["var"])
    covered = np.mean((parts["kappa"] - half <= truth) & (truth <= parts["kappa"] + half))
    assert 0.93 <= covered <= 0.97
