"""Vectorised, seeded bootstrap confidence intervals for agreement and classification metrics.

Why: analytic standard errors exist for kappa but not for macro-F1, and they are
large-sample approximations. The bootstrap over items gives intervals for any table-based
statistic. Looping ``sklearn.metrics`` over 1,000 resamples of a large coding sheet takes
minutes; here the resampled indices are drawn in blocks, mapped to contingency-table cells and
counted with a single ``np.bincount`` over ``replicate * K*K + cell`` per block, so no Python loop
runs over replicates and every statistic is computed on a (B, K, K) stack of tables. Because a
resample of pairs only matters through its table, the default engine draws the B tables directly
from Multinomial(n, observed cell proportions) -- the same bootstrap distribution at O(B*K^2)
cost, which makes a 1,000-replicate CI on millions of items take milliseconds.

References
----------
Efron & Tibshirani (1993) An Introduction to the Bootstrap, ch. 13-14 (percentile and BCa,
eq. 14.14-14.15 for the acceleration from the jackknife); DiCiccio & Efron (1996) Stat Sci
11:189-228.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from textgauge.errors import InputDataError
from textgauge.stats.cac import cac_estimates
from textgauge.stats.inputs import (
    WeightsArg,
    agreement_weights,
    check_confidence,
    contingency_table,
    encode_pair,
    to_builtin,
)
from textgauge.stats.kappa import kappa_from_tables

__all__ = [
    "BootstrapResult",
    "bootstrap_agreement",
    "bootstrap_kappa",
    "bootstrap_macro_f1",
    "bootstrap_tables",
    "check_boot_args",
    "ci_from_replicates",
    "f1_from_tables",
    "jackknife_tables",
    "macro_f1_from_tables",
    "unit_resample_counts",
]

#: Upper bound on resampled indices held in memory at once (per block of replicates).
_BLOCK_ELEMENTS = 1 << 24
#: The same bound for the unit bootstrap of Krippendorff's alpha (its blocks are (B, U) counts).
_UNIT_BLOCK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class BootstrapResult:
    """A statistic with a bootstrap confidence interval.

    ``se`` is the standard deviation of the replicates; ``n_invalid`` counts replicates where
    the statistic was undefined (e.g. kappa when a resample holds a single category), which are
    ignored. ``replicates`` is kept for plots but left out of :meth:`to_dict`.
    """

    statistic: str
    estimate: float
    ci_low: float
    ci_high: float
    se: float
    n: int
    n_boot: int
    method: str
    confidence: float
    seed: int | None
    n_dropped: int = 0
    n_invalid: int = 0
    replicates: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False,
                                   compare=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict without the replicates."""
        d = asdict(self)
        d.pop("replicates")
        return to_builtin(d)


def check_boot_args(n_boot: int, method: str) -> None:
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}.")
    if method not in ("percentile", "bca"):
        raise ValueError(f"method must be 'percentile' or 'bca', got {method!r}.")


def bootstrap_tables(codes1: np.ndarray, codes2: np.ndarray, k: int, n_boot: int = 1000,
                     seed: int | None = 0, engine: str = "multinomial") -> np.ndarray:
    """(n_boot, K, K) contingency tables of item-level bootstrap resamples.

    ``engine="indices"`` resamples item indices (blocks of replicates at a time, so memory stays
    bounded) and counts cells with one ``np.bincount`` on ``rep*K*K + cell`` per block.
    ``engine="multinomial"`` draws each replicate's table directly from
    Multinomial(n, observed cell proportions), which has exactly the same distribution as the
    index bootstrap of pairs and costs O(n_boot * K^2) instead of O(n_boot * n).
    """
    n = len(codes1)
    kk = k * k
    cell = np.asarray(codes1, dtype=np.int64) * k + np.asarray(codes2, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if engine == "multinomial":
        probs = np.bincount(cell, minlength=kk) / n
        return rng.multinomial(n, probs, size=n_boot).reshape(n_boot, k, k)
    if engine != "indices":
        raise ValueError(f"engine must be 'indices' or 'multinomial', got {engine!r}.")
    small = np.int32 if n < 2**31 else np.int64
    cell = cell.astype(np.int32 if kk * min(n_boot, _BLOCK_ELEMENTS) < 2**31 else np.int64)
    out = np.empty((n_boot, kk), dtype=np.int64)
    block = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, n_boot, block):  # loop over memory blocks, not replicates
        m = min(block, n_boot - start)
        idx = rng.integers(0, n, size=(m, n), dtype=small)
        cells = cell[idx]
        cells += (np.arange(m, dtype=cells.dtype) * kk)[:, None]
        out[start:start + m] = np.bincount(cells.ravel(), minlength=m * kk).reshape(m, kk)
    return out.reshape(n_boot, k, k)


