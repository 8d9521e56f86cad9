"""Sycophancy / class asymmetry: does the coder over- or under-predict a class?

Per class: recall and predicted vs gold prevalence with Wilson (1927) intervals and a paired CI
of their difference (statistics from :mod:`textgauge.stats.proportions`). Invalid answers are
errors: they are counted in n and never predict a class.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import INVALID_LABEL, align_with_gold
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
    out = pd.DataFrame(rows)
    rec = out["recall"].to_numpy()
    others = np.array([np.nanmean(np.delete(rec, i)) if len(rec) > 1 else np.nan
                       for i in range(len(rec))])
    out["recall_gap"] = rec - others
    big = out["difference"].abs() >= min_difference
    out["flag"] = np.where(big & (out["difference_ci_low"] > 0), "over",
                           np.where(big & (out["difference_ci_high"] < 0), "under", ""))
    return out
