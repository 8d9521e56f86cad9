"""The strata audit (textgauge.audits.strata) on a coder that fails one stratum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from tests.audits.simulated import LABELS, gold_set
from textgauge.audits.strata import flagged_strata, stratum_performance
from textgauge.reporting.plots.audits import (
    plot_stratum_forest,
)
from textgauge.stats import OVERALL


def test_stratum_shift_flags_the_degraded_stratum():
    rng = np.random.default_rng(15)
    n = 1200
    gold = gold_set(n, seed=5)
    gold["party"] = rng.choice(["A", "B", "C"], n)
    gold["period"] = rng.choice(["2020", "2024"], n)
    ref = gold["reference"].to_numpy()
    err = np.where(gold["party"] == "C", 0.45, 0.08)  # party C is coded badly
    pred = np.where(rng.random(n) < err, rng.choice(LABELS, n), ref)
    preds = pd.DataFrame({"id": gold["id"], "label": pred, "status": "ok"})
    preds.loc[:9, "status"] = "failed"  # invalid answers count as errors
    out = stratum_performance(gold, preds, ["party", "period"], LABELS, kappa_threshold=0.70,
                              bootstrap=300)
    t = out.set_index(["stratum_col", "stratum"])
    assert t.loc[("party", "C"), "flagged"]  # the whole CI below the threshold
    assert t.loc[("party", "C"), "kappa_ci_high"] < 0.70
    assert not t.loc[("party", "A"), "flagged"] and not t.loc[("party", "B"), "flagged"]
    assert not t.loc[(OVERALL, OVERALL), "flagged"]
    assert [f"{r['stratum_col']}={r['stratum']}" for r in flagged_strata(out)] == ["party=C"]
    ov = t.loc[(OVERALL, OVERALL)]
    assert ov["n"] == n and ov["n_valid"] == n - 10 and ov["coverage"] == (n - 10) / n
    assert ov["kappa_ci_low"] < ov["kappa"] < ov["kappa_ci_high"]
    assert ov["macro_f1_ci_low"] < ov["macro_f1"] < ov["macro_f1_ci_high"]
    fig = plot_stratum_forest(out)
    assert isinstance(fig, Figure)


def _shift_gold(n: int = 900, bad: str = "C", err_bad: float = 0.45):
    rng = np.random.default_rng(21)
    gold = gold_set(n, seed=8)
    gold["party"] = rng.choice(["A", "B", "C"], n)
    ref = gold["reference"].to_numpy()
    err = np.where(gold["party"] == bad, err_bad, 0.08)
    gold["label"] = np.where(rng.random(n) < err, rng.choice(LABELS, n), ref)
    return gold


def test_shift_is_the_stratum_minus_the_rest_with_a_ci():
    from textgauge.audits.strata import SHIFT_COLUMNS, stratum_shift
    from textgauge.stats import kappa_summary, macro_f1_summary

    gold = _shift_gold()
    out = stratum_shift(gold, ["party"], LABELS, bootstrap=300, seed=4)
    assert list(out.columns) == list(SHIFT_COLUMNS)
    t = out.set_index("stratum")
    for party in ("A", "B", "C"):
        part, rest = gold[gold["party"] == party], gold[gold["party"] != party]
        k_in = kappa_summary(part["reference"], part["label"], LABELS, bootstrap=0)["kappa"]
        k_out = kappa_summary(rest["reference"], rest["label"], LABELS, bootstrap=0)["kappa"]
        f_in = macro_f1_summary(part["reference"], part["label"], LABELS, bootstrap=0)
        f_out = macro_f1_summary(rest["reference"], rest["label"], LABELS, bootstrap=0)
        r = t.loc[party]
        assert r["kappa_diff"] == pytest.approx(k_in - k_out, abs=1e-12)
        assert r["kappa"] == pytest.approx(k_in, abs=1e-12)
        assert r["kappa_rest"] == pytest.approx(k_out, abs=1e-12)
        assert r["macro_f1_diff"] == pytest.approx(f_in["estimate"] - f_out["estimate"],
                                                   abs=1e-12)
        assert r["kappa_diff_ci_low"] <= r["kappa_diff"] <= r["kappa_diff_ci_high"]
        assert r["macro_f1_diff_ci_low"] <= r["macro_f1_diff"] <= r["macro_f1_diff_ci_high"]
        assert r["n"] + r["n_rest"] == len(gold)
        assert r["n_boot"] == 300 and r["confidence"] == 0.95
    assert t.loc["C", "shifted"] and t.loc["C", "kappa_diff_ci_high"] < 0
    # the methods sentence names the shifted stratum with its difference and CI, and only it
    from textgauge.reporting.report import shift_sentence

    text = shift_sentence(out.to_dict("records"))
    c = t.loc["C"]
    assert (f"party = C ({c['kappa_diff']:+.2f}, {c['kappa_diff_ci_low']:+.2f} to "
            f"{c['kappa_diff_ci_high']:+.2f})") in text
    assert "3 strata compared" in text
    for party, row in t.iterrows():  # A and B are better than a rest that holds C
        assert (f"party = {party} (" in text) == bool(row["shifted"])
    assert shift_sentence([]) == ""
    # seeded
    again = stratum_shift(gold, ["party"], LABELS, bootstrap=300, seed=4)
    pd.testing.assert_frame_equal(out, again)


def test_a_coder_failing_everywhere_is_flagged_but_not_shifted():
    """Shift is not failure: every stratum below the threshold, none differs from the rest."""
    from textgauge.audits.strata import stratum_shift

    gold = _shift_gold(1500, err_bad=0.6)
    rng = np.random.default_rng(3)
    ref = gold["reference"].to_numpy()
    gold["label"] = np.where(rng.random(len(gold)) < 0.6, rng.choice(LABELS, len(gold)), ref)
    preds = gold[["id", "label"]].assign(status="ok")
    table = stratum_performance(gold.drop(columns="label"), preds, ["party"], LABELS,
                                bootstrap=100)
    assert len(flagged_strata(table)) == 3
    shift = stratum_shift(gold, ["party"], LABELS, bootstrap=300, seed=1)
    assert not shift["shifted"].any()
    assert ((shift["kappa_diff_ci_low"] < 0) & (shift["kappa_diff_ci_high"] > 0)).all()
    from textgauge.reporting.report import shift_sentence

    assert "no stratum differs from the rest" in shift_sentence(shift.to_dict("records"))


def test_shift_of_a_single_stratum_says_so():
    from textgauge.audits.strata import stratum_shift

    gold = _shift_gold(60).assign(party="A")
    out = stratum_shift(gold, ["party"], LABELS, bootstrap=50)
    assert len(out) == 1 and np.isnan(out.loc[0, "kappa_diff"]) and "whole" in out.loc[0, "note"]
    from textgauge.reporting.report import shift_sentence

    assert shift_sentence(out.to_dict("records")) == ""  # nothing compared, nothing claimed


def test_shift_figure_has_a_zero_line():
    from textgauge.audits.strata import stratum_shift
    from textgauge.reporting.plots.audits import plot_difference_forest

    out = stratum_shift(_shift_gold(), ["party"], LABELS, bootstrap=100)
    rows = out.assign(name=out["stratum_col"] + " = " + out["stratum"]).rename(columns={
        "kappa_diff": "k", "kappa_diff_ci_low": "k_ci_low", "kappa_diff_ci_high": "k_ci_high"})
    fig = plot_difference_forest(rows, ("k",), title="shift")
    ax = fig.axes[0]
    assert any(list(line.get_xdata()) == [0, 0] for line in ax.get_lines())
    assert ax.get_title() == "shift"


def test_shift_of_a_stratum_with_one_category_has_a_note_not_a_crash():
    """Real data: a small stratum whose reference and answers are all one label has no
    kappa; its row says so (seen on the Benoit et al. manifestos, a party with 3 sentences)."""
    from textgauge.audits.strata import stratum_shift
    from textgauge.reporting.report import shift_sentence

    gold = _shift_gold(300)
    one = gold.index[:3]
    gold.loc[one, "party"] = "tiny"
    gold.loc[one, "reference"] = LABELS[0]
    gold.loc[one, "label"] = LABELS[0]
    out = stratum_shift(gold, ["party"], LABELS, bootstrap=100, seed=2)
    tiny = out.set_index("stratum").loc["tiny"]
    assert not tiny["shifted"] and "undefined" in tiny["note"]
    assert pd.isna(pd.to_numeric(tiny["kappa_diff"], errors="coerce"))
    text = shift_sentence(out.to_dict("records"))
    assert "tiny" not in text and "3 strata compared" in text  # A, B and C compared


def test_a_stratum_with_one_text_of_a_label_gets_no_ci_and_no_claim():
    """Real data: a party with one immigration sentence, coded right, has kappa 1 or an
    undefined kappa in every resample: the percentile CI of the defined replicates would be
    far too narrow (it claimed a shift on the Benoit et al. manifestos). No CI, no claim."""
    from textgauge.audits.strata import stratum_shift
    from textgauge.reporting.report import shift_sentence

    gold = _shift_gold(400)
    few = gold.index[:25]
    gold.loc[few, "party"] = "small"
    gold.loc[few, "reference"] = LABELS[1]
    gold.loc[few, "label"] = LABELS[1]
    gold.loc[few[0], ["reference", "label"]] = LABELS[0]  # one text of another label
    out = stratum_shift(gold, ["party"], LABELS, bootstrap=400, seed=3)
    small = out.set_index("stratum").loc["small"]
    assert small["kappa"] == pytest.approx(1.0) and np.isfinite(small["kappa_diff"])
    assert np.isnan(small["kappa_diff_ci_low"]) and np.isnan(small["kappa_diff_ci_high"])
    assert not small["shifted"] and "bootstrap replicates" in small["note"]
    text = shift_sentence(out.to_dict("records"))
    assert "so not compared: party = small." in text and "3 strata compared" in text
