"""Intervals and tests for proportions (textgauge.stats.proportions)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from textgauge.stats import goodness_of_fit, paired_share_difference, wilson_ci


def test_wilson_interval_known_value():
    lo, hi = wilson_ci(8, 10)
    assert (float(lo), float(hi)) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_paired_share_difference_and_mcnemar():
    x = np.array([1, 1, 0, 0, 1, 0, 0, 0, 1, 0] * 20, bool)
    y = np.array([1, 1, 1, 0, 1, 1, 0, 0, 1, 0] * 20, bool)
    d = paired_share_difference(x, y)
    assert d["difference"] == pytest.approx(y.mean() - x.mean())
    assert d["ci_low"] > 0
    assert d["mcnemar_p"] == pytest.approx(stats.binomtest(40, 40, 0.5).pvalue)


def test_goodness_of_fit_and_cohens_w():
    g = goodness_of_fit([60, 20, 20], [1 / 3, 1 / 3, 1 / 3])
    assert g["chi2"] == pytest.approx(stats.chisquare([60, 20, 20]).statistic)
    assert g["dof"] == 2 and g["effect_w"] == pytest.approx(np.sqrt(g["chi2"] / 100))
