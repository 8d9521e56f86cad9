"""Corrected class prevalence from a classified corpus and a (stratified) gold sample.

The naive share of predicted labels inherits every misclassification: a classifier that
over-predicts one class biases the estimate, and its binomial CI is centred on the wrong
value. Two estimators correct it with a human-coded sample:

* **Prediction-powered inference** (Angelopoulos, Bates, Fannjiang, Jordan & Zrnic 2023,
  *Science* 382:669), mean estimator::

      theta_PP = mean_N(f(X)) + mean_n(Y - f(X)),
      SE^2 = Var_N(f) / N + Var_n(Y - f) / n,      CI = theta_PP +- z SE  (CLT)

  That interval is for the superpopulation mean; for the prevalence of *this* corpus (the
  default, ``finite_population=True``) the first term drops and the second gets the
  finite-population correction (see :func:`ppi_mean`).

  With known inclusion probabilities pi_i (stratified gold) the rectifier is the Hajek
  weighted mean with weights 1/pi_i and its linearisation variance.
* **Design-based supervised learning** (Egami, Hinck, Stewart & Wei 2023, NeurIPS), for a
  mean: pseudo-outcomes for every corpus item ``Y~_i = f_i + (R_i / pi_i) (Y_i - f_i)`` with
  ``R_i`` = 1 when item i was sampled into the gold set with known probability ``pi_i``;
  theta_DSL = mean_N(Y~), SE^2 = Var_N(Y~) / N. Needs the gold ids to be corpus ids.

Here f(X) is 1[predicted = c] (or the predicted probability of c with ``use_probs``) and Y is
1[gold = c]. Both estimate the mean over the population the gold sample was drawn from
(every unit there must have pi_i > 0): texts the sample could not include, such as a
coder's training data, are left out of f before calling them. The table over a classified
corpus, overall and per stratum (:func:`textgauge.audits.prevalence.corrected_prevalence`),
and the stage-5 re-validation
sample that records the inclusion probabilities (:mod:`textgauge.audits.revalidation`) are
audits built on these two estimators.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from textgauge.stats.proportions import wilson_ci

__all__ = ["dsl_mean", "naive_share", "ppi_mean"]


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def ppi_mean(
    f_corpus: np.ndarray,
    y_gold: np.ndarray,
    f_gold: np.ndarray,
    weights: np.ndarray | None = None,
    level: float = 0.95,
    finite_population: bool = True,
) -> dict[str, np.ndarray]:
    """PPI mean estimate and CLT interval (Angelopoulos et al. 2023), vectorised.

    Arrays may carry leading batch dimensions (e.g. simulations); the mean is over the last
    axis. ``weights`` (1 / inclusion probability, shape of ``y_gold``) gives the Hajek
    weighted rectifier with linearisation variance sum w^2 (d - d_bar)^2 / (sum w)^2 *
    n / (n - 1).

    ``finite_population=False`` is the paper's interval for the superpopulation mean:
    SE^2 = Var(f) / N + Var(d) / n. ``True`` (default) targets the prevalence *in this corpus*
    (the gold set being a sample of it): the corpus mean of f is then known exactly, so the
    Var(f) / N term drops and the rectifier variance gets the finite-population correction
    (1 - n / N), or (1 - pi_i) per item with weights: the difference estimator of survey
    sampling (Sarndal, Swensson & Wretman 1992, sec. 6.3). Returns estimate, se, ci_low,
    ci_high (CI not clipped).
    """
    f_corpus = np.asarray(f_corpus, dtype=float)
    d = np.asarray(y_gold, dtype=float) - np.asarray(f_gold, dtype=float)
    N, n = f_corpus.shape[-1], d.shape[-1]
    mean_f = f_corpus.mean(-1)
    var_f = f_corpus.var(-1, ddof=1) if N > 1 else np.zeros_like(mean_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        if weights is None:
            rect = d.mean(-1)
            fpc = max(1 - n / N, 0.0) if finite_population else 1.0
            var_r = fpc * d.var(-1, ddof=1) / n if n > 1 else np.full_like(rect, np.nan)
        else:
            w = np.broadcast_to(np.asarray(weights, dtype=float), d.shape)
            fpc = np.clip(1 - 1 / w, 0, 1) if finite_population else 1.0
            sw = w.sum(-1)
            rect = (w * d).sum(-1) / sw
            resid = d - rect[..., None]
            var_r = (fpc * w**2 * resid**2).sum(-1) / sw**2 * n / (n - 1) if n > 1 else \
                np.full_like(rect, np.nan)
    est = mean_f + rect
    se = np.sqrt(var_r) if finite_population else np.sqrt(var_f / N + var_r)
    z = _z(level)
    return {"estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se}


def dsl_mean(
    f_corpus: np.ndarray,
    y_corpus: np.ndarray,
    sampled: np.ndarray,
    pi: np.ndarray,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """DSL mean estimate (Egami et al. 2023) with known sampling probabilities, vectorised.

    ``y_corpus`` holds the gold outcome where ``sampled`` is True (anything elsewhere, e.g.
    NaN); ``pi`` the probability each item had of being sampled (> 0 for every item).
    Pseudo-outcome Y~ = f + R (Y - f) / pi; estimate mean(Y~), SE sd(Y~) / sqrt(N).
    """
    f = np.asarray(f_corpus, dtype=float)
    r = np.asarray(sampled, dtype=bool)
    y = np.where(r, np.nan_to_num(np.asarray(y_corpus, dtype=float)), 0.0)
    pi = np.asarray(pi, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        pseudo = f + np.where(r, (y - f) / pi, 0.0)
    N = f.shape[-1]
    est = pseudo.mean(-1)
    se = pseudo.std(-1, ddof=1) / np.sqrt(N) if N > 1 else np.full_like(est, np.nan)
    z = _z(level)
    return {"estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se}


def naive_share(f: np.ndarray, level: float = 0.95, scores: bool = False) -> dict[str, float]:
    """The uncorrected share of a class among valid predictions, with its interval.

    ``f`` holds 1[predicted = c] per item (Wilson interval, binomial SE) or, with
    ``scores=True``, predicted probabilities of c (normal interval of their mean). The interval
    ignores misclassification: it is the baseline that PPI and DSL correct.
    """
    f = np.asarray(f, dtype=float)
    nv = f.size
    est = float(f.sum() / nv) if nv else float("nan")
    se = float(np.sqrt(est * (1 - est) / nv)) if nv else float("nan")
    if not scores:
        lo, hi = wilson_ci(f.sum(), nv, level) if nv else (np.nan, np.nan)
    elif nv > 1:
        half = _z(level) * f.std(ddof=1) / np.sqrt(nv)
        lo, hi = est - half, est + half
    else:
        lo = hi = float("nan")
    return {"estimate": est, "se": se, "ci_low": float(lo), "ci_high": float(hi)}
