"""Distribution shift / group bias: is the coder valid in every stratum of the gold set?

The course's mitigation for distribution shift is to validate on each stratum separately. The
numbers are the one per-stratum table of :func:`textgauge.stats.per_stratum` (kappa and
macro-F1 with CIs, coverage, the flag): the evaluation writes it to
``validation/{model}/per_stratum.csv`` and the model audit reads that file, so the audit, the
evaluation and the report show the same numbers. Flag rule (``flagged``): the stratum's whole
kappa CI lies below ``kappa_threshold`` (:func:`textgauge.stats.flag_stratum`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from textgauge.audits.gold_alignment import align_with_gold, require_columns
from textgauge.stats import OVERALL, STRATUM_COLUMNS, per_stratum

__all__ = ["flagged_strata", "stratum_performance"]


def stratum_performance(
    gold: pd.DataFrame,
    predictions: pd.DataFrame,
    strata: Sequence[str],
    labels: Sequence[str],
    reference_col: str = "reference",
    kappa_threshold: float = 0.70,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """The per-stratum table of one coder on the gold set (see :func:`textgauge.stats.per_stratum`).

    ``gold`` has id, the reference label and the strata columns; ``predictions`` id, label,
    status. Invalid/failed answers and gold items without an answer are errors.
    """
    al = align_with_gold(gold, predictions, reference_col)
    require_columns(al, list(strata), "gold")
    return per_stratum(al, list(strata), list(labels), kappa_threshold=kappa_threshold,
                       bootstrap=bootstrap, confidence=confidence, seed=seed)


def flagged_strata(table: pd.DataFrame | Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The flagged rows of a per-stratum table (the overall row is never one of them)."""
    df = pd.DataFrame(table, columns=None)
    if df.empty:
        return []
    missing = [c for c in STRATUM_COLUMNS if c not in df.columns]
    require_columns(df, ["stratum_col", "flagged"], "per-stratum")
    if missing:
        df = df.reindex(columns=[*df.columns, *missing])
    rows = df[(df["flagged"].astype(bool)) & (df["stratum_col"] != OVERALL)]
    return rows.to_dict("records")
