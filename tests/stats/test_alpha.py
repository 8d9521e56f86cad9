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
