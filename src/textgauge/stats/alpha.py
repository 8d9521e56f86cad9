"""Krippendorff's alpha with a vectorised bootstrap over units.

Why: alpha is the coefficient content analysts are asked for (any number of coders, missing
codes, four levels of measurement). The ``krippendorff`` package computes the estimate; it has no
confidence interval. Here each unit's coincidence matrix is computed once, a bootstrap replicate
is a weighted sum of them (weights = how often the unit was drawn), and alpha is evaluated on
the whole (B, K, K) stack at once.

References
----------
Krippendorff (2011) "Computing Krippendorff's Alpha-Reliability", Annenberg School for
Communication, University of Pennsylvania (coincidence matrices and the metric differences);
Krippendorff (2004) Content Analysis, 2nd ed., ch. 11; Zapf et al. (2016) BMC Med Res Methodol
16:93 (bootstrap over units for alpha).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import krippendorff
import numpy as np
import pandas as pd

from textgauge.errors import InputDataError
from textgauge.stats.bootstrap import check_boot_args, ci_from_replicates, unit_resample_counts
from textgauge.stats.inputs import (
    category_codes,
    check_columns,
    check_confidence,
    resolve_categories,
    to_builtin,
)

__all__ = ["AlphaResult", "krippendorff_alpha", "krippendorff_alpha_long", "weighted_alpha"]

_LEVELS = ("nominal", "ordinal", "interval", "ratio")


@dataclass(frozen=True)
class AlphaResult:
    """Krippendorff's alpha with a bootstrap CI over units.

    ``n_units`` counts pairable units (coded by >= 2 coders), ``n_values`` the pairable values.
    """

    estimate: float
    ci_low: float
    ci_high: float
    se: float
    level: str
    n_units: int
    n_coders: int
    n_values: int
    n_boot: int
    method: str
    confidence: float
    seed: int | None
    categories: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return to_builtin(asdict(self))


def _delta(o: np.ndarray, level: str, values: np.ndarray) -> np.ndarray:
    """Metric differences delta^2_ck (Krippendorff 2011, sec. E), broadcast over (..., K, K)."""
    k = o.shape[-1]
    if level == "nominal":
        return 1.0 - np.eye(k)
    if level == "ordinal":
        nc = o.sum(axis=-1)
        cum = np.cumsum(nc, axis=-1)
        # sum_{g=c}^{k} n_g - (n_c + n_k)/2, for c <= k (symmetric once squared)
        d = cum[..., None, :] - cum[..., :, None] + (nc[..., :, None] - nc[..., None, :]) / 2
        return d**2
    v = values.astype(float)
    diff = np.subtract.outer(v, v)
    if level == "interval":
        return diff**2
    tot = np.add.outer(v, v)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(tot != 0, (diff / tot) ** 2, 0.0)


def _alpha_from_coincidences(o: np.ndarray, level: str, values: np.ndarray) -> np.ndarray:
    """alpha = 1 - (n - 1) sum o_ck d_ck / sum n_c n_k d_ck, vectorised over leading axes."""
    d = _delta(o, level, values)
    nc = o.sum(axis=-1)
    n = nc.sum(axis=-1)
    do = (o * d).sum(axis=(-2, -1))
    de = (nc[..., :, None] * nc[..., None, :] * d).sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - (n - 1) * do / de


def _prepare(data: Any, level: str, categories: Sequence | None
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coders x units data -> (unit x category counts, category values, categories, coded).

    ``coded`` is the coders x units matrix of numeric values (NaN = missing).
    """
    if isinstance(data, pd.DataFrame):
        arr = data.to_numpy()
    else:
        try:
            arr = np.asarray(data)
        except ValueError as exc:  # ragged lists
            raise InputDataError(
                f"data must be a rectangular coders x units table: {exc}") from exc
    if arr.ndim != 2:
        raise InputDataError(f"data must be 2-dimensional (coders x units), got {arr.shape}.")
    if arr.dtype.kind == "f":
        miss = np.isnan(arr)
    elif arr.dtype.kind in "iub":
        miss = np.zeros(arr.shape, bool)
    else:
        miss = np.asarray(pd.isna(arr), dtype=bool)
    vals = arr[~miss]
    if vals.size == 0:
        raise InputDataError("data has no non-missing value.")
    if level in ("interval", "ratio"):
        try:
            num = vals.astype(float)
        except (TypeError, ValueError):
            raise InputDataError(
                f"level={level!r} needs numeric codes; data holds non-numeric values. Use "
                "level='nominal' (or 'ordinal' with categories=[...] in order).") from None
        if level == "ratio" and (num < 0).any():
            raise InputDataError("level='ratio' needs non-negative values.")
        vals = num
    cats = resolve_categories(vals, categories, "categories")
    codes = np.full(arr.shape, -1, dtype=np.intp)
    codes[~miss] = category_codes(vals, cats, "data")
    k = len(cats)
    n_coders, n_units = arr.shape
    counts = np.zeros((n_units, k))
    cu, uu = np.nonzero(~miss)
    np.add.at(counts, (uu, codes[cu, uu]), 1)
    if level in ("interval", "ratio"):
        values = np.asarray(cats, dtype=float)
    else:
        values = np.arange(k, dtype=float)
    coded = np.full(arr.shape, np.nan)
    coded[~miss] = values[codes[~miss]]
    return counts, values, np.asarray(cats), coded


