"""Reading one coder's predictions against the gold set: the helpers every audit shares.

The invalid-answer rule of :mod:`textgauge.stats.classification` starts here: an answer with
status other than ``ok``, a missing label, or a gold item the coder never answered becomes
:data:`INVALID_LABEL` (``invalid='as_error'``, the default everywhere in the workflow), which
the statistics count as an error with ``coverage`` reported beside. ``invalid='drop'`` is for
the few measures where an invalid answer is an abstention (the position test, the ensemble
vote, alpha across prompts), and each says so.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError, format_rows
from textgauge.stats import INVALID_LABEL

__all__ = ["INVALID_LABEL", "align_with_gold", "prediction_labels", "require_columns",
           "require_unique"]


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise :class:`InputDataError` naming the columns of ``columns`` missing from ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputDataError(
            f"The {what} table lacks the column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(str, df.columns))}. Add or rename the column(s)."
        )


def require_unique(df: pd.DataFrame, cols: list[str], what: str) -> None:
    """Raise :class:`InputDataError` listing the keys ``cols`` that repeat in ``df``."""
    dup = df.duplicated(cols, keep=False)
    if dup.any():
        ids = df.loc[dup, cols].astype(str).agg("/".join, axis=1).unique().tolist()
        raise InputDataError(
            f"The {what} table has more than one row for {'/'.join(cols)} "
            f"{format_rows(ids)}; keep one row per item (filter one model or run first)."
        )


def prediction_labels(predictions: pd.DataFrame, invalid: str = "as_error") -> pd.Series:
    """Predicted labels with invalid/failed answers mapped to :data:`INVALID_LABEL` (or NaN).

    ``invalid='as_error'`` keeps unusable answers as a wrong label (they lower agreement);
    ``'drop'`` turns them into NaN for measures where an invalid answer is an abstention.
    """
    if invalid not in ("as_error", "drop"):
        raise ValueError("invalid must be 'as_error' or 'drop'")
    label = predictions["label"].astype(object)
    bad = label.isna()
    if "status" in predictions.columns:
        bad |= predictions["status"].fillna("ok").astype(str) != "ok"
    fill = INVALID_LABEL if invalid == "as_error" else np.nan
    return label.where(~bad, fill)


def align_with_gold(
    gold: pd.DataFrame,
    predictions: pd.DataFrame,
    reference_col: str = "reference",
    invalid: str = "as_error",
) -> pd.DataFrame:
    """Join gold references to one coder's predictions by ``id``.

    Returns the gold rows (all their columns, e.g. strata) with ``reference``, ``label``
    (predicted; see :func:`prediction_labels`) and ``confidence``. Gold items the coder never
    answered count as invalid (``as_error``) or are dropped (``drop``).
    """
    require_columns(gold, ["id", reference_col], "gold")
    require_columns(predictions, ["id", "label"], "predictions")
    require_unique(gold, ["id"], "gold")
    require_unique(predictions, ["id"], "predictions")
    g = gold.copy()
    g["id"] = g["id"].astype(str)
    g = g.rename(columns={reference_col: "reference"})
    g = g[g["reference"].notna()]
    p = pd.DataFrame({"id": predictions["id"].astype(str).to_numpy(),
                      "label": prediction_labels(predictions, invalid).to_numpy()})
    conf = predictions["confidence"] if "confidence" in predictions.columns else np.nan
    p["confidence"] = pd.to_numeric(pd.Series(conf, index=predictions.index),
                                    errors="coerce").to_numpy()
    g = g.drop(columns=[c for c in ("label", "confidence") if c in g.columns])
    out = g.merge(p, on="id", how="left")
    if invalid == "as_error":
        out["label"] = out["label"].fillna(INVALID_LABEL)
    else:
        out = out[out["label"].notna()]
    out["reference"] = out["reference"].astype(str)
    out["label"] = out["label"].astype(str)
    return out.reset_index(drop=True)
