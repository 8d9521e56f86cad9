"""Sample-size planner for kappa, checked by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from textgauge.stats import kappa_parts
from textgauge.stats.samplesize import (
    cell_probabilities,
    kappa_n_for_ci,
    kappa_n_for_test,
    kappa_variance_per_item,
    samplesize_cli,
)

PREV = [0.2, 0.3, 0.5]


def _simulate(kappa: float, n: int, prev, reps: int, seed: int) -> dict[str, np.ndarray]:
    cells = cell_probabilities(kappa, prev).ravel()
    k = len(prev)
    t = np.random.default_rng(seed).multinomial(n, cells, size=reps).reshape(reps, k, k)
    return kappa_parts(t.astype(float), np.eye(k))


def test_cell_probabilities_have_requested_kappa_and_margins():
    c = cell_probabilities(0.55, PREV)
    np.testing.assert_allclose(c.sum(0), PREV)
    np.testing.assert_allclose(c.sum(1), PREV)
    assert float(kappa_parts(c, np.eye(3))["kappa"]) == pytest.approx(0.55)
    with pytest.raises(ValueError, match="impossible"):
        cell_probabilities(-0.9, [0.9, 0.1])


def test_ci_half_width_by_simulation():
    n = kappa_n_for_ci(0.7, 0.08, prevalences=PREV)
    sim = _simulate(0.7, n, PREV, reps=4000, seed=1)
    half = 1.959964 * np.sqrt(sim["var"])
    assert np.median(half) == pytest.approx(0.08, rel=0.05)
    cover = np.mean(np.abs(sim["kappa"] - 0.7) <= half)
    assert 0.93 <= cover <= 0.97
    # a design one third smaller is too imprecise
    assert kappa_n_for_ci(0.7, 0.08, prevalences=PREV) > 1.4 * kappa_n_for_ci(
        0.7, 0.08 * 1.2, prevalences=PREV)


@pytest.mark.parametrize("prev,k0,k1", [(PREV, 0.6, 0.8), ([0.3, 0.7], 0.4, 0.6)])
def test_power_by_simulation(prev, k0, k1):
    n = kappa_n_for_test(k0, k1, prevalences=prev, alpha=0.05, power=0.8)
    sim = _simulate(k1, n, prev, reps=4000, seed=2)
    se0 = np.sqrt(kappa_variance_per_item(k0, prev) / n)
    power = np.mean((sim["kappa"] - k0) / se0 > stats.norm.ppf(0.95))
    assert power == pytest.approx(0.8, abs=0.04)
    # size under H0
    sim0 = _simulate(k0, n, prev, reps=4000, seed=3)
    size = np.mean((sim0["kappa"] - k0) / se0 > stats.norm.ppf(0.95))
    assert size == pytest.approx(0.05, abs=0.025)


def test_donner_eliasziw_binary_close_to_cantor():
    de = kappa_n_for_test(0.4, 0.6, prevalences=[0.3, 0.7], method="donner-eliasziw")
    ca = kappa_n_for_test(0.4, 0.6, prevalences=[0.3, 0.7])
    assert 0.8 < de / ca < 1.25
    with pytest.raises(ValueError, match="two categories"):
        kappa_n_for_test(0.4, 0.6, prevalences=PREV, method="donner-eliasziw")


def test_cli(capsys):
    assert samplesize_cli(["ci", "--kappa", "0.7", "--half-width", "0.1",
                           "--n-categories", "3"]) == 0
    assert str(kappa_n_for_ci(0.7, 0.1, n_categories=3)) in capsys.readouterr().out
    assert samplesize_cli(["test", "--kappa0", "0.8", "--kappa1", "0.6",
                           "--n-categories", "3"]) == 2
