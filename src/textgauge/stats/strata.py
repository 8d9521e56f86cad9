"""The per-stratum table: is the coder valid in every source, period or group, not only overall?

Why: a classifier can be valid overall and fail for one source, period or language
(distribution shift, group bias). This is the one per-stratum table of textgauge: the
evaluation writes it (``validation/{model}/per_stratum.csv``), the strata audit and the report
read the same rows.

Each row scores one stratum exactly as the whole gold set is scored
(:mod:`textgauge.stats.classification`): invalid answers count as errors (``coverage`` beside),
kappa with its Fleiss-Cohen-Everitt CI, macro-F1 over the codebook labels present in the
stratum with a percentile bootstrap CI.

Flag rule
---------
A stratum is **flagged when the upper bound of its kappa CI lies below the kappa
threshold**: the stratum on its own fails the same decision rule as the model
(:func:`textgauge.stats.classification.decide` would say "fail"). A point estimate below the
threshold with a CI that reaches it is not flagged (a small stratum cannot be told apart from
the threshold); strata whose kappa is undefined (one category only) are not flagged and
say so in ``note``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError
from textgauge.stats.classification import INVALID_LABEL, kappa_summary, macro_f1_summary
from textgauge.stats.inputs import check_columns
from textgauge.stats.weighted import weighted_metrics

__all__ = ["OVERALL", "STRATUM_COLUMNS", "flag_stratum", "per_stratum"]

#: the pseudo-stratum holding the whole gold set in per-stratum tables
OVERALL = "(overall)"

#: the columns of :func:`per_stratum`, in order (the CSV and the audit use these names)
STRATUM_COLUMNS = (
    "stratum_col", "stratum", "n", "n_valid", "coverage", "accuracy", "kappa", "kappa_ci_low",
    "kappa_ci_high", "macro_f1", "macro_f1_ci_low", "macro_f1_ci_high", "flagged", "note",
    "kappa_threshold", "confidence", "n_boot",
)


def flag_stratum(kappa_ci_high: float, kappa_threshold: float) -> bool:
    """The flag rule: the whole kappa CI lies below the threshold (see the module docstring)."""
    return bool(np.isfinite(kappa_ci_high) and kappa_ci_high < kappa_threshold)


def _weighted_row(row: dict[str, Any], part: pd.DataFrame, labels: Sequence[Any], ref: str,
                  lab: str, bootstrap: int, confidence: float, seed: int | None,
                  weights: str | None) -> None:
    """Fill ``row`` with the design-weighted estimates of one stratum (in place).

    Coverage and accuracy are weighted shares; kappa and macro-F1 come from one
    :func:`~textgauge.stats.weighted_metrics` call, their intervals from its within-cell
    bootstrap (percentile; there is no Wald interval for a weighted kappa here).
    """
    w = part["_design_weight"].to_numpy(dtype=float)
    valid = part[lab].astype(str).to_numpy(dtype=object) != INVALID_LABEL
    wm = weighted_metrics(part[ref].astype(str).to_numpy(dtype=object),
                          part[lab].astype(str).to_numpy(dtype=object), labels,
                          design_weights=w, cells=part["_design_cell"].to_numpy(dtype=object),
                          weights=weights, n_boot=max(int(bootstrap), 1), seed=seed,
                          confidence=confidence)
    nan = float("nan")
    k_lo, k_hi = wm.ci("kappa") if bootstrap else (nan, nan)
    f_lo, f_hi = wm.ci("macro_f1") if bootstrap else (nan, nan)
    row.update(coverage=float(w[valid].sum() / w.sum()), accuracy=wm.estimates["accuracy"],
               kappa=wm.estimates["kappa"], kappa_ci_low=k_lo, kappa_ci_high=k_hi,
               macro_f1=wm.estimates["macro_f1"], macro_f1_ci_low=f_lo,
               macro_f1_ci_high=f_hi)


def _row(col: Any, value: Any, part: pd.DataFrame, labels: Sequence[Any], ref: str, lab: str,
         kappa_threshold: float, bootstrap: int, confidence: float,
         seed: int | None, weights: str | None = None,
         weighted: bool = False) -> dict[str, Any]:
    y_true = part[ref].astype(str).to_numpy(dtype=object)
    y_pred = part[lab].astype(str).to_numpy(dtype=object)
    n = len(part)
    n_valid = int((y_pred != INVALID_LABEL).sum())
    nan = float("nan")
    row: dict[str, Any] = {
        "stratum_col": col, "stratum": value, "n": n, "n_valid": n_valid,
        "coverage": n_valid / n if n else nan,
        "accuracy": float((y_true == y_pred).mean()) if n else nan,
        "kappa": nan, "kappa_ci_low": nan, "kappa_ci_high": nan,
        "macro_f1": nan, "macro_f1_ci_low": nan, "macro_f1_ci_high": nan,
        "flagged": False, "note": "", "kappa_threshold": float(kappa_threshold),
        "confidence": float(confidence), "n_boot": int(bootstrap)}
    if n == 0:
        row["note"] = "no items"
        return row
    if weighted:
        _weighted_row(row, part, labels, ref, lab, bootstrap, confidence, seed, weights)
        return _flag(row, col, kappa_threshold)
    k = kappa_summary(y_true, y_pred, labels, confidence=confidence, bootstrap=0,
                      weights=weights)
    f = macro_f1_summary(y_true, y_pred, labels, confidence=confidence, bootstrap=bootstrap,
                         seed=seed)
    row.update(kappa=k["kappa"], kappa_ci_low=k["ci_low"], kappa_ci_high=k["ci_high"],
               macro_f1=f["estimate"], macro_f1_ci_low=f["ci_low"],
               macro_f1_ci_high=f["ci_high"])
    return _flag(row, col, kappa_threshold)


def _flag(row: dict[str, Any], col: Any, kappa_threshold: float) -> dict[str, Any]:
    if not np.isfinite(row["kappa"]):
        row["note"] = "kappa undefined (one category only)"
    elif col != OVERALL:
        row["flagged"] = flag_stratum(row["kappa_ci_high"], kappa_threshold)
    return row


def per_stratum(
    scored: pd.DataFrame, strata: Sequence[str], labels: Sequence[Any], *,
    reference_col: str = "reference", label_col: str = "label",
    kappa_threshold: float = 0.70, bootstrap: int = 1000, confidence: float = 0.95,
    seed: int | None = 0, weights: str | None = None,
    design_weights: Any = None, cells: Any = None,
) -> pd.DataFrame:
    """Kappa and macro-F1 with CIs, n, coverage and the flag, overall and per stratum.

    Parameters
    ----------
    scored : one row per gold item: the reference label in ``reference_col``, the coder's
        answer in ``label_col`` (invalid/failed/missing answers as
        :data:`~textgauge.stats.classification.INVALID_LABEL`: they are errors), and one
        column per stratum variable.
    strata : the stratum columns; each of their values is one row.
    labels : the codebook labels (macro-F1 averages over those present in a stratum).
    kappa_threshold : the threshold of the flag rule (module docstring).
    bootstrap, confidence, seed : replicates, level and seed of every interval.
    weights : None (unweighted kappa) or "linear"/"quadratic" for an ordinal codebook
        (``labels`` in scale order; see
        :func:`~textgauge.stats.classification.kappa_weights_for`): the kappa column and
        its flag then use the weighted kappa, as the coder's overall metrics do.
    design_weights, cells : for a gold sample drawn with unequal inclusion probabilities
        (``gold.design: model_assisted``; :func:`textgauge.stats.design.gold_design` of the
        rows of ``scored``): one design weight and one design cell per row. Each stratum is
        then estimated design-weighted (:func:`~textgauge.stats.weighted_metrics`, bootstrap
        within the design cells of the stratum's items; ``coverage`` and ``accuracy``
        weighted shares). ``n`` and ``n_valid`` still count items. Default None: unweighted.

    Returns
    -------
    DataFrame with :data:`STRATUM_COLUMNS`; the first row is the whole set
    (``stratum_col == stratum == OVERALL``, never flagged), then one row per stratum value
    (sorted; a missing value is its own stratum).
    """
    check_columns(scored, {"reference_col": reference_col, "label_col": label_col,
                           **{f"strata[{i}]": s for i, s in enumerate(strata)}})
    if scored[reference_col].isna().any():
        raise InputDataError("per_stratum: some items have no reference label; drop them "
                             "first (they are not gold items).")
    d = scored.assign(**{label_col: scored[label_col].astype(object).where(
        scored[label_col].notna(), INVALID_LABEL)})
    weighted = design_weights is not None
    if weighted:
        w = np.asarray(design_weights, dtype=float)
        c = (np.zeros(len(d), dtype=object) if cells is None
             else np.asarray(cells, dtype=object))
        if w.shape != (len(d),) or len(c) != len(d):
            raise InputDataError(f"per_stratum: design_weights and cells need one value per "
                                 f"row of scored ({len(d)}).")
        d = d.assign(_design_weight=w, _design_cell=c)
    args = (labels, reference_col, label_col, kappa_threshold, bootstrap, confidence, seed,
            weights, weighted)
    rows = [_row(OVERALL, OVERALL, d, *args)]
    for col in strata:
        for value, part in d.groupby(col, sort=True, dropna=False):
            rows.append(_row(col, value, part, *args))
    return pd.DataFrame(rows, columns=list(STRATUM_COLUMNS))
