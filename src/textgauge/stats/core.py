"""Chance-corrected agreement coefficients with analytic standard errors.

Why this module exists: scikit-learn gives Cohen's kappa as a bare number and statsmodels gives
Fleiss' kappa without its null standard error; a validation study needs the estimate *and* its
uncertainty, computed the way the reference packages (SAS PROC FREQ, R ``irr``, R ``irrCAC``)
compute it, so that a reviewer can reproduce every number. Everything here works on contingency
tables, so it is vectorised over a leading "replicate" axis and reused by the bootstrap.

Conventions
-----------
* Weights are *agreement* weights ``w[i, j]`` in [0, 1] with ones on the diagonal (Cohen 1968;
  Fleiss, Levin & Paik 2003, sec. 18.2). ``"linear"`` are the Cicchetti–Allison weights
  ``1 - |i-j|/(K-1)``, ``"quadratic"`` the Fleiss–Cohen weights ``1 - (i-j)^2/(K-1)^2``; both use
  the *positions* of the categories, as SAS, R ``irr`` and scikit-learn do.
* With ``labels=None`` the categories are those observed in either rating vector, sorted
  (as R ``irr::kappa2`` and ``sklearn.metrics.cohen_kappa_score`` do).
* Missing ratings (``None``/``NaN``) are dropped pairwise; results report ``n`` (pairs used) and
  ``n_dropped``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from textgauge.errors import InputDataError

WeightsArg = str | np.ndarray | Sequence[Sequence[float]] | None

__all__ = [
    "AgreementResult",
    "FleissResult",
    "KappaResult",
    "agreement_weights",
    "brennan_prediger",
    "brennan_prediger_table",
    "cohen_kappa",
    "cohen_kappa_table",
    "contingency_table",
    "fleiss_kappa",
    "fleiss_kappa_long",
    "gwet_ac1",
    "gwet_ac1_counts",
    "gwet_ac1_table",
    "scott_pi",
    "scott_pi_table",
]


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------


def _as_1d(y: Any, name: str) -> np.ndarray:
    """Return ``y`` as a 1-D numpy array or raise an error naming the argument."""
    if isinstance(y, pd.DataFrame):
        raise InputDataError(f"{name} must be one column of labels, got a DataFrame.")
    arr = y.to_numpy() if isinstance(y, pd.Series | pd.Index) else np.asarray(y)
    if arr.ndim != 1:
        raise InputDataError(f"{name} must be 1-dimensional, got shape {arr.shape}.")
    return arr


def _missing_mask(arr: np.ndarray) -> np.ndarray:
    """True where a rating is missing (None or NaN)."""
    kind = arr.dtype.kind
    if kind == "f":
        return np.isnan(arr)
    if kind in "iubUS":
        return np.zeros(arr.shape, dtype=bool)
    return np.asarray(pd.isna(arr), dtype=bool)


def _resolve_categories(values: np.ndarray, labels: Any, name: str) -> np.ndarray:
    """Categories: ``labels`` as given (validated) or the sorted observed values."""
    if labels is None:
        try:
            return np.unique(values)
        except TypeError:  # mixed types that cannot be sorted: keep order of appearance
            return np.asarray(pd.unique(values), dtype=object)
    cats = _as_1d(labels, "labels")
    if len(cats) == 0:
        raise InputDataError("labels must list at least one category.")
    if _missing_mask(cats).any():
        raise InputDataError("labels must not contain missing values (None/NaN).")
    if len(pd.unique(cats)) != len(cats):
        raise InputDataError("labels contains duplicated categories.")
    return cats


def _codes(values: np.ndarray, cats: np.ndarray, name: str) -> np.ndarray:
    """Integer codes of ``values`` in ``cats``; unknown values raise an error naming ``name``."""
    idx = pd.Index(cats).get_indexer(values)
    if (idx < 0).any():
        bad = pd.unique(values[idx < 0])[:10]
        raise InputDataError(
            f"{name} contains values that are not in labels: {list(bad)}. "
            "Add them to labels or recode them."
        )
    return idx.astype(np.intp, copy=False)


def encode_pair(
    y1: Any, y2: Any, labels: Any = None, names: tuple[str, str] = ("y1", "y2")
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Encode two paired rating vectors as integer codes.

    Returns ``(codes1, codes2, categories, n_dropped)`` after dropping pairs where either rating
    is missing.
    """
    a = _as_1d(y1, names[0])
    b = _as_1d(y2, names[1])
    if len(a) != len(b):
        raise InputDataError(
            f"{names[0]} and {names[1]} must have the same length (one rating per item); "
            f"got {len(a)} and {len(b)}."
        )
    keep = ~(_missing_mask(a) | _missing_mask(b))
    n_dropped = int(len(a) - keep.sum())
    if n_dropped:
        a, b = a[keep], b[keep]
    if len(a) == 0:
        raise InputDataError(
            f"{names[0]} and {names[1]} have no item rated by both (after dropping missing)."
        )
    if labels is None:
        if a.dtype.kind in "iub" and b.dtype.kind in "iub":
            cats = np.union1d(a, b)
        else:
            cats = _resolve_categories(np.concatenate([a.astype(object), b.astype(object)])
                                       if a.dtype != b.dtype else np.concatenate([a, b]),
                                       None, names[0])
    else:
        cats = _resolve_categories(np.empty(0), labels, "labels")
    return _codes(a, cats, names[0]), _codes(b, cats, names[1]), cats, n_dropped


