"""Cohen's (weighted) kappa with the Fleiss–Cohen–Everitt standard errors.

Why: scikit-learn gives Cohen's kappa as a bare number; a validation study needs the estimate
*and* its uncertainty, computed the way the reference packages (SAS PROC FREQ, R ``irr``)
compute it, so that a reviewer can reproduce every number. Everything works on contingency
tables, vectorised over a leading "replicate" axis, so the bootstrap reuses it.
Conventions (weights, categories, missing ratings): :mod:`textgauge.stats.inputs`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from textgauge.stats.inputs import (
    WeightsArg,
    agreement_weights,
    check_confidence,
    check_table,
    contingency_table,
    encode_pair,
    to_builtin,
    weights_name,
)

__all__ = [
    "KappaResult",
    "cohen_kappa",
    "cohen_kappa_table",
    "kappa_from_tables",
    "kappa_parts",
]


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
        return to_builtin(asdict(self))


def kappa_parts(t: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
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
    t = check_table(table)
    confidence = check_confidence(confidence)
    k = t.shape[0]
    w = agreement_weights(k, weights)
    parts = kappa_parts(t, w)
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
        weights=weights_name(weights), confidence=confidence,
        categories=tuple(to_builtin(list(cats))),
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
