"""Confidence signals: calibration, selective prediction and the human review queue.

* Reliability diagram data and expected calibration error (ECE; Naeini, Cooper & Hauskrecht
  2015; Guo et al. 2017, "On calibration of modern neural networks", ICML): the
  weighted mean over confidence bins of |accuracy - mean confidence|.
* Coverage-accuracy (risk-coverage) curve of selective classification (El-Yaniv & Wiener
  2010; Geifman & El-Yaniv 2017): accuracy among the items accepted when only the most
  confident share is kept.

The review queue that routes the least confident texts to humans is an audit:
:mod:`textgauge.audits.review_queue`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError

__all__ = ["calibration_bins", "coverage_accuracy_curve", "expected_calibration_error",
           "maximum_calibration_error"]


def _arrays(correct: Sequence[bool] | np.ndarray,
            confidence: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(correct, dtype=float)
    p = np.asarray(confidence, dtype=float)
    if c.shape != p.shape:
        raise ValueError("correct and confidence differ in shape")
    keep = np.isfinite(p) & np.isfinite(c)
    if ((p[keep] < 0) | (p[keep] > 1)).any():
        raise InputDataError("Confidence values must lie in [0, 1]; rescale the scores first.")
    return c[keep], p[keep]


def calibration_bins(
    correct: Sequence[bool] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
    n_bins: int = 10,
    strategy: str = "uniform",
) -> pd.DataFrame:
    """Reliability diagram data: per confidence bin n, mean confidence, accuracy and gap.

    ``strategy='uniform'`` uses equal-width bins on [0, 1] (Guo et al. 2017);
    ``'quantile'`` equal-count bins. Empty bins are kept with n = 0 (uniform). Items without a
    confidence are ignored. Columns: bin, lower, upper, n, mean_confidence, accuracy, gap
    (accuracy - confidence; negative = over-confident), weight (n / total).
    """
    c, p = _arrays(correct, confidence)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1))) if p.size else \
            np.linspace(0.0, 1.0, n_bins + 1)
        edges[0], edges[-1] = min(edges[0], 0.0), max(edges[-1], 1.0)
    else:
        raise ValueError("strategy must be 'uniform' or 'quantile'")
    nb = len(edges) - 1
    # right-closed bins, first bin includes 0: (lo, hi]
    idx = np.clip(np.searchsorted(edges, p, side="left") - 1, 0, nb - 1)
    n = np.bincount(idx, minlength=nb)
    sum_p = np.bincount(idx, weights=p, minlength=nb)
    sum_c = np.bincount(idx, weights=c, minlength=nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = sum_p / n
        acc = sum_c / n
    total = max(int(n.sum()), 1)
    return pd.DataFrame({"bin": np.arange(nb), "lower": edges[:-1], "upper": edges[1:],
                         "n": n, "mean_confidence": mean_p, "accuracy": acc,
                         "gap": acc - mean_p, "weight": n / total})


def expected_calibration_error(
    correct: Sequence[bool] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
    n_bins: int = 15,
    strategy: str = "uniform",
) -> float:
    """ECE = sum_b (n_b / n) |acc_b - conf_b| (Naeini et al. 2015; Guo et al. 2017).

    With finite samples a perfectly calibrated coder has a small positive ECE (binning noise,
    of order sqrt(n_bins / n)).
    """
    bins = calibration_bins(correct, confidence, n_bins=n_bins, strategy=strategy)
    used = bins["n"] > 0
    if not used.any():
        return float("nan")
    return float((bins.loc[used, "weight"] * bins.loc[used, "gap"].abs()).sum())


def maximum_calibration_error(correct: Sequence[bool] | np.ndarray,
                              confidence: Sequence[float] | np.ndarray,
                              n_bins: int = 15) -> float:
    """MCE: the largest |accuracy - confidence| over non-empty bins (Naeini et al. 2015)."""
    bins = calibration_bins(correct, confidence, n_bins=n_bins)
    used = bins["n"] > 0
    return float(bins.loc[used, "gap"].abs().max()) if used.any() else float("nan")


def coverage_accuracy_curve(
    correct: Sequence[bool] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
) -> pd.DataFrame:
    """Selective-prediction curve: accept items with confidence >= threshold.

    One row per distinct confidence value (descending threshold): threshold, n_accepted,
    coverage (share accepted), accuracy (among accepted), risk = 1 - accuracy
    (Geifman & El-Yaniv 2017).
    """
    c, p = _arrays(correct, confidence)
    if p.size == 0:
        return pd.DataFrame(columns=["threshold", "n_accepted", "coverage", "accuracy", "risk"])
    order = np.argsort(-p, kind="stable")
    ps, cs = p[order], c[order]
    cum = np.cumsum(cs)
    last = np.r_[ps[1:] != ps[:-1], True]  # last index of each tie block
    n_acc = np.arange(1, len(ps) + 1)[last]
    acc = cum[last] / n_acc
    return pd.DataFrame({"threshold": ps[last], "n_accepted": n_acc,
                         "coverage": n_acc / len(ps), "accuracy": acc, "risk": 1 - acc})