def contingency_table(codes1: np.ndarray, codes2: np.ndarray, k: int) -> np.ndarray:
    """K x K table of counts: rows = first rater (or truth), columns = second (or prediction)."""
    return np.bincount(codes1 * k + codes2, minlength=k * k).reshape(k, k)


def _check_table(table: Any, name: str = "table") -> np.ndarray:
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise InputDataError(f"{name} must be a square K x K contingency table, got {t.shape}.")
    if not np.isfinite(t).all() or (t < 0).any():
        raise InputDataError(f"{name} must contain finite, non-negative counts.")
    if t.sum() <= 0:
        raise InputDataError(f"{name} is empty (all counts are zero).")
    return t


def _check_confidence(confidence: float) -> float:
    if not (isinstance(confidence, int | float) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}.")
    return float(confidence)


def agreement_weights(k: int, weights: WeightsArg = None) -> np.ndarray:
    """Agreement-weight matrix for ``k`` ordered categories.

    ``None`` (or ``"identity"``/``"unweighted"``) gives the identity (unweighted coefficients);
    ``"linear"`` gives Cicchetti–Allison weights ``1 - |i-j|/(k-1)`` and ``"quadratic"`` the
    Fleiss–Cohen weights ``1 - (i-j)^2/(k-1)^2``. A ``k x k`` matrix is validated and returned.

    References: Cicchetti & Allison (1971) Am J EEG Technol 11:101-109; Fleiss & Cohen (1973)
    Educ Psychol Meas 33:613-619; Cohen (1968) Psychol Bull 70:213-220.
    """
    if weights is None or (isinstance(weights, str) and weights in ("identity", "unweighted")):
        return np.eye(k)
    if isinstance(weights, str):
        d = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
        scale = max(k - 1, 1)
        if weights == "linear":
            return 1.0 - d / scale
        if weights == "quadratic":
            return 1.0 - (d / scale) ** 2
        raise ValueError(
            f"weights must be None, 'linear', 'quadratic' or a K x K matrix, got {weights!r}."
        )
    w = np.asarray(weights, dtype=float)
    if w.shape != (k, k):
        raise ValueError(f"weights matrix must have shape ({k}, {k}) for {k} categories, "
                         f"got {w.shape}.")
    if not np.isfinite(w).all() or (w < 0).any() or (w > 1).any():
        raise ValueError("weights matrix must contain agreement weights in [0, 1].")
    if not np.allclose(np.diag(w), 1.0):
        raise ValueError(
            "weights matrix must hold agreement weights with ones on the diagonal. For "
            "disagreement weights d (zeros on the diagonal, as scikit-learn uses) pass "
            "1 - d / d.max()."
        )
    return w


