"""Confidence signals: calibration, selective prediction and the human review queue.

* Reliability diagram data and expected calibration error (ECE; Naeini, Cooper & Hauskrecht
  2015; Guo et al. 2017, "On calibration of modern neural networks", ICML): the
  weighted mean over confidence bins of |accuracy - mean confidence|.
* Coverage-accuracy (risk-coverage) curve of selective classification (El-Yaniv & Wiener
  2010; Geifman & El-Yaniv 2017): accuracy among the items accepted when only the most
  confident share is kept.
* Temperature scaling (Guo et al. 2017): one scalar T > 0 divides a classifier's logits,
  softmax(z / T), chosen to minimise the negative log-likelihood (NLL) of held-out labels.
  T > 1 softens over-confident probabilities, T < 1 sharpens under-confident ones; the
  arg-max label never changes, so accuracy and kappa stay the same and only the confidence
  (and what is routed to review on it) moves.

The review queue that routes the least confident texts to humans is an audit:
:mod:`textgauge.audits.review_queue`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError

__all__ = ["calibration_bins", "coverage_accuracy_curve", "ece_if_calibrated",
           "expected_calibration_error", "fit_temperature", "maximum_calibration_error", "negative_log_likelihood",
           "softmax_with_temperature", "temperature_scaling"]

#: the range searched for T: wide enough for any real classifier (T = 20 turns a logit gap of
#: 20 into 1), bounded so that a degenerate fit set cannot drive T to 0 or infinity
TEMPERATURE_BOUNDS = (0.05, 20.0)


def _arrays(correct: Sequence[bool] | np.ndarray,
            confidence: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    c, p, _ = _weighted_arrays(correct, confidence, None)
    return c, p


def _weighted_arrays(correct: Sequence[bool] | np.ndarray,
                     confidence: Sequence[float] | np.ndarray,
                     weights: Sequence[float] | np.ndarray | None,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """correct, confidence and (when given) the design weights of the items with a finite
    confidence. Weights: the inverse inclusion probabilities of a model-assisted gold sample
    (:func:`textgauge.stats.design.gold_design`), so that every bin describes the corpus."""
    c = np.asarray(correct, dtype=float)
    p = np.asarray(confidence, dtype=float)
    if c.shape != p.shape:
        raise ValueError("correct and confidence differ in shape")
    keep = np.isfinite(p) & np.isfinite(c)
    if ((p[keep] < 0) | (p[keep] > 1)).any():
        raise InputDataError("Confidence values must lie in [0, 1]; rescale the scores first.")
    if weights is None:
        return c[keep], p[keep], None
    w = np.asarray(weights, dtype=float)
    if w.shape != p.shape:
        raise ValueError("weights and confidence differ in shape")
    if (~np.isfinite(w[keep]) | (w[keep] <= 0)).any():
        raise InputDataError("Design weights must be finite and positive.")
    return c[keep], p[keep], w[keep]


def calibration_bins(
    correct: Sequence[bool] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
    n_bins: int = 10,
    strategy: str = "uniform",
    weights: Sequence[float] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Reliability diagram data: per confidence bin n, mean confidence, accuracy and gap.

    ``strategy='uniform'`` uses equal-width bins on [0, 1] (Guo et al. 2017);
    ``'quantile'`` equal-count bins. Empty bins are kept with n = 0 (uniform). Items without a
    confidence are ignored. Columns: bin, lower, upper, n, mean_confidence, accuracy, gap
    (accuracy - confidence; negative = over-confident), weight (n / total).

    With design ``weights`` (a model-assisted gold sample over-samples low confidence) the
    mean confidence and accuracy of a bin are weighted means, ``weight`` is the bin's share of
    the total weight (so the ECE estimates the corpus's) and a column ``sum_weights`` is
    added; ``n`` still counts items. Without weights: the unweighted table, as always.
    """
    c, p, w = _weighted_arrays(correct, confidence, weights)
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
    if w is not None:
        sw = np.bincount(idx, weights=w, minlength=nb)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean_p = np.bincount(idx, weights=w * p, minlength=nb) / sw
            acc = np.bincount(idx, weights=w * c, minlength=nb) / sw
        mean_p[n == 0] = np.nan
        acc[n == 0] = np.nan
        share = sw / sw.sum() if sw.sum() > 0 else np.zeros(nb)
        return pd.DataFrame({"bin": np.arange(nb), "lower": edges[:-1], "upper": edges[1:],
                             "n": n, "mean_confidence": mean_p, "accuracy": acc,
                             "gap": acc - mean_p, "weight": share, "sum_weights": sw})
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
    weights: Sequence[float] | np.ndarray | None = None,
) -> float:
    """ECE = sum_b (n_b / n) |acc_b - conf_b| (Naeini et al. 2015; Guo et al. 2017).

    With finite samples a perfectly calibrated coder has a small positive ECE (binning noise,
    of order sqrt(n_bins / n)). With design ``weights``, n_b / n is the bin's share of the
    weight and acc_b, conf_b are weighted means: the ECE of the corpus the sample describes.
    """
    bins = calibration_bins(correct, confidence, n_bins=n_bins, strategy=strategy,
                            weights=weights)
    used = bins["n"] > 0
    if not used.any():
        return float("nan")
    return float((bins.loc[used, "weight"] * bins.loc[used, "gap"].abs()).sum())


