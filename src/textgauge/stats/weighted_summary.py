"""Design-weighted results in the schemas of the unweighted ones (metrics.json keeps its keys).

Why: under ``gold.design: model_assisted`` the headline keys of metrics.json (``kappa``,
``macro_f1``, ``classification``, ``per_class``, the confusion CSV) must hold the corpus-level
estimates, in exactly the schemas the report, the audits and the ledger already read. Every
block here is read off ONE :class:`~textgauge.stats.weighted.WeightedMetrics` (its weighted
table and its within-cell bootstrap replicates), so kappa, F1 and the per-class table of one
coder come from the same table and the same replicates, never from separate resamplings.

The weighted table estimates the corpus's confusion counts (Horvitz-Thompson), so every
table statistic (precision, recall, F1, accuracy, MCC) is a ratio estimator of the corpus
value (Sarndal, Swensson & Wretman 1992, ch. 5). Intervals are percentile intervals of the
within-cell (Rao-Wu rescaled) bootstrap; there is no Wald interval (its variance formula
assumes a simple random sample), so ``ci_low``/``ci_high`` and ``boot_ci_low``/
``boot_ci_high`` are the same interval and ``se`` is the bootstrap standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError
from textgauge.stats.classification import INVALID_FIRST, INVALID_LABEL, label_weight_matrix
from textgauge.stats.inputs import agreement_weights, check_confidence, to_builtin
from textgauge.stats.ordinal import (
    ORDINAL_INVALID_RULE,
    measure_intervals,
    ordinal_from_tables,
)
from textgauge.stats.weighted import BOOTSTRAP_WITHIN_CELLS, WeightedMetrics, stratified_tables

__all__ = [
    "CI_METHOD",
    "classification_block",
    "confusion_frame",
    "kappa_block",
    "macro_f1_block",
    "ordinal_block",
    "per_class_table",
]

#: how every design-weighted interval is made, written beside it (the methods text reads it)
CI_METHOD = "percentile bootstrap within design cells (Rao-Wu)"
_INVALID = (INVALID_LABEL, INVALID_FIRST)


def _sd(reps: np.ndarray) -> float:
    fin = reps[np.isfinite(reps)]
    return float(np.std(fin, ddof=1)) if fin.size > 1 else float("nan")


def _agreement_matrix(wm: WeightedMetrics, labels: Sequence[Any],
                      weights: str | None) -> np.ndarray:
    cats = list(wm.categories)
    w = label_weight_matrix(list(labels), cats, weights) if weights is not None else None
    return agreement_weights(len(cats), None) if w is None else w


def kappa_block(wm: WeightedMetrics, labels: Sequence[Any],
                weights: str | None = None) -> dict[str, Any]:
    """The weighted kappa in the schema of :func:`~textgauge.stats.kappa_summary`.

    ``weights`` are the kappa's agreement weights (None, "linear", "quadratic"): the ones
    ``wm`` was computed with. ``n`` counts items; ``sum_weights`` the texts they stand for.
    """
    t = wm.table / wm.table.sum()
    w = _agreement_matrix(wm, labels, weights)
    lo, hi = wm.ci("kappa")
    return to_builtin({
        "kappa": wm.estimates["kappa"], "se": _sd(wm.replicates["kappa"]),
        "ci_low": lo, "ci_high": hi, "n": wm.n,
        "p_observed": float((w * t).sum()),
        "p_expected": float((w * np.outer(t.sum(1), t.sum(0))).sum()),
        "confidence": wm.confidence, "n_boot": wm.n_boot, "weights": weights or "unweighted",
        "boot_ci_low": lo, "boot_ci_high": hi, "ci_method": CI_METHOD,
        "sum_weights": wm.sum_weights, "n_cells": wm.n_cells})


def macro_f1_block(wm: WeightedMetrics) -> dict[str, Any]:
    """The weighted macro-F1 in the schema of :func:`~textgauge.stats.macro_f1_summary`."""
    lo, hi = wm.ci("macro_f1")
    return to_builtin({
        "estimate": wm.estimates["macro_f1"], "ci_low": lo, "ci_high": hi, "n": wm.n,
        "labels": list(wm.scored), "confidence": wm.confidence, "n_boot": wm.n_boot,
        "ci_method": CI_METHOD, "sum_weights": wm.sum_weights})


def _prf(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-category precision, recall, F1 (zero_division=0, as scikit-learn) and support."""
    tp = np.diag(t)
    col, row = t.sum(0), t.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(col > 0, tp / col, 0.0)
        r = np.where(row > 0, tp / row, 0.0)
        f = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
    return p, r, f, row


def per_class_table(wm: WeightedMetrics, labels: Sequence[Any]) -> pd.DataFrame:
    """Per codebook label: precision, recall, F1 of the weighted table, ``support`` = the
    weighted count of the label in the reference (texts of the corpus), and the F1 interval
    (NaN for a label neither in the reference nor in the answers: it is not scored)."""
    cats = list(wm.categories)
    p, r, f, s = _prf(wm.table)
    alpha = (1 - wm.confidence) / 2
    scored = list(wm.scored)
    rows = []
    for lab in labels:
        j = cats.index(lab)
        lo = hi = float("nan")
        if lab in scored and wm.f1_replicates.size:
            reps = wm.f1_replicates[:, scored.index(lab)]
            lo, hi = (float(x) for x in np.quantile(reps, [alpha, 1 - alpha]))
        rows.append({"label": lab, "precision": p[j], "recall": r[j], "f1": f[j],
                     "support": s[j], "f1_ci_low": lo, "f1_ci_high": hi,
                     "confidence": wm.confidence, "n_boot": wm.n_boot})
    return pd.DataFrame(rows)