def _unit_coincidences(counts: np.ndarray) -> np.ndarray:
    """Per-unit coincidence matrices (U, K, K): (n_uc n_uk - [c==k] n_uc) / (m_u - 1)."""
    m = counts.sum(axis=1)
    outer = counts[:, :, None] * counts[:, None, :]
    idx = np.arange(counts.shape[1])
    outer[:, idx, idx] -= counts
    return outer / (m - 1)[:, None, None]


def krippendorff_alpha(
    data: Any, level: str = "nominal", n_boot: int = 1000, seed: int | None = 0,
    confidence: float = 0.95, method: str = "percentile", categories: Sequence | None = None,
) -> AlphaResult:
    """Krippendorff's alpha for a coders x units table, with a bootstrap CI over units.

    Parameters
    ----------
    data : (coders, units) array-like or DataFrame; None/NaN = not coded. Strings are allowed
        for nominal (and ordinal, with ``categories`` giving the order).
    level : "nominal", "ordinal", "interval" or "ratio".
    n_boot : bootstrap replicates (0 for no interval).
    seed : seed for ``numpy.random.default_rng``.
    confidence : interval level. method : "percentile" or "bca".
    categories : category order (ordinal) or full category set; default: sorted observed.

    Notes
    -----
    The estimate is computed by the ``krippendorff`` package (Castro 2017) and equals the
    coincidence-matrix computation of Krippendorff (2011). Units coded by fewer than two coders
    are not pairable and are ignored. The bootstrap resamples pairable units with replacement
    (Zapf et al. 2016), which differs from Krippendorff's (2004) own algorithm.
    """
    if level not in _LEVELS:
        raise ValueError(f"level must be one of {_LEVELS}, got {level!r}.")
    confidence = check_confidence(confidence)
    if n_boot:
        check_boot_args(n_boot, method)
    counts, values, cats, coded = _prepare(data, level, categories)
    n_coders = coded.shape[0]
    pairable = counts.sum(axis=1) >= 2
    counts = counts[pairable]
    if counts.shape[0] == 0:
        raise InputDataError("no unit was coded by at least two coders; alpha is undefined.")
    if len(cats) < 2:
        raise InputDataError("all pairable values are identical; alpha is undefined.")
    # Estimate via the krippendorff package, on values (interval/ratio) or category codes.
    rel = coded[:, pairable]
    est = float(krippendorff.alpha(reliability_data=rel, level_of_measurement=level,
                                   value_domain=values))
    ou = _unit_coincidences(counts)
    u = ou.shape[0]
    reps = np.empty(0)
    lo = hi = se = float("nan")
    if n_boot:
        ou_flat = ou.reshape(u, -1)
        reps = np.empty(n_boot)
        for start, draws in unit_resample_counts(u, n_boot, seed):
            o = (draws.astype(float) @ ou_flat).reshape(len(draws), *ou.shape[1:])
            reps[start:start + len(draws)] = _alpha_from_coincidences(o, level, values)
        jv = None
        if method == "bca":
            jv = _alpha_from_coincidences(ou.sum(axis=0)[None] - ou, level, values)
        lo, hi = ci_from_replicates(est, reps, confidence, method, jv)
        fin = reps[np.isfinite(reps)]
        se = float(np.std(fin, ddof=1)) if fin.size > 1 else float("nan")
    return AlphaResult(
        estimate=est, ci_low=lo, ci_high=hi, se=se, level=level, n_units=int(u),
        n_coders=int(n_coders), n_values=int(counts.sum()), n_boot=int(n_boot), method=method,
        confidence=confidence, seed=seed, categories=tuple(to_builtin(list(cats))),
    )


def krippendorff_alpha_long(
    df: pd.DataFrame, unit: str = "id", coder: str = "coder", label: str = "label",
    level: str = "nominal", n_boot: int = 1000, seed: int | None = 0,
    confidence: float = 0.95, method: str = "percentile", categories: Sequence | None = None,
) -> AlphaResult:
    """Krippendorff's alpha from long-format codes (one row per unit x coder).

    A coder who coded the same unit twice is an error (the pairs are listed in the message).
    """
    check_columns(df, {"unit": unit, "coder": coder, "label": label})
    d = df[[unit, coder, label]]
    dup = d.duplicated([unit, coder], keep=False) & d[label].notna()
    if dup.any():
        rows = d.loc[dup, [unit, coder]].drop_duplicates().head(10).values.tolist()
        raise InputDataError(f"some coders coded the same unit more than once: {rows}.")
    wide = d.dropna(subset=[label]).pivot(index=coder, columns=unit, values=label)
    return krippendorff_alpha(wide.to_numpy(dtype=object), level=level, n_boot=n_boot,
                              seed=seed, confidence=confidence, method=method,
                              categories=categories)