def _weights_name(weights: WeightsArg) -> str:
    if weights is None:
        return "unweighted"
    return weights if isinstance(weights, str) else "custom"


def _to_builtin(x: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to JSON-friendly Python objects."""
    if isinstance(x, dict):
        return {str(k): _to_builtin(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_to_builtin(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_to_builtin(v) for v in x.tolist()]
    if isinstance(x, pd.DataFrame):
        return [_to_builtin(r) for r in x.to_dict(orient="records")]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


# --------------------------------------------------------------------------------------------
# Cohen's kappa
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KappaResult:
    """Cohen's (weighted) kappa with its asymptotic inference.

    ``se`` is the large-sample standard error for confidence intervals and ``se0`` the one under
    H0: kappa = 0, used for ``z`` and the two-sided ``p_value`` (Fleiss, Cohen & Everitt 1969).
    ``n`` is the number of items rated by both raters; ``n_dropped`` the items dropped because one
    rating was missing.
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    se0: float
    z: float
    p_value: float
    p_observed: float
    p_expected: float
    n: int
    n_dropped: int = 0
    weights: str = "unweighted"
    confidence: float = 0.95
    categories: tuple = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (NaN/inf become None)."""
        return _to_builtin(asdict(self))


def _kappa_parts(t: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Vectorised kappa and Fleiss–Cohen–Everitt variances for tables ``t`` of shape (..., K, K).

    Var(k) = [sum_ij p_ij (w_ij - (wb_i. + wb_.j)(1-k))^2 - (k - pe(1-k))^2] / (n (1-pe)^2)
    Var0   = [sum_ij p_i. p_.j (w_ij - (wb_i. + wb_.j))^2 - pe^2] / (n (1-pe)^2)
    with wb_i. = sum_j w_ij p_.j and wb_.j = sum_i w_ij p_i.
    Reference: Fleiss, Cohen & Everitt (1969) Psychol Bull 72:323-327, eqs. 13-14 (as corrected
    in Fleiss, Levin & Paik 2003, eqs. 18.12-18.16); SAS/STAT PROC FREQ "Weighted Kappa".
    """
    n = t.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = t / n[..., None, None]
        pr = p.sum(axis=-1)
        pc = p.sum(axis=-2)
        po = (w * p).sum(axis=(-2, -1))
        pe = np.einsum("...i,ij,...j->...", pr, w, pc)
        kappa = (po - pe) / (1.0 - pe)
        wr = np.einsum("ij,...j->...i", w, pc)
        wc = np.einsum("ij,...i->...j", w, pr)
        wsum = wr[..., :, None] + wc[..., None, :]
        a = w - wsum * (1.0 - kappa)[..., None, None]
        s1 = (p * a**2).sum(axis=(-2, -1))
        var = (s1 - (kappa - pe * (1.0 - kappa)) ** 2) / (n * (1.0 - pe) ** 2)
        b = w - wsum
        s0 = (pr[..., :, None] * pc[..., None, :] * b**2).sum(axis=(-2, -1))
        var0 = (s0 - pe**2) / (n * (1.0 - pe) ** 2)
    return {"n": n, "po": po, "pe": pe, "kappa": kappa,
            "var": np.maximum(var, 0.0), "var0": np.maximum(var0, 0.0)}


def kappa_from_tables(tables: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Kappa only, for a stack of tables (..., K, K); NaN where chance agreement is 1."""
    n = tables.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = tables / n[..., None, None]
        po = (w * p).sum(axis=(-2, -1))
        pe = np.einsum("...i,ij,...j->...", p.sum(axis=-1), w, p.sum(axis=-2))
        return (po - pe) / (1.0 - pe)


def cohen_kappa_table(
    table: Any, weights: WeightsArg = None, confidence: float = 0.95,
    *, n_dropped: int = 0, categories: Sequence | None = None,
) -> KappaResult:
    """Cohen's kappa (optionally weighted) from a square contingency table.

    Why: the table is the sufficient statistic, so published worked examples (which print
    tables) can be reproduced exactly, and study designs can be evaluated without raw data.

    Parameters
    ----------
    table : (K, K) array of counts, rows = rater 1, columns = rater 2.
    weights : None, "linear" (Cicchetti–Allison), "quadratic" (Fleiss–Cohen) or a K x K
        agreement-weight matrix with ones on the diagonal.
    confidence : level of the Wald interval ``estimate ± z * se``.

    Returns
    -------
    KappaResult. If both raters used a single category (chance agreement 1) kappa is undefined
    and the estimate is NaN.

    References
    ----------
    Cohen (1960) Educ Psychol Meas 20:37-46; Cohen (1968) Psychol Bull 70:213-220;
    Fleiss, Cohen & Everitt (1969) Psychol Bull 72:323-327; Fleiss, Levin & Paik (2003)
    Statistical Methods for Rates and Proportions, 3rd ed., ch. 18.
    """
    t = _check_table(table)
    confidence = _check_confidence(confidence)
    k = t.shape[0]
    w = agreement_weights(k, weights)
    parts = _kappa_parts(t, w)
    kappa = float(parts["kappa"])
    se = float(np.sqrt(parts["var"]))
    se0 = float(np.sqrt(parts["var0"]))
    zc = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = kappa / se0 if se0 > 0 else np.nan
    p_value = float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan
    cats = tuple(categories) if categories is not None else tuple(range(k))
    return KappaResult(
        estimate=kappa, se=se, ci_low=float(kappa - zc * se), ci_high=float(kappa + zc * se), se0=se0,
        z=float(z), p_value=p_value, p_observed=float(parts["po"]),
        p_expected=float(parts["pe"]), n=int(round(float(parts["n"]))), n_dropped=n_dropped,
        weights=_weights_name(weights), confidence=confidence,
        categories=tuple(_to_builtin(list(cats))),
    )


def cohen_kappa(
    y1: Any, y2: Any, weights: WeightsArg = None, labels: Any = None, confidence: float = 0.95
) -> KappaResult:
    """Cohen's kappa between two raters with asymptotic SE, CI and test of kappa = 0.

    Why: scikit-learn's ``cohen_kappa_score`` gives the estimate only; a validation report needs
    the interval (to compare against a threshold) and ``n``. The estimate equals scikit-learn's
    (which uses disagreement weights, equivalent up to scale).

    Parameters
    ----------
    y1, y2 : 1-D array-likes of labels (any hashable; None/NaN = missing, dropped pairwise).
    weights : None, "linear", "quadratic" or K x K agreement-weight matrix (see
        :func:`agreement_weights`).
    labels : categories in order; default: sorted categories observed in ``y1`` or ``y2``.
        Order matters for weighted kappa.
    confidence : level of the Wald confidence interval.

    References
    ----------
    Cohen (1960, 1968); Fleiss, Cohen & Everitt (1969) Psychol Bull 72:323-327.
    """
    c1, c2, cats, n_dropped = encode_pair(y1, y2, labels)
    k = len(cats)
    return cohen_kappa_table(contingency_table(c1, c2, k), weights=weights,
                             confidence=confidence, n_dropped=n_dropped, categories=cats)


# --------------------------------------------------------------------------------------------
# Scott's pi, Gwet's AC1/AC2, Brennan-Prediger (two raters; irrCAC formulas)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgreementResult:
    """A chance-corrected agreement coefficient with its standard error (Gwet 2014).

    The interval uses Student's t with n-1 degrees of freedom and is capped at 1, exactly as
    R ``irrCAC`` does; ``p_value`` is two-sided for H0: coefficient = 0.
    """

    coefficient: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float
    p_observed: float
    p_expected: float
    n: int
    n_dropped: int = 0
    weights: str = "unweighted"
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return _to_builtin(asdict(self))


def _cac_estimates(t: np.ndarray, w: np.ndarray, coefficient: str) -> dict[str, np.ndarray]:
    """Vectorised estimates and linearisation variances of the two-rater CACs.

    Formulas of Gwet (2014, Handbook of Inter-Rater Reliability, 4th ed., ch. 5) as implemented
    in R irrCAC ``scott2.table``, ``gwet.ac1.table`` and ``bp2.table`` (Gwet 2008, Br J Math Stat
    Psychol 61:29-48 for AC1). Works on stacks of tables (..., K, K).
    """
    q = t.shape[-1]
    n = t.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        p = t / n[..., None, None]
        pa = (w * p).sum(axis=(-2, -1))
        pr = p.sum(axis=-1)
        pc = p.sum(axis=-2)
        pik = (pr + pc) / 2
        tw = w.sum()
        if coefficient == "scott_pi":
            pe = np.einsum("...i,ij,...j->...", pik, w, pik)
        elif coefficient == "gwet_ac1":
            pe = tw * (pik * (1 - pik)).sum(axis=-1) / (q * (q - 1))
        elif coefficient == "brennan_prediger":
            pe = np.full(n.shape, tw / q**2)
        else:  # pragma: no cover - internal
            raise ValueError(coefficient)
        coef = (pa - pe) / (1 - pe)
        one_minus = (1 - coef)[..., None, None]
        if coefficient == "scott_pi":
            pbk = (np.einsum("ij,...j->...i", w, pc) + np.einsum("ji,...j->...i", w, pr)) / 2
            term = w - one_minus * (pbk[..., :, None] + pbk[..., None, :])
        elif coefficient == "gwet_ac1":
            term = w - 2 * one_minus * tw * (
                1 - (pik[..., :, None] + pik[..., None, :]) / 2) / (q * (q - 1))
        else:
            term = np.broadcast_to(w, p.shape)
        s1 = (p * term**2).sum(axis=(-2, -1))
        if coefficient == "brennan_prediger":
            var = (s1 - pa**2) / (n * (1 - pe) ** 2)
        else:
            var = (s1 - (pa - 2 * (1 - coef) * pe) ** 2) / (n * (1 - pe) ** 2)
    return {"n": n, "pa": pa, "pe": pe, "coef": coef, "var": np.maximum(var, 1e-100)}


_CAC_NAMES = {"scott_pi": "Scott's pi", "gwet_ac1": "Gwet's AC1",
              "brennan_prediger": "Brennan-Prediger"}


def _cac_result(t: np.ndarray, weights: WeightsArg, confidence: float, coefficient: str,
                n_dropped: int = 0) -> AgreementResult:
    t = _check_table(t)
    confidence = _check_confidence(confidence)
    if coefficient == "gwet_ac1" and t.shape[0] < 2:
        raise InputDataError("Gwet's AC1 needs at least 2 categories.")
    w = agreement_weights(t.shape[0], weights)
    r = _cac_estimates(t, w, coefficient)
    n = int(round(float(r["n"])))
    est, se = float(r["coef"]), float(np.sqrt(r["var"]))
    tc = stats.t.ppf(0.5 + confidence / 2, max(n - 1, 1))
    z = est / se
    name = _CAC_NAMES[coefficient]
    if coefficient == "gwet_ac1" and weights is not None:
        name = "Gwet's AC2"
    return AgreementResult(
        coefficient=name, estimate=est, se=se, ci_low=float(est - tc * se),
        ci_high=float(min(1.0, est + tc * se)), z=float(z),
        p_value=float(2 * stats.t.sf(abs(z), max(n - 1, 1))), p_observed=float(r["pa"]),
        p_expected=float(r["pe"]), n=n, n_dropped=n_dropped, weights=_weights_name(weights),
        confidence=confidence,
    )


def scott_pi_table(table: Any, weights: WeightsArg = None,
                   confidence: float = 0.95) -> AgreementResult:
    """Scott's pi (weighted if ``weights``) from a K x K table, with Gwet's (2014) SE.

    References: Scott (1955) Public Opin Q 19:321-325; Gwet (2014) ch. 5; R irrCAC
    ``scott2.table``.
    """
    return _cac_result(np.asarray(table), weights, confidence, "scott_pi")


def gwet_ac1_table(table: Any, weights: WeightsArg = None,
                   confidence: float = 0.95) -> AgreementResult:
    """Gwet's AC1 (AC2 when weighted) from a K x K table, with its linearisation SE.

    Why: AC1 is robust to the "kappa paradox" (high agreement, skewed prevalence, low kappa),
    common with rare categories in content analysis.
    References: Gwet (2008) Br J Math Stat Psychol 61:29-48; Gwet (2014) ch. 5; R irrCAC
    ``gwet.ac1.table``.
    """
    return _cac_result(np.asarray(table), weights, confidence, "gwet_ac1")


def brennan_prediger_table(table: Any, weights: WeightsArg = None,
                           confidence: float = 0.95) -> AgreementResult:
    """Brennan–Prediger coefficient (uniform chance agreement) from a K x K table.

    References: Brennan & Prediger (1981) Educ Psychol Meas 41:687-699; Gwet (2014) ch. 5;
    R irrCAC ``bp2.table``.
    """
    return _cac_result(np.asarray(table), weights, confidence, "brennan_prediger")


def _raw_cac(y1: Any, y2: Any, weights: WeightsArg, labels: Any, confidence: float,
             coefficient: str) -> AgreementResult:
    c1, c2, cats, n_dropped = encode_pair(y1, y2, labels)
    t = contingency_table(c1, c2, len(cats))
    return _cac_result(t, weights, confidence, coefficient, n_dropped=n_dropped)


def scott_pi(y1: Any, y2: Any, weights: WeightsArg = None, labels: Any = None,
             confidence: float = 0.95) -> AgreementResult:
    """Scott's pi between two raters (missing pairs dropped). See :func:`scott_pi_table`."""
    return _raw_cac(y1, y2, weights, labels, confidence, "scott_pi")


def gwet_ac1(y1: Any, y2: Any, weights: WeightsArg = None, labels: Any = None,
             confidence: float = 0.95) -> AgreementResult:
    """Gwet's AC1/AC2 between two raters (missing pairs dropped). See :func:`gwet_ac1_table`.

    Pass ``labels`` listing every category of the codebook: AC1's chance agreement depends on
    the number of categories, so unused categories matter.
    """
    return _raw_cac(y1, y2, weights, labels, confidence, "gwet_ac1")


def brennan_prediger(y1: Any, y2: Any, weights: WeightsArg = None, labels: Any = None,
                     confidence: float = 0.95) -> AgreementResult:
    """Brennan–Prediger coefficient between two raters. See :func:`brennan_prediger_table`."""
    return _raw_cac(y1, y2, weights, labels, confidence, "brennan_prediger")


def gwet_ac1_counts(counts: Any, weights: WeightsArg = None,
                    confidence: float = 0.95) -> AgreementResult:
    """Gwet's AC1/AC2 for any number of raters from a units x categories count table.

    Rows may have different totals (units rated by different numbers of raters); units rated
    by fewer than 2 raters are ignored for agreement, as in irrCAC ``gwet.ac1.dist``.
    The variance is Gwet's (2008, eq. 22 / 2014 ch. 5) linearisation, ignoring rater sampling.

    References: Gwet (2008) Br J Math Stat Psychol 61:29-48; R irrCAC ``gwet.ac1.dist``.
    """
    x = np.asarray(counts, dtype=float)
    if x.ndim != 2 or x.shape[1] < 2:
        raise InputDataError("counts must be a units x categories table with >= 2 categories.")
    if not np.isfinite(x).all() or (x < 0).any():
        raise InputDataError("counts must contain finite, non-negative counts.")
    confidence = _check_confidence(confidence)
    x = x[x.sum(axis=1) > 0]  # units nobody rated carry no information (as irrCAC)
    q = x.shape[1]
    w = agreement_weights(q, weights)
    n = x.shape[0]
    ri = x.sum(axis=1)
    rstar = x @ w.T  # r*_ik = sum_l w_kl r_il
    sel = ri >= 2
    n2 = int(sel.sum())
    if n2 == 0:
        raise InputDataError("counts has no unit rated by at least 2 raters.")
    with np.errstate(divide="ignore", invalid="ignore"):
        pa_i = np.where(sel, (x * (rstar - 1)).sum(axis=1) / (ri * (ri - 1)), 0.0)
    pa = pa_i[sel].mean()
    pik = (x / ri[:, None]).sum(axis=0) / n
    tw = w.sum()
    pe = tw * (pik * (1 - pik)).sum() / (q * (q - 1))
    ac1 = (pa - pe) / (1 - pe)
    pe_ivec = tw / (q * (q - 1)) * ((x / ri[:, None]) * (1 - pik)).sum(axis=1)
    ac1_ivec = np.where(sel, n / n2 * (pa_i - pe) / (1 - pe), 0.0)
    ac1_ivec_x = ac1_ivec - 2 * (1 - ac1) * (pe_ivec - pe) / (1 - pe)
    var = ((ac1_ivec_x - ac1) ** 2).sum() / (n * (n - 1)) if n > 1 else np.nan
    se = float(np.sqrt(max(var, 1e-100)))
    tc = stats.t.ppf(0.5 + confidence / 2, max(n - 1, 1))
    z = ac1 / se
    return AgreementResult(
        coefficient="Gwet's AC1" if weights is None else "Gwet's AC2", estimate=float(ac1),
        se=se, ci_low=float(ac1 - tc * se), ci_high=float(min(1.0, ac1 + tc * se)),
        z=float(z), p_value=float(2 * stats.t.sf(abs(z), max(n - 1, 1))),
        p_observed=float(pa), p_expected=float(pe), n=n, weights=_weights_name(weights),
        confidence=confidence,
    )


# --------------------------------------------------------------------------------------------
# Fleiss' kappa
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class FleissResult:
    """Fleiss' kappa for m raters per unit, with the null SE of Fleiss, Nee & Landis (1979).

    ``per_category`` has one row per category: kappa_j, its null SE, z and p-value (Fleiss 1971
    eq. 11; Fleiss, Nee & Landis 1979 eq. 9).
    """

    estimate: float
    se0: float
    z: float
    p_value: float
    p_observed: float
    p_expected: float
    n_units: int
    n_raters: int
    categories: tuple
    per_category: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (per_category as a list of records)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return _to_builtin(d)


def fleiss_kappa(counts: Any, categories: Sequence | None = None) -> FleissResult:
    """Fleiss' kappa from a units x categories count table (each row sums to m raters).

    Why: the usual coefficient when each item is coded by m coders drawn from a pool (not the
    same m for every item). The estimate is statsmodels' ``fleiss_kappa``; the null standard
    error (for z and p) and the per-category kappas are added here.

    Parameters
    ----------
    counts : (N, K) array; ``counts[i, j]`` = number of raters who put unit i in category j.
        All rows must have the same total m >= 2 (use :func:`krippendorff_alpha` otherwise).
    categories : optional names for the K columns.

    References
    ----------
    Fleiss (1971) Psychol Bull 76:378-382; Fleiss, Nee & Landis (1979) Psychol Bull
    86:974-977, eq. 12 (null variance of the overall kappa).
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss

    x = counts.to_numpy() if isinstance(counts, pd.DataFrame) else np.asarray(counts)
    if categories is None and isinstance(counts, pd.DataFrame):
        categories = list(counts.columns)
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2:
        raise InputDataError(
            f"counts must be a units x categories table with >= 2 categories, got {x.shape}.")
    if not np.isfinite(x).all() or (x < 0).any() or (x != np.round(x)).any():
        raise InputDataError("counts must contain non-negative integer counts.")
    m_rows = x.sum(axis=1)
    if not np.all(m_rows == m_rows[0]):
        bad = np.flatnonzero(m_rows != m_rows[0])[:10].tolist()
        raise InputDataError(
            "Fleiss' kappa needs the same number of ratings for every unit; rows "
            f"{bad} differ from row 0 ({int(m_rows[0])} ratings). Use krippendorff_alpha for "
            "unequal numbers of ratings.")
    m = int(m_rows[0])
    if m < 2:
        raise InputDataError("counts must have at least 2 ratings per unit.")
    nu, k = x.shape
    if categories is None:
        categories = list(range(k))
    if len(categories) != k:
        raise InputDataError(f"categories has {len(categories)} names for {k} columns.")
    kappa = float(_sm_fleiss(x, method="fleiss"))
    pj = x.sum(axis=0) / (nu * m)
    qj = 1 - pj
    pq = pj * qj
    spq = pq.sum()
    p_i = ((x * x).sum(axis=1) - m) / (m * (m - 1))
    var0 = 2.0 / (nu * m * (m - 1) * spq**2) * (spq**2 - (pq * (qj - pj)).sum())
    se0 = float(np.sqrt(var0)) if spq > 0 else np.nan
    z = kappa / se0 if se0 and np.isfinite(se0) else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        kj = 1 - (x * (m - x)).sum(axis=0) / (nu * m * (m - 1) * pq)
    se0_j = np.sqrt(2.0 / (nu * m * (m - 1)))
    per = pd.DataFrame({
        "category": list(categories), "proportion": pj, "kappa": kj,
        "se0": np.full(k, se0_j), "z": kj / se0_j,
        "p_value": 2 * stats.norm.sf(np.abs(kj / se0_j)),
    })
    return FleissResult(
        estimate=kappa, se0=se0, z=float(z),
        p_value=float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
        p_observed=float(p_i.mean()), p_expected=float((pj**2).sum()), n_units=nu,
        n_raters=m, categories=tuple(_to_builtin(list(categories))), per_category=per,
    )


def _check_columns(df: Any, cols: dict[str, str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InputDataError(f"expected a pandas DataFrame of long-format codes, got "
                             f"{type(df).__name__}.")
    missing = [f"{arg}={col!r}" for arg, col in cols.items() if col not in df.columns]
    if missing:
        raise InputDataError(f"column(s) not found in the data: {', '.join(missing)}; "
                             f"available: {list(df.columns)}.")


def fleiss_kappa_long(df: pd.DataFrame, unit: str = "id", coder: str = "coder",
                      label: str = "label", labels: Any = None) -> FleissResult:
    """Fleiss' kappa from long-format codes (one row per unit x coder).

    Rows with a missing label are dropped; every remaining unit must have the same number of
    codes. A coder who coded the same unit twice is an error (listed in the message).
    """
    _check_columns(df, {"unit": unit, "coder": coder, "label": label})
    d = df.loc[~df[label].isna(), [unit, coder, label]]
    dup = d.duplicated([unit, coder], keep=False)
    if dup.any():
        rows = d.loc[dup, [unit, coder]].drop_duplicates().head(10).values.tolist()
        raise InputDataError(f"some coders coded the same unit more than once: {rows}.")
    cats = _resolve_categories(d[label].to_numpy(), labels, "labels")
    codes = _codes(d[label].to_numpy(), cats, label)
    units, uidx = np.unique(d[unit].to_numpy(), return_inverse=True)
    x = np.zeros((len(units), len(cats)))
    np.add.at(x, (uidx, codes), 1)
    return fleiss_kappa(x, categories=list(cats))
