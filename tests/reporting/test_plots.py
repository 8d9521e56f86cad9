"""The audit figures (textgauge.reporting.plots)."""

from __future__ import annotations

import pandas as pd

from tests.audits.simulated import gold_set, positional_runs
from textgauge.audits.positional import positional_audit
from textgauge.audits.prevalence import corrected_prevalence
from textgauge.reporting.plots.audits import (
    plot_positional_selection,
    plot_prevalence,
)

LABELS = ["support", "oppose", "neutral"]


def test_audit_figures(tmp_path):
    gold = gold_set(150)
    res = positional_audit(positional_runs(gold, 0.3), reference=gold)
    fig = plot_positional_selection(res.selection, p_value=res.p_value)
    fig.savefig(tmp_path / "pos.png")
    corpus = pd.DataFrame({"id": gold["id"], "label": gold["reference"],
                           "party": ["a", "b"] * 75})
    est = corrected_prevalence(corpus, gold.iloc[:60], strata=["party"])
    plot_prevalence(est).savefig(tmp_path / "prev.png")
    plot_prevalence(est, stratum_col="party").savefig(tmp_path / "prev_party.png")
    for name in ("pos", "prev", "prev_party"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_positional_plot_tolerates_rounding_at_zero():
    """A Wilson bound a rounding error above a 0 rate must not break the report's figure."""
    from textgauge.reporting.plots.audits import plot_positional_selection

    sel = pd.DataFrame({"position": [1, 2], "observed_n": [10, 0],
                        "observed_rate": [1.0, 0.0], "expected_rate": [0.5, 0.5],
                        "observed_ci_low": [0.72, 4.3e-19], "observed_ci_high": [1.0, 0.28]})
    assert plot_positional_selection(sel, 0.01) is not None
