"""Coverage of the analytic and bootstrap 95% CIs of kappa over 1,000 simulated studies."""

from __future__ import annotations

import numpy as np

from textgauge.agreement import bootstrap_kappa, cohen_kappa_table
from textgauge.stats.samplesize import cell_probabilities

TRUE_KAPPA = 0.6
PREV = [0.5, 0.3, 0.2]
N_ITEMS = 300
N_STUDIES = 1000


def _studies(seed: int = 2024) -> np.ndarray:
    """Contingency tables of N_STUDIES studies from a population with kappa = TRUE_KAPPA."""
    cells = cell_probabilities(TRUE_KAPPA, PREV).ravel()
    rng = np.random.default_rng(seed)
    return rng.multinomial(N_ITEMS, cells, size=N_STUDIES).reshape(N_STUDIES, 3, 3)


def test_analytic_and_bootstrap_ci_coverage():
    tables = _studies()
    hit_an = hit_pct = 0
    for s, t in enumerate(tables):
        an = cohen_kappa_table(t)
        hit_an += an.ci_low <= TRUE_KAPPA <= an.ci_high
        y1 = np.repeat(np.repeat(np.arange(3), 3), t.ravel())
        y2 = np.repeat(np.tile(np.arange(3), 3), t.ravel())
        bs = bootstrap_kappa(y1, y2, n_boot=1000, seed=s)
        hit_pct += bs.ci_low <= TRUE_KAPPA <= bs.ci_high
    cov_an, cov_pct = hit_an / N_STUDIES, hit_pct / N_STUDIES
    print(f"coverage analytic={cov_an:.3f} bootstrap-percentile={cov_pct:.3f}")
    assert 0.93 <= cov_an <= 0.97
    assert 0.93 <= cov_pct <= 0.97


def test_bca_coverage():
    tables = _studies(seed=7)[:400]
    hits = 0
    for s, t in enumerate(tables):
        y1 = np.repeat(np.repeat(np.arange(3), 3), t.ravel())
        y2 = np.repeat(np.tile(np.arange(3), 3), t.ravel())
        bs = bootstrap_kappa(y1, y2, n_boot=1000, seed=s, method="bca")
        hits += bs.ci_low <= TRUE_KAPPA <= bs.ci_high
    cov = hits / len(tables)
    print(f"coverage bootstrap-BCa={cov:.3f} (400 studies)")
    assert 0.92 <= cov <= 0.975
