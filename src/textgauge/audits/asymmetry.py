"""Sycophancy / class asymmetry: does the coder over- or under-predict a class?

Per class: recall and predicted vs gold prevalence with Wilson (1927) intervals and a paired CI
of their difference (statistics from :mod:`textgauge.stats.proportions`). Invalid answers are
errors: they are counted in n and never predict a class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import INVALID_LABEL, align_with_gold
from textgauge.audits.weighting import AuditDesign, stratified_share
from textgauge.errors import InputDataError
from textgauge.stats import paired_share_difference, wilson_ci

__all__ = ["class_asymmetry"]


def class_asymmetry(
    gold: pd.DataFrame,
    predictions: pd.DataFrame,
    reference_col: str = "reference",
    confidence: float = 0.95,
    min_difference: float = 0.02,
    invalid: str = "as_error",
    design: AuditDesign | None = None,
) -> pd.DataFrame:
    """Per-class recall and predicted vs gold prevalence: over/under-prediction audit.

    For every class: gold and predicted prevalence on the gold set with Wilson (1927) CIs,
    recall and precision with Wilson CIs, and the difference predicted - gold prevalence with
    a paired normal CI (the items are the same, so d_i = 1[pred=c] - 1[gold=c] is averaged;
    equivalent to the McNemar comparison of the two margins), plus the exact McNemar p-value.
    ``flag`` is 'over' ('under') when the whole CI lies above (below) 0 and the difference is
    at least ``min_difference`` (default 0.02: two percentage points) in size, else ''. A 'positive' class with over-prediction and much higher
    recall than the others is the course's signature of sycophancy. ``recall_gap`` is the
    class recall minus the mean recall of the other classes.
    """
    al = align_with_gold(gold, predictions, reference_col, invalid=invalid)
    n = len(al)
    if n == 0:
        raise InputDataError("No gold item has a prediction; nothing to audit.")
    classes = sorted(set(al["reference"]) | (set(al["label"]) - {INVALID_LABEL}))
    if design is not None and design.weighted:
        return _flags(pd.DataFrame(_weighted_rows(al, classes, design, confidence)),
                      min_difference)
    rows = []
    for c in classes:
        g = (al["reference"] == c).to_numpy()
        p = (al["label"] == c).to_numpy()
        tp = int((g & p).sum())
        d = paired_share_difference(g, p, confidence)
        glo, ghi = wilson_ci(g.sum(), n, confidence)
        plo, phi = wilson_ci(p.sum(), n, confidence)
        rlo, rhi = wilson_ci(tp, g.sum(), confidence)
        rows.append({
            "label": c, "n_gold": int(g.sum()), "n_predicted": int(p.sum()),
            "gold_prevalence": g.mean(), "gold_ci_low": float(glo), "gold_ci_high": float(ghi),
            "predicted_prevalence": p.mean(), "predicted_ci_low": float(plo),
            "predicted_ci_high": float(phi),
            "difference": d["difference"], "difference_ci_low": d["ci_low"],
            "difference_ci_high": d["ci_high"], "mcnemar_p": d["mcnemar_p"],
            "ratio": p.mean() / g.mean() if g.any() else np.inf,
            "recall": tp / g.sum() if g.any() else np.nan,
            "recall_ci_low": float(rlo), "recall_ci_high": float(rhi),
            "precision": tp / p.sum() if p.any() else np.nan,
            "confidence": float(confidence),
        })
    return _flags(pd.DataFrame(rows), min_difference)


def _flags(out: pd.DataFrame, min_difference: float) -> pd.DataFrame:
    """recall_gap and the over/under flag, the same rule weighted or not."""
    rec = out["recall"].to_numpy()
    others = np.array([np.nanmean(np.delete(rec, i)) if len(rec) > 1 else np.nan
                       for i in range(len(rec))])
    out["recall_gap"] = rec - others
    big = out["difference"].abs() >= min_difference
    out["flag"] = np.where(big & (out["difference_ci_low"] > 0), "over",
                           np.where(big & (out["difference_ci_high"] < 0), "under", ""))
    return out


def _weighted_rows(al: pd.DataFrame, classes: list, design: AuditDesign,
                   confidence: float) -> list[dict]:
    """The same columns, design-weighted (a model-assisted gold sample): prevalences, their
    difference, recall and precision are weighted shares with stratified-variance normal
    CIs (:func:`~textgauge.audits.weighting.stratified_share`; recall and precision as domain
    means, approximate). n_gold/n_predicted stay item counts; no McNemar p (it assumes a
    simple random sample)."""
    w = design.weights_for(al["id"])
    cells = design.cells_for(al["id"])
    rows = []
    for c in classes:
        g = (al["reference"] == c).to_numpy()
        p = (al["label"] == c).to_numpy()
        gs = stratified_share(g, w, cells, confidence)
        ps = stratified_share(p, w, cells, confidence)
        d = stratified_share(p.astype(float) - g, w, cells, confidence)
        rec = stratified_share(p[g], w[g], cells[g], confidence)
        prec = stratified_share(g[p], w[p], cells[p], confidence)
        rows.append({
            "label": c, "n_gold": int(g.sum()), "n_predicted": int(p.sum()),
            "gold_prevalence": gs["estimate"], "gold_ci_low": gs["ci_low"],
            "gold_ci_high": gs["ci_high"],
            "predicted_prevalence": ps["estimate"], "predicted_ci_low": ps["ci_low"],
            "predicted_ci_high": ps["ci_high"],
            "difference": d["estimate"], "difference_ci_low": d["ci_low"],
            "difference_ci_high": d["ci_high"], "mcnemar_p": np.nan,
            "ratio": ps["estimate"] / gs["estimate"] if g.any() else np.inf,
            "recall": rec["estimate"] if g.any() else np.nan,
            "recall_ci_low": rec["ci_low"], "recall_ci_high": rec["ci_high"],
            "precision": prec["estimate"] if p.any() else np.nan,
            "confidence": float(confidence), "weighted": True,
        })
    return rows
