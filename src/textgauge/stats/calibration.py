"""Confidence signals: calibration, selective prediction and the human review queue.

* Reliability diagram data and expected calibration error (ECE; Naeini, Cooper & Hauskrecht
  2015; Guo et al. 2017, "On calibration of modern neural networks", ICML): the
  weighted mean over confidence bins of |accuracy - mean confidence|.
* Coverage-accuracy (risk-coverage) curve of selective classification (El-Yaniv & Wiener
  2010; Geifman & El-Yaniv 2017): accuracy among the items accepted when only the most
  confident share is kept.
* Confidence thresholding as in the course: route the lowest-confidence ``review_fraction``
  (default 0.15; 10-20 % is the usual cost-quality trade-off) of the corpus to human review,
  and compare kappa on the auto-accepted part of the gold set with kappa on all of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from textgauge.audits.core import KappaFn, align_with_gold, kappa_ci, require_columns
from textgauge.errors import InputDataError

#: reasons written to the review queue
REASON_LOW_CONFIDENCE = "low_confidence"
REASON_INVALID = "invalid_or_failed"
REASON_NO_CONFIDENCE = "no_confidence"


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


def gold_correctness(gold: pd.DataFrame, predictions: pd.DataFrame,
                     reference_col: str = "reference") -> pd.DataFrame:
    """Gold items with ``label``, ``confidence`` and ``correct`` (invalid answers: wrong)."""
    al = align_with_gold(gold, predictions, reference_col)
    al["correct"] = al["label"] == al["reference"]
    return al


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


def review_size(n: int, review_fraction: float) -> int:
    """ceil(review_fraction * n), robust to floating error (0.15 * 100 is 15, not 16)."""
    if not 0 <= review_fraction <= 1:
        raise ValueError("review_fraction must lie in [0, 1]")
    return int(math.ceil(round(review_fraction * n, 9)))


def review_queue(
    predictions: pd.DataFrame,
    review_fraction: float = 0.15,
    exclude_ids: Iterable[str] = (),
    extra_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """The ``ceil(review_fraction * n)`` least confident items of a corpus, for human review.

    ``n`` counts the corpus items after ``exclude_ids`` (e.g. items already coded by humans).
    Invalid/failed answers and missing confidences rank below every real confidence, so they
    are reviewed first; ties are broken by id, so the queue is deterministic. Columns: rank,
    id, label, confidence, status, reason, plus ``extra_columns`` (e.g. text, strata). The
    queue's ``attrs['threshold']`` is the highest confidence queued.
    """
    require_columns(predictions, ["id", "label"], "predictions")
    df = predictions.copy()
    df["id"] = df["id"].astype(str)
    if df["id"].duplicated().any():
        raise InputDataError("The predictions have repeated ids; keep one row per item.")
    excl = {str(i) for i in exclude_ids}
    df = df[~df["id"].isin(excl)]
    conf = (pd.to_numeric(df["confidence"], errors="coerce") if "confidence" in df.columns
            else pd.Series(np.nan, index=df.index))
    status = df["status"].fillna("ok").astype(str) if "status" in df.columns else \
        pd.Series("ok", index=df.index)
    bad = (status != "ok") | df["label"].isna()
    reason = np.where(bad, REASON_INVALID,
                      np.where(conf.isna(), REASON_NO_CONFIDENCE, REASON_LOW_CONFIDENCE))
    key = conf.where(~bad & conf.notna(), -np.inf)
    df = df.assign(_key=key.to_numpy(), reason=reason, status=status.to_numpy(),
                   confidence=conf.to_numpy())
    k = review_size(len(df), review_fraction)
    q = df.sort_values(["_key", "id"], kind="stable").head(k)
    cols = ["id", "label", "confidence", "status", "reason"] + [
        c for c in extra_columns if c in q.columns and c not in ("id", "label", "confidence")]
    out = q[cols].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    finite = q["_key"][np.isfinite(q["_key"])]
    out.attrs["threshold"] = float(finite.max()) if len(finite) else float("nan")
    out.attrs["n_corpus"] = len(df)
    return out


def kappa_after_review(
    predictions: pd.DataFrame,
    gold: pd.DataFrame,
    review_fraction: float = 0.15,
    reference_col: str = "reference",
    n_boot: int = 1000,
    seed: int = 0,
    kappa_fn: KappaFn | None = None,
) -> pd.DataFrame:
    """Kappa on all gold items vs on the gold items the confidence threshold auto-accepts.

    The queue is chosen on the whole ``predictions`` corpus (:func:`review_queue`); gold items
    are split by whether they fall in it. Rows: ``all_gold``, ``auto_accepted``, ``reviewed``
    with n, share, accuracy, kappa, kappa_ci_low, kappa_ci_high. ``kappa_fn`` (default
    :func:`textgauge.audits.core.kappa_ci`) takes (reference, predicted, n_boot=, seed=).
    """
    kappa_fn = kappa_fn or kappa_ci
    queue = review_queue(predictions, review_fraction)
    queued = set(queue["id"])
    al = align_with_gold(gold, predictions, reference_col)
    parts = {"all_gold": al, "auto_accepted": al[~al["id"].isin(queued)],
             "reviewed": al[al["id"].isin(queued)]}
    rows = []
    for name, part in parts.items():
        if len(part) >= 2:
            k = kappa_fn(part["reference"], part["label"], n_boot=n_boot, seed=seed)
            est, lo, hi = k.estimate, k.ci_low, k.ci_high
        else:
            est = lo = hi = np.nan
        rows.append({"subset": name, "n": len(part),
                     "share": len(part) / len(al) if len(al) else np.nan,
                     "accuracy": float((part["reference"] == part["label"]).mean())
                     if len(part) else np.nan,
                     "kappa": est, "kappa_ci_low": lo, "kappa_ci_high": hi})
    out = pd.DataFrame(rows)
    out.attrs["threshold"] = queue.attrs["threshold"]
    out.attrs["review_fraction"] = review_fraction
    return out