def classification_block(wm: WeightedMetrics, labels: Sequence[Any]) -> dict[str, Any]:
    """The weighted table in the schema of :func:`~textgauge.stats.classification_summary`'s
    dict: per-category rows, macro (over the scored labels) / micro / weighted averages,
    accuracy, balanced accuracy, MCC, the weighted confusion matrix (float counts)."""
    cats = list(wm.categories)
    t = wm.table
    p, r, f, s = _prf(t)
    total = float(t.sum())
    per = [{"label": c, "precision": p[j], "recall": r[j], "f1": f[j], "support": s[j]}
           for j, c in enumerate(cats)]
    idx = [cats.index(lab) for lab in wm.scored]
    acc = float(np.trace(t) / total) if total else float("nan")
    macro = {m: float(v[idx].mean()) if idx else None for m, v in
             (("precision", p), ("recall", r), ("f1", f))}
    with np.errstate(divide="ignore", invalid="ignore"):
        weighted = {m: float((v * s).sum() / total) for m, v in
                    (("precision", p), ("recall", r), ("f1", f))}
        row, col = t.sum(1), t.sum(0)
        denom = np.sqrt((total**2 - col @ col) * (total**2 - row @ row))
        mcc = float((np.trace(t) * total - row @ col) / denom) if denom > 0 else 0.0
        cmn = np.where(row[:, None] > 0, t / row[:, None], 0.0)
    present = row > 0
    return to_builtin({
        "labels": cats, "per_class": per,
        "averages": {"macro": {**macro, "support": total},
                     "micro": {"precision": acc, "recall": acc, "f1": acc, "support": total},
                     "weighted": {**weighted, "support": total}},
        "accuracy": acc, "balanced_accuracy": float(r[present].mean()) if present.any()
        else float("nan"), "mcc": mcc, "confusion": t, "confusion_normalized": cmn,
        "n": wm.n, "n_dropped": 0, "sum_weights": wm.sum_weights, "weighted": True,
        "bootstrap": BOOTSTRAP_WITHIN_CELLS})


def confusion_frame(wm: WeightedMetrics) -> pd.DataFrame:
    """The weighted confusion table (estimated corpus counts) labelled as
    :meth:`~textgauge.stats.ClassificationReport.confusion_table` (true x predicted)."""
    cats = list(wm.categories)
    return pd.DataFrame(wm.table, index=pd.Index(cats, name="true"),
                        columns=pd.Index(cats, name="predicted"))


def ordinal_block(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any], *,
                  design_weights: Any, cells: Any = None, confidence: float = 0.95,
                  bootstrap: int = 1000, seed: Any = 0) -> dict[str, Any]:
    """The ordinal measures (exact, off-by-one, within-one, MAE, mean error) of the weighted
    table, in the schema of :func:`~textgauge.stats.ordinal_summary`, with percentile
    intervals of the bootstrap within design cells.

    The measures are functions of the confusion table (:func:`ordinal_from_tables`), so the
    weighted table gives their corpus-level estimates exactly as it does for kappa. ``n``,
    ``n_valid`` and ``n_invalid`` count items; ``coverage`` is the weighted share of valid
    answers.
    """
    confidence = check_confidence(confidence)
    labels = list(labels)
    cats = [*labels, INVALID_LABEL]
    pred = pd.Series(np.asarray(y_pred, dtype=object))
    pred = pred.where(pred.notna(), INVALID_LABEL).to_numpy(dtype=object)
    index = pd.Index(cats)
    c1 = index.get_indexer(np.asarray(y_true, dtype=object))
    c2 = index.get_indexer(pred)
    if (c1 < 0).any() or (c1 == len(labels)).any() or (c2 < 0).any():
        raise InputDataError("ordinal measures need reference labels and answers on the scale "
                             f"{labels} (or {INVALID_LABEL!r} answers).")
    w = np.asarray(design_weights, dtype=float)
    codes = (np.zeros(len(w), dtype=np.int64) if cells is None else
             pd.factorize(pd.Series(np.asarray(cells, dtype=object)).astype(str),
                          sort=True)[0].astype(np.int64))
    k = len(cats)
    table = np.bincount(c1 * k + c2, weights=w, minlength=k * k).reshape(k, k)
    est = ordinal_from_tables(table, len(labels))
    reps = None
    if bootstrap and len(w):
        reps = ordinal_from_tables(stratified_tables(c1, c2, k, w, codes, n_boot=int(bootstrap),
                                                     seed=seed), len(labels))
    n_boot = int(bootstrap) if reps is not None else 0
    nan = float("nan")
    out: dict[str, Any] = measure_intervals(est, reps, confidence, n_boot)
    invalid = c2 == len(labels)
    out.update({"n": int(len(w)), "n_valid": int((~invalid).sum()),
                "n_invalid": int(invalid.sum()),
                "coverage": float(w[~invalid].sum() / w.sum()) if len(w) else nan,
                "scale": labels, "confidence": confidence, "n_boot": n_boot,
                "invalid_rule": ORDINAL_INVALID_RULE, "ci_method": CI_METHOD,
                "sum_weights": float(w.sum())})
    return to_builtin(out)