def ece_if_calibrated(confidence: Sequence[float] | np.ndarray, n_bins: int = 15,
                      n_sim: int = 200, seed: int = 0,
                      weights: Sequence[float] | np.ndarray | None = None) -> float:
    """The mean ECE a perfectly calibrated coder with these confidences would show by binning
    noise alone: each item is drawn correct with probability equal to its confidence,
    ``n_sim`` times (seeded). A reference for an observed ECE on a small set (weighted like
    the observed one when design ``weights`` are given)."""
    p = np.asarray(confidence, dtype=float)
    keep = np.isfinite(p)
    p = p[keep]
    w = None if weights is None else np.asarray(weights, dtype=float)[keep]
    if not p.size:
        return float("nan")
    rng = np.random.default_rng(seed)
    return float(np.mean([expected_calibration_error(rng.random(p.size) < p, p, n_bins=n_bins,
                                                     weights=w)
                          for _ in range(n_sim)]))


def maximum_calibration_error(correct: Sequence[bool] | np.ndarray,
                              confidence: Sequence[float] | np.ndarray,
                              n_bins: int = 15,
                              weights: Sequence[float] | np.ndarray | None = None) -> float:
    """MCE: the largest |accuracy - confidence| over non-empty bins (Naeini et al. 2015);
    bins' accuracy and confidence weighted by design ``weights`` when given."""
    bins = calibration_bins(correct, confidence, n_bins=n_bins, weights=weights)
    used = bins["n"] > 0
    return float(bins.loc[used, "gap"].abs().max()) if used.any() else float("nan")


