"""Confidence intervals for proportions (shares, rates, recalls)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

__all__ = ["goodness_of_fit", "paired_share_difference", "wilson_ci"]


def wilson_ci(k: Any, n: Any, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson (1927) score interval for binomial proportions ``k/n`` (vectorised).

    Unlike the Wald interval it stays inside [0, 1] and keeps its coverage near 0 and 1.
    ``n = 0`` gives NaN bounds.

    References: Wilson (1927) J Am Stat Assoc 22:209-212; Agresti & Coull (1998) Am Stat
    52:119-126.

    Examples
    --------
    >>> lo, hi = wilson_ci(8, 10)
    >>> round(float(lo), 4), round(float(hi), 4)
    (0.4902, 0.9433)
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = stats.norm.ppf(0.5 + confidence / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def paired_share_difference(x: Any, y: Any, confidence: float = 0.95) -> dict[str, float]:
    """Difference of two shares measured on the same items: mean(y) - mean(x), paired.

    ``x`` and ``y`` are 0/1 indicators per item (e.g. gold = c, predicted = c). The CI is the
    paired normal interval of ``d_i = y_i - x_i`` (equivalent to comparing the two margins of
    the 2 x 2 table); ``mcnemar_p`` is the exact McNemar test of the discordant pairs
    (binomial, p = 1/2). Returns difference, ci_low, ci_high, mcnemar_p.

    References: McNemar (1947) Psychometrika 12:153-157; Agresti (2013) Categorical Data
    Analysis, 3rd ed., sec. 11.1.
    """
    a = np.asarray(x, dtype=bool)
    b = np.asarray(y, dtype=bool)
    n = len(a)
    d = b.astype(float) - a.astype(float)
    diff = float(d.mean()) if n else float("nan")
    se = float(d.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    z = stats.norm.ppf(0.5 + confidence / 2)
    up, down = int((b & ~a).sum()), int((a & ~b).sum())
    p = float(stats.binomtest(up, up + down, 0.5).pvalue) if up + down > 0 else 1.0
    return {"difference": diff, "ci_low": diff - z * se, "ci_high": diff + z * se,
            "mcnemar_p": p}


def goodness_of_fit(observed: Any, expected_share: Any) -> dict[str, float]:
    """Chi-square goodness-of-fit of counts against expected shares, with Cohen's w.

    ``w = sqrt(sum((p_obs - p_exp)^2 / p_exp))`` (Cohen 1988, ch. 7): 0.1 small, 0.3 medium,
    0.5 large; a large sample makes trivial deviations significant, so read both.
    Returns chi2, dof, p_value, effect_w.
    """
    obs = np.asarray(observed, dtype=float)
    exp = np.asarray(expected_share, dtype=float)
    n = obs.sum()
    chi = stats.chisquare(obs, exp * n)
    w = float(np.sqrt(((obs / n - exp) ** 2 / exp).sum()))
    return {"chi2": float(chi.statistic), "dof": len(obs) - 1, "p_value": float(chi.pvalue),
            "effect_w": w}
