"""Measures of an ordinal codebook: how far off, in scale steps, a coder's answers are.

Why: on an ordered scale (a 1-5 stance or sentiment scale) a coder who answers "oppose" for
"strongly oppose" is closer than one who answers "support"; weighted kappa summarises that as
chance-corrected agreement, but a reader also wants the plain numbers: how many answers are
exactly right, how many exactly one step away, and how many steps off an answer is on
average. All three are functions of the confusion table (rows = reference, columns = answer,
both in scale order), so their bootstrap intervals come from the one seeded, vectorised
bootstrap of tables (:func:`textgauge.stats.bootstrap.bootstrap_tables`).

Invalid answers (the rule used here)
------------------------------------
An invalid/failed/missing answer (:data:`~textgauge.stats.classification.INVALID_LABEL`)
has no position on the scale, and it counts as an error:

* ``exact`` and ``off_by_one`` (and ``within_one``) are shares of **all** items: an invalid
  answer is neither exact nor one step away, so it lowers ``exact`` and ``within_one``;
* ``mae`` and ``mean_error`` (in scale steps) are averages over the **valid** answers only
  (an invalid answer has no distance), and ``n_invalid`` / ``coverage`` are reported beside
  them, so a coder that fails on hard items is visible there and in ``exact``.

References: Agresti (2010) Analysis of Ordinal Categorical Data, 2nd ed., ch. 11 (agreement
on ordinal scales); Efron & Tibshirani (1993) ch. 13 (percentile bootstrap).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError
from textgauge.stats.bootstrap import bootstrap_tables
from textgauge.stats.classification import INVALID_LABEL
from textgauge.stats.inputs import check_confidence, contingency_table, encode_pair, to_builtin

__all__ = ["ORDINAL_INVALID_RULE", "ORDINAL_MEASURES", "ordinal_from_tables",
           "ordinal_summary"]

#: the measures of :func:`ordinal_summary`, in the order the report shows them
ORDINAL_MEASURES = ("exact", "off_by_one", "within_one", "mae", "mean_error")

#: how invalid answers enter the ordinal measures, written into metrics.json
ORDINAL_INVALID_RULE = (
    "invalid/failed answers count as errors: exact, off-by-one and within-one are shares of "
    "all items (an invalid answer is neither exact nor one step away); MAE and mean error "
    "(in scale steps) are over the valid answers only, with n_invalid and coverage beside")



def ordinal_from_tables(tables: np.ndarray, n_labels: int) -> dict[str, np.ndarray]:
    """The ordinal measures of confusion tables (..., K', K') whose first ``n_labels``
    categories are the scale in order and any further ones invalid answers.

    Returns arrays of shape (...,) for exact, off_by_one, within_one (shares of all items),
    mae and mean_error (answer minus reference, in scale steps, over valid answers; NaN
    without a valid answer).
    """
    t = np.asarray(tables, dtype=float)
    k = n_labels
    n = t.sum(axis=(-2, -1))
    valid = t[..., :k, :k]
    pos = np.arange(k)
    signed = pos[None, :] - pos[:, None]  # column (answer) minus row (reference)
    dist = np.abs(signed)
    n_valid = valid.sum(axis=(-2, -1))
    with np.errstate(divide="ignore", invalid="ignore"):
        exact = (valid * (dist == 0)).sum(axis=(-2, -1)) / n
        off1 = (valid * (dist == 1)).sum(axis=(-2, -1)) / n
        mae = (valid * dist).sum(axis=(-2, -1)) / n_valid
        me = (valid * signed).sum(axis=(-2, -1)) / n_valid
    return {"exact": exact, "off_by_one": off1, "within_one": exact + off1, "mae": mae,
            "mean_error": me}


def measure_intervals(est: dict[str, Any], reps: dict[str, np.ndarray] | None,
                      confidence: float, n_boot: int) -> dict[str, dict[str, Any]]:
    """Each of :data:`ORDINAL_MEASURES` with its percentile interval over the finite
    replicates (NaN without replicates): one block for the plain and the design-weighted
    summaries."""
    a = (1 - confidence) / 2
    nan = float("nan")
    out: dict[str, dict[str, Any]] = {}
    for m in ORDINAL_MEASURES:
        lo = hi = nan
        if reps is not None:
            r = reps[m][np.isfinite(reps[m])]
            if r.size:
                lo, hi = (float(x) for x in np.quantile(r, [a, 1 - a]))
        e = float(est[m])
        out[m] = {"estimate": e if np.isfinite(e) else nan, "ci_low": lo, "ci_high": hi,
                  "confidence": confidence, "n_boot": n_boot}
    return out


def ordinal_summary(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any], *,
                    confidence: float = 0.95, bootstrap: int = 1000,
                    seed: int | None = 0) -> dict[str, Any]:
    """Exact agreement, off-by-one rate, within-one rate, mean absolute error and mean
    (signed) error in scale steps of ``y_pred`` against ``y_true``, each with a percentile
    bootstrap CI over items.

    ``labels`` is the scale, lowest first; an answer not in it must be
    :data:`~textgauge.stats.classification.INVALID_LABEL` (an error, see the module
    docstring). Returns ``{measure: {estimate, ci_low, ci_high}}`` for
    :data:`ORDINAL_MEASURES`, and n, n_valid, n_invalid, coverage, scale (the labels),
    confidence, n_boot, invalid_rule.
    """
    confidence = check_confidence(confidence)
    labels = list(labels)
    if len(labels) < 2:
        raise InputDataError("an ordinal scale needs at least two labels.")
    cats = [*labels, INVALID_LABEL]
    pred = pd.Series(np.asarray(y_pred, dtype=object))
    pred = pred.where(pred.notna(), INVALID_LABEL)  # no answer is an invalid answer
    c1, c2, _, _ = encode_pair(np.asarray(y_true, dtype=object),
                               pred.to_numpy(dtype=object), cats,
                               names=("y_true", "y_pred"))
    if (c1 == len(labels)).any():
        raise InputDataError("ordinal measures need a valid reference label for every item; "
                             "drop items without one first.")
    k = len(cats)
    table = contingency_table(c1, c2, k)
    est = ordinal_from_tables(table, len(labels))
    n = int(table.sum())
    n_invalid = int(table[:, len(labels):].sum())
    out: dict[str, Any] = {}
    nan = float("nan")
    reps = None
    if bootstrap and n:
        reps = ordinal_from_tables(bootstrap_tables(c1, c2, k, n_boot=int(bootstrap),
                                                    seed=seed), len(labels))
    n_boot = int(bootstrap) if reps is not None else 0
    out.update(measure_intervals(est, reps, confidence, n_boot))
    out.update({"n": n, "n_valid": n - n_invalid, "n_invalid": n_invalid,
                "coverage": (n - n_invalid) / n if n else nan, "scale": labels,
                "confidence": confidence, "n_boot": n_boot,
                "invalid_rule": ORDINAL_INVALID_RULE})
    return to_builtin(out)
