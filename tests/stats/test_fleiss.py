"""Fleiss' kappa (textgauge.stats.fleiss) against Fleiss (1971) and statsmodels."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.stats.reference_data import (
    diagnoses,
    diagnoses_counts,
)
from textgauge.agreement import (
    fleiss_kappa,
    fleiss_kappa_long,
)
from textgauge.errors import InputDataError


def test_fleiss_kappa_fleiss_1971():
    # Fleiss (1971): kappa = .430. R irr::kappam.fleiss(diagnoses): Kappa 0.4302445,
    # z 17.65183 (recorded in statsmodels' test_inter_rater.py); irr uses the Fleiss, Nee &
    # Landis (1979) null variance, so se0 = 0.4302445 / 17.65183.
    r = fleiss_kappa(diagnoses_counts(), categories=["dep", "pd", "schiz", "neur", "other"])
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
    d = diagnoses()
    rows = [{"id": i, "coder": j, "label": int(d[i, j])} for i in range(30) for j in range(6)]
    assert fleiss_kappa_long(pd.DataFrame(rows)).estimate == pytest.approx(0.4302445, abs=1e-7)
    with pytest.raises(InputDataError, match="same number"):
        fleiss_kappa([[2, 0], [1, 2]])
