"""The strata audit (textgauge.audits.strata) on a coder that fails one stratum."""

from __future__ import annotations

import numpy as np
import pandas as pd
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
