"""Scott's pi, Gwet's AC1/AC2 and Brennan–Prediger, with Gwet's (2014) standard errors.

Two-rater coefficients from a K x K table (formulas of R ``irrCAC``) and Gwet's AC1/AC2 for any
number of raters from a units x categories count table. Conventions:
:mod:`textgauge.stats.inputs`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from textgauge.errors import InputDataError
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
    "AgreementResult",
    "brennan_prediger",
    "brennan_prediger_table",
    "cac_estimates",
    "gwet_ac1",
    "gwet_ac1_counts",
    "gwet_ac1_table",
    "scott_pi",
    "scott_pi_table",
]


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
        return to_builtin(asdict(self))


def cac_estimates(t: np.ndarray, w: np.ndarray, coefficient: str) -> dict[str, np.ndarray]:
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
    t = check_table(t)
    confidence = check_confidence(confidence)
    if coefficient == "gwet_ac1" and t.shape[0] < 2:
        raise InputDataError("Gwet's AC1 needs at least 2 categories.")
    w = agreement_weights(t.shape[0], weights)
    r = cac_estimates(t, w, coefficient)
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
        p_expected=float(r["pe"]), n=n, n_dropped=n_dropped, weights=weights_name(weights),
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
    confidence = check_confidence(confidence)
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
        p_observed=float(pa), p_expected=float(pe), n=n, weights=weights_name(weights),
        confidence=confidence,
    )