def coverage_accuracy_curve(
    correct: Sequence[bool] | np.ndarray,
    confidence: Sequence[float] | np.ndarray,
    weights: Sequence[float] | np.ndarray | None = None,
) -> pd.DataFrame:
    """Selective-prediction curve: accept items with confidence >= threshold.

    One row per distinct confidence value (descending threshold): threshold, n_accepted,
    coverage (share accepted), accuracy (among accepted), risk = 1 - accuracy
    (Geifman & El-Yaniv 2017). With design ``weights`` coverage and accuracy are weighted
    (shares of the corpus the sample stands for); n_accepted still counts items.
    """
    c, p, w = _weighted_arrays(correct, confidence, weights)
    if p.size == 0:
        return pd.DataFrame(columns=["threshold", "n_accepted", "coverage", "accuracy", "risk"])
    order = np.argsort(-p, kind="stable")
    ps, cs = p[order], c[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # last index of each tie block
    n_acc = np.arange(1, len(ps) + 1)[last]
    if w is not None:
        ws = w[order]
        cum_w = np.cumsum(ws)[last]
        acc = np.cumsum(ws * cs)[last] / cum_w
        return pd.DataFrame({"threshold": ps[last], "n_accepted": n_acc,
                             "coverage": cum_w / ws.sum(), "accuracy": acc, "risk": 1 - acc})
    cum = np.cumsum(cs)
    acc = cum[last] / n_acc
    return pd.DataFrame({"threshold": ps[last], "n_accepted": n_acc,
                         "coverage": n_acc / len(ps), "accuracy": acc, "risk": 1 - acc})


# ---------------------------------------------------------------- temperature scaling
def _logits_labels(logits: Sequence[Sequence[float]] | np.ndarray,
                   labels: Sequence[int] | np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    z = np.asarray(logits, dtype=float)
    if z.ndim != 2:
        raise ValueError("logits must be a 2-d array (items x labels)")
    if not np.isfinite(z).all():
        raise InputDataError("The logits contain NaN or infinite values; temperature scaling "
                             "needs finite scores for every item and label.")
    if labels is None:
        return z, None
    y = np.asarray(labels, dtype=int)
    if y.shape != (z.shape[0],):
        raise ValueError("labels must have one entry per row of logits")
    if len(y) and ((y < 0) | (y >= z.shape[1])).any():
        raise ValueError("labels must be column indices of logits")
    return z, y


def softmax_with_temperature(logits: Sequence[Sequence[float]] | np.ndarray,
                             temperature: float = 1.0) -> np.ndarray:
    """softmax(z / T) per row, computed stably (the row maximum subtracted first)."""
    if not temperature > 0:
        raise ValueError("temperature must be > 0")
    z, _ = _logits_labels(logits)
    s = z / float(temperature)
    s = s - s.max(axis=1, keepdims=True) if s.size else s
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: Sequence[Sequence[float]] | np.ndarray,
                            labels: Sequence[int] | np.ndarray,
                            temperature: float = 1.0) -> float:
    """Mean -log softmax(z / T)[y] over items (nan for no items)."""
    z, y = _logits_labels(logits, labels)
    if not len(y):
        return float("nan")
    s = z / float(temperature)
    m = s.max(axis=1)
    lse = m + np.log(np.exp(s - m[:, None]).sum(axis=1))
    return float(np.mean(lse - s[np.arange(len(y)), y]))


def fit_temperature(logits: Sequence[Sequence[float]] | np.ndarray,
                    labels: Sequence[int] | np.ndarray,
                    bounds: tuple[float, float] = TEMPERATURE_BOUNDS) -> float:
    """The temperature T in ``bounds`` that minimises the NLL of ``labels`` (Guo et al. 2017).

    The NLL is convex in 1/T, so a bounded scalar search over 1/T (Brent's method,
    scipy.optimize.minimize_scalar) finds the one minimum. The fit never makes the fit set
    worse than no scaling: if the optimiser's T does not beat T = 1 (flat NLL, a tolerance
    edge), 1.0 is returned. With no items, 1.0 (nothing to fit).
    """
    from scipy.optimize import minimize_scalar

    z, y = _logits_labels(logits, labels)
    lo, hi = float(bounds[0]), float(bounds[1])
    if not 0 < lo < hi:
        raise ValueError("bounds must satisfy 0 < low < high")
    if not len(y):
        return 1.0
    res = minimize_scalar(lambda b: negative_log_likelihood(z, y, 1.0 / b),
                          bounds=(1.0 / hi, 1.0 / lo), method="bounded",
                          options={"xatol": 1e-6})
    t = float(1.0 / res.x)
    if negative_log_likelihood(z, y, t) > negative_log_likelihood(z, y, 1.0):
        return 1.0
    return t


def temperature_scaling(logits: Sequence[Sequence[float]] | np.ndarray,
                        labels: Sequence[int] | np.ndarray,
                        bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
                        n_bins: int = 15) -> dict[str, float | int | bool]:
    """Fit T on (logits, labels) and measure the fit set before and after.

    Returns temperature, n, nll_before/nll_after (mean NLL at T = 1 and at T),
    ece_before/ece_after (:func:`expected_calibration_error` of the arg-max confidence,
    ``n_bins`` equal-width bins), accuracy (of the arg-max, the same at any T), and at_bound (T hit an end of ``bounds``: the fit set may
    be too small or separable, say so). Values are nan with no items.
    """
    z, y = _logits_labels(logits, labels)
    t = fit_temperature(z, y, bounds)
    correct = z.argmax(axis=1) == y if len(y) else np.zeros(0, dtype=bool)

    def ece(temp: float) -> float:
        if not len(y):
            return float("nan")
        return expected_calibration_error(correct, softmax_with_temperature(z, temp).max(axis=1),
                                          n_bins=n_bins)

    return {"temperature": t, "n": int(len(y)),
            "nll_before": negative_log_likelihood(z, y, 1.0),
            "nll_after": negative_log_likelihood(z, y, t),
            "ece_before": ece(1.0), "ece_after": ece(t),
            "accuracy": float(correct.mean()) if len(y) else float("nan"),
            "at_bound": bool(len(y)) and bool(np.isclose(t, bounds[0], rtol=1e-3)
                                              or np.isclose(t, bounds[1], rtol=1e-3))}