def jackknife_tables(table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-item-out tables: one per occupied cell, weighted by the cell count."""
    k = table.shape[0]
    flat = table.ravel()
    occ = np.flatnonzero(flat > 0)
    jt = np.repeat(table[None].astype(float), len(occ), axis=0).reshape(len(occ), k * k)
    jt[np.arange(len(occ)), occ] -= 1
    return jt.reshape(len(occ), k, k), flat[occ].astype(float)


def ci_from_replicates(estimate: float, reps: np.ndarray, confidence: float, method: str,
                       jack_values: np.ndarray | None = None,
                       jack_weights: np.ndarray | None = None) -> tuple[float, float]:
    """Percentile or BCa interval from bootstrap replicates (NaN replicates ignored).

    BCa: bias correction z0 = Phi^-1(#{theta* < theta} / B) (ties count half) and acceleration
    a = sum d^3 / (6 (sum d^2)^1.5) with d the jackknife deviations (Efron & Tibshirani 1993,
    eqs. 14.14-14.15); ``jack_weights`` lets identical leave-one-out values be given once.
    """
    r = reps[np.isfinite(reps)]
    alpha = 1 - confidence
    if r.size == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    if method == "percentile":
        lo, hi = np.quantile(r, [alpha / 2, 1 - alpha / 2])
        return float(lo), float(hi)
    b = r.size
    prop = (np.sum(r < estimate) + 0.5 * np.sum(r == estimate)) / b
    prop = min(max(prop, 1 / (2 * b)), 1 - 1 / (2 * b))
    z0 = stats.norm.ppf(prop)
    a = 0.0
    if jack_values is not None:
        jw = np.ones_like(jack_values) if jack_weights is None else jack_weights
        ok = np.isfinite(jack_values)
        jv, jw = jack_values[ok], jw[ok]
        if jv.size:
            d = np.sum(jw * jv) / np.sum(jw) - jv
            den = 6 * np.sum(jw * d**2) ** 1.5
            a = float(np.sum(jw * d**3) / den) if den > 0 else 0.0
    zq = stats.norm.ppf([alpha / 2, 1 - alpha / 2])
    adj = stats.norm.cdf(z0 + (z0 + zq) / (1 - a * (z0 + zq)))
    lo, hi = np.quantile(r, adj)
    return float(lo), float(hi)


def f1_from_tables(tables: np.ndarray) -> np.ndarray:
    """Per-class F1 of confusion tables (..., K, K) -> (..., K) (rows = truth, columns =
    prediction); a class with no true and no predicted item has F1 = 0 (``zero_division=0``)."""
    tp = np.diagonal(tables, axis1=-2, axis2=-1).astype(float)
    denom = tables.sum(axis=-1) + tables.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denom > 0, 2 * tp / denom, 0.0)


def macro_f1_from_tables(tables: np.ndarray, scored: Any = None) -> np.ndarray:
    """Macro-averaged F1 of confusion tables (..., K, K) (rows = truth, columns = prediction).

    ``scored`` (indices of categories; default all) are the classes averaged over: the
    category that holds invalid answers is a column of the table (its answers are errors of
    their true class) but not a class of the average. A scored class with no true and no
    predicted item has F1 = 0, as scikit-learn's ``f1_score`` with ``labels`` fixed and
    ``zero_division=0``.
    """
    f1 = f1_from_tables(tables)
    if scored is not None:
        f1 = f1[..., np.asarray(scored, dtype=np.intp)]
    return f1.mean(axis=-1)


def _statistic_fn(statistic: str, w: np.ndarray,
                  scored: Any = None) -> Callable[[np.ndarray], np.ndarray]:
    if statistic == "kappa":
        return lambda t: kappa_from_tables(t, w)
    if statistic == "macro_f1":
        return lambda t: macro_f1_from_tables(t, scored)
    if statistic == "accuracy":
        return lambda t: np.trace(t, axis1=-2, axis2=-1) / t.sum(axis=(-2, -1))
    if statistic in ("gwet_ac1", "scott_pi", "brennan_prediger"):
        return lambda t: cac_estimates(t.astype(float), w, statistic)["coef"]
    raise ValueError("statistic must be one of 'kappa', 'macro_f1', 'accuracy', 'gwet_ac1', "
                     f"'scott_pi', 'brennan_prediger'; got {statistic!r}.")


def bootstrap_agreement(
    y1: Any, y2: Any, statistic: str = "kappa", weights: WeightsArg = None, labels: Any = None,
    n_boot: int = 1000, seed: int | None = 0, method: str = "percentile",
    confidence: float = 0.95, engine: str = "multinomial", scored: Any = None,
) -> BootstrapResult:
    """Bootstrap CI (items resampled with replacement) for a table-based statistic.

    Parameters
    ----------
    y1, y2 : paired labels (rater 1 / rater 2, or truth / prediction); missing pairs dropped.
    statistic : "kappa", "macro_f1", "accuracy", "gwet_ac1", "scott_pi" or "brennan_prediger".
    weights : agreement weights for kappa and the CACs (see ``agreement_weights``).
    labels : category set and order; default: observed in either vector.
    n_boot, seed : number of replicates and seed of ``numpy.random.default_rng``.
    method : "percentile" or "bca" (bias-corrected and accelerated, jackknife acceleration).
    engine : "multinomial" (default: draw each replicate's table from Multinomial(n, observed
        cell proportions) -- exactly the distribution of the item bootstrap, O(B*K^2)) or
        "indices" (resample item indices and bincount cells; O(B*n), same distribution,
        different random stream).
    scored : for macro-F1, the categories averaged over (default: all of ``labels``); the
        others stay in the table, so their items count as errors of their true class.
    """
    check_boot_args(n_boot, method)
    confidence = check_confidence(confidence)
    names = ("y_true", "y_pred") if statistic in ("macro_f1", "accuracy") else ("y1", "y2")
    c1, c2, cats, n_dropped = encode_pair(y1, y2, labels, names=names)
    k = len(cats)
    w = agreement_weights(k, weights)
    idx = None
    if scored is not None:
        idx = pd.Index(cats).get_indexer(list(scored))
        if (idx < 0).any():
            raise InputDataError(f"scored lists categories that are not in labels: {scored}.")
    fn = _statistic_fn(statistic, w, idx)
    table = contingency_table(c1, c2, k)
    est = float(fn(table[None].astype(float))[0])
    tabs = bootstrap_tables(c1, c2, k, n_boot=n_boot, seed=seed, engine=engine)
    reps = np.asarray(fn(tabs), dtype=float)
    jv = jw = None
    if method == "bca":
        jt, jw = jackknife_tables(table)
        jv = np.asarray(fn(jt), dtype=float)
    lo, hi = ci_from_replicates(est, reps, confidence, method, jv, jw)
    finite = np.isfinite(reps)
    return BootstrapResult(
        statistic=statistic, estimate=est, ci_low=lo, ci_high=hi,
        se=float(np.std(reps[finite], ddof=1)) if finite.sum() > 1 else float("nan"),
        n=len(c1), n_boot=int(n_boot), method=method, confidence=confidence, seed=seed,
        n_dropped=n_dropped, n_invalid=int((~finite).sum()), replicates=reps,
    )


def bootstrap_kappa(
    y1: Any, y2: Any, weights: WeightsArg = None, labels: Any = None, n_boot: int = 1000,
    seed: int | None = 0, method: str = "percentile", confidence: float = 0.95,
    engine: str = "multinomial",
) -> BootstrapResult:
    """Bootstrap CI for Cohen's (weighted) kappa. See :func:`bootstrap_agreement`."""
    return bootstrap_agreement(y1, y2, "kappa", weights=weights, labels=labels, n_boot=n_boot,
                               seed=seed, method=method, confidence=confidence, engine=engine)


def bootstrap_macro_f1(
    y_true: Any, y_pred: Any, labels: Any = None, n_boot: int = 1000, seed: int | None = 0,
    method: str = "percentile", confidence: float = 0.95, engine: str = "multinomial",
    scored: Any = None,
) -> BootstrapResult:
    """Bootstrap CI for macro-F1 (labels fixed to the full-sample set in every replicate).

    The point estimate equals ``sklearn.metrics.f1_score(y_true, y_pred, average="macro",
    labels=scored or labels, zero_division=0)``; ``scored`` leaves a category (invalid
    answers) in the table but out of the average.
    """
    if labels is not None and len(labels) == 0:
        raise InputDataError("labels must list at least one class.")
    return bootstrap_agreement(y_true, y_pred, "macro_f1", labels=labels, n_boot=n_boot,
                               seed=seed, method=method, confidence=confidence, engine=engine,
                               scored=scored)


def unit_resample_counts(n_units: int, n_boot: int, seed: int | None = 0,
                         ) -> Iterator[tuple[int, np.ndarray]]:
    """The unit bootstrap as counts: blocks ``(start, counts)`` with ``counts[b, u]`` = how
    often unit ``u`` is drawn in replicate ``start + b`` (units resampled with replacement).

    For statistics that are sums over units (Krippendorff's alpha: a replicate's coincidence
    matrix is ``counts @ unit_coincidences``), so a whole block of replicates is one matrix
    product and no Python loop runs over replicates. Blocks bound memory to about 4M draws.
    """
    rng = np.random.default_rng(seed)
    block = max(1, _UNIT_BLOCK_ELEMENTS // max(n_units, 1))
    for start in range(0, n_boot, block):  # memory blocks, not single replicates
        m = min(block, n_boot - start)
        idx = rng.integers(0, n_units, size=(m, n_units))
        idx += (np.arange(m) * n_units)[:, None]
        yield start, np.bincount(idx.ravel(), minlength=m * n_units).reshape(m, n_units)
