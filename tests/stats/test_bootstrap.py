"""The one seeded, vectorised bootstrap (textgauge.stats.bootstrap)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score

from textgauge.agreement import (
    bootstrap_kappa,
    bootstrap_macro_f1,
    cohen_kappa,
)


def test_bootstrap_kappa_seeded_and_consistent():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 3, 400)
    b = np.where(rng.random(400) < 0.7, a, rng.integers(0, 3, 400))
    r1 = bootstrap_kappa(a, b, n_boot=400, seed=5, engine="indices")
    r2 = bootstrap_kappa(a, b, n_boot=400, seed=5, engine="indices")
    assert r1.ci_low == r2.ci_low and r1.ci_high == r2.ci_high
    assert r1.estimate == pytest.approx(cohen_kappa_score(a, b))
    # replicate 0 equals sklearn on the same resample (same generator, same draws)
    idx = np.random.default_rng(5).integers(0, 400, size=(1, 400), dtype=np.int32)[0]
    assert r1.replicates[0] == pytest.approx(cohen_kappa_score(a[idx], b[idx]))
    an = cohen_kappa(a, b)
    assert r1.se == pytest.approx(an.se, rel=0.15)
    bca = bootstrap_kappa(a, b, n_boot=400, seed=5, method="bca")
    assert bca.ci_low < bca.estimate < bca.ci_high
    mult = bootstrap_kappa(a, b, n_boot=2000, seed=5, engine="multinomial")
    assert mult.se == pytest.approx(r1.se, rel=0.15)
    json.dumps(r1.to_dict())


def test_bootstrap_macro_f1():
    y = [0, 1, 2, 2, 2, 1, 0, 0, 1, 2] * 10
    p = [0, 0, 2, 2, 1, 1, 0, 1, 1, 2] * 10
    r = bootstrap_macro_f1(y, p, n_boot=300, seed=0, method="bca")
    assert r.estimate == pytest.approx(f1_score(y, p, average="macro"))
    assert r.ci_low < r.estimate < r.ci_high
