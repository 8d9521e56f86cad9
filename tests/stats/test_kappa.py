"""Cohen's kappa (textgauge.stats.kappa) against SAS, R irr and scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from tests.stats.reference_data import (
    ANXIETY,
    SAS_TABLE,
)
from textgauge.agreement import (
    cohen_kappa,
    cohen_kappa_table,
)
from textgauge.errors import InputDataError


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
