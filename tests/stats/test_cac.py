"""Scott's pi, Gwet's AC1/AC2, Brennan-Prediger (textgauge.stats.cac) against R irrCAC."""

from __future__ import annotations

import numpy as np
import pytest

from tests.stats.reference_data import (
    ABSTRACTORS,
    DISTRIB6,
    KRIPP,
)
from textgauge.agreement import (
    brennan_prediger_table,
    cohen_kappa_table,
    gwet_ac1,
    gwet_ac1_counts,
    gwet_ac1_table,
    scott_pi_table,
)


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