#: how :func:`weighted_alpha` resamples, written into its result (the methods text reads it)
WEIGHTED_ALPHA_METHOD = "percentile bootstrap over units within design cells (Rao-Wu)"


def _normalised(o_units: np.ndarray, w: np.ndarray, n_values: float) -> np.ndarray:
    """sum_u w_u o_u scaled so its total is ``n_values`` (leading axes: replicates)."""
    o = np.tensordot(w, o_units, axes=([-1], [0]))
    tot = o.sum(axis=(-2, -1), keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return o * (n_values / tot)


def weighted_alpha(
    data: Any, design_weights: Any, cells: Any = None, level: str = "nominal",
    n_boot: int = 1000, seed: int | None = 0, confidence: float = 0.95,
    categories: Sequence | None = None,
) -> AlphaResult:
    """Design-weighted Krippendorff's alpha of a coders x units table (units = gold items
    drawn with unequal inclusion probabilities), with a bootstrap within design cells.

    Why: alpha's coincidence matrix sums the units' coincidences; on a model-assisted gold
    sample the over-sampled cells (rare predicted labels, low-confidence texts) would
    dominate it. Here unit ``u``'s coincidences count ``w_u`` times (its design weight), and
    the weighted matrix is rescaled to the number of pairable values ``n``, so the
    ``(n - 1)`` small-sample factor of alpha keeps its meaning and equal weights give the
    unweighted alpha exactly (up to floating point). The bootstrap resamples units within
    their design cells (``n_h - 1`` draws, weights scaled by ``n_h / (n_h - 1)``: Rao & Wu
    1988), each replicate rescaled to ``n`` the same way; percentile interval.

    ``design_weights``/``cells``: one per unit (column of ``data``); units coded by fewer than
    two coders are not pairable and are ignored with their weights. ``level``: "nominal" or
    "ordinal" (the ordinal distances use the weighted category totals).
    """
    if level not in ("nominal", "ordinal"):
        raise ValueError(f"weighted_alpha supports level 'nominal' or 'ordinal', got {level!r}.")
    confidence = check_confidence(confidence)
    if n_boot:
        check_boot_args(n_boot, "percentile")
    counts, values, cats, coded = _prepare(data, level, categories)
    w_all = np.asarray(design_weights, dtype=float)
    if w_all.shape != (counts.shape[0],):
        raise InputDataError(f"design_weights must hold one weight per unit ({counts.shape[0]}),"
                             f" got shape {w_all.shape}.")
    if not np.isfinite(w_all).all() or (w_all <= 0).any():
        raise InputDataError("design_weights must be positive and finite.")
    cell_all = (np.zeros(counts.shape[0], dtype=object) if cells is None
                else np.asarray(cells, dtype=object))
    if len(cell_all) != counts.shape[0]:
        raise InputDataError(f"cells must name one design cell per unit ({counts.shape[0]}).")
    pairable = counts.sum(axis=1) >= 2
    counts, w, cell = counts[pairable], w_all[pairable], cell_all[pairable]
    if counts.shape[0] == 0:
        raise InputDataError("no unit was coded by at least two coders; alpha is undefined.")
    if len(cats) < 2:
        raise InputDataError("all pairable values are identical; alpha is undefined.")
    ou = _unit_coincidences(counts)
    n_values = float(counts.sum())
    est = float(_alpha_from_coincidences(_normalised(ou, w, n_values), level, values))
    lo = hi = se = float("nan")
    if n_boot:
        rng = np.random.default_rng(seed)
        mult = np.zeros((int(n_boot), len(w)))
        codes = pd.factorize(pd.Series(cell).astype(str), sort=True)[0]
        for h in np.unique(codes):
            idx = np.flatnonzero(codes == h)
            n_h = len(idx)
            if n_h == 1:  # no within-cell variance: the unit stays as drawn
                mult[:, idx] = 1.0
                continue
            mult[:, idx] = rng.multinomial(n_h - 1, np.full(n_h, 1.0 / n_h),
                                           size=int(n_boot)) * (n_h / (n_h - 1))
        reps = _alpha_from_coincidences(_normalised(ou, mult * w, n_values), level, values)
        lo, hi = ci_from_replicates(est, reps, confidence, "percentile")
        fin = reps[np.isfinite(reps)]
        se = float(np.std(fin, ddof=1)) if fin.size > 1 else float("nan")
    return AlphaResult(
        estimate=est, ci_low=lo, ci_high=hi, se=se, level=level, n_units=int(len(w)),
        n_coders=int(coded.shape[0]), n_values=int(n_values), n_boot=int(n_boot),
        method=WEIGHTED_ALPHA_METHOD, confidence=confidence, seed=seed,
        categories=tuple(to_builtin(list(cats))),
    )
