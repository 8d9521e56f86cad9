"""Krippendorff's alpha (textgauge.stats.alpha) against Krippendorff (2011)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.stats.reference_data import (
    KRIPP,
)
from textgauge.agreement import (
    krippendorff_alpha,
    krippendorff_alpha_long,
)
from textgauge.errors import InputDataError


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


# ------------------------------------------------------------------ design-weighted alpha
@pytest.mark.parametrize("level,value", [("nominal", 0.743421), ("ordinal", 0.815)])
def test_weighted_alpha_with_equal_weights_is_the_published_alpha(level, value):
    """Equal weights (any constant) give Krippendorff's (2011) published values and the
    unweighted estimate to floating point; cells change only the interval."""
    import numpy as np

    from textgauge.stats.alpha import weighted_alpha

    plain = krippendorff_alpha(KRIPP, level=level, n_boot=0).estimate
    for const in (1.0, 7.5):
        r = weighted_alpha(KRIPP, np.full(12, const), level=level, n_boot=400, seed=2)
        assert r.estimate == pytest.approx(plain, abs=1e-12)
        assert r.estimate == pytest.approx(value, abs=5e-4 if level == "ordinal" else 1e-6)
        assert r.ci_low < r.estimate < r.ci_high
        assert r.n_units == 11 and r.n_values == 40
    cells = ["a"] * 6 + ["b"] * 6
    r = weighted_alpha(KRIPP, np.ones(12), cells, level=level, n_boot=400, seed=2)
    assert r.estimate == pytest.approx(plain, abs=1e-12) and "within design cells" in r.method


def test_weighted_alpha_moves_towards_the_heavily_weighted_units():
    """Up-weighting the unit with most disagreement (unit 6: codes 1, 2, 3, 4) lowers alpha;
    up-weighting the perfectly agreed units raises it; weights of unpairable units are
    ignored."""
    import numpy as np

    from textgauge.stats.alpha import weighted_alpha

    plain = weighted_alpha(KRIPP, np.ones(12), n_boot=0).estimate
    w = np.ones(12)
    w[5] = 5.0
    assert weighted_alpha(KRIPP, w, n_boot=0).estimate < plain - 0.05
    agree = np.ones(12)
    agree[[0, 2, 3, 4, 6, 8, 9]] = 5.0
    assert weighted_alpha(KRIPP, agree, n_boot=0).estimate > plain + 0.03
    lone = np.ones(12)
    lone[11] = 100.0  # unit 12 is coded once: not pairable
    assert weighted_alpha(KRIPP, lone, n_boot=0).estimate == pytest.approx(plain, abs=1e-12)
    with pytest.raises(InputDataError, match="one weight per unit"):
        weighted_alpha(KRIPP, np.ones(5))
