"""Input checks and encodings shared by the statistics (rating vectors, tables, weights).

Every coefficient in :mod:`textgauge.stats` takes labels of any hashable type, drops missing
pairs the same way, encodes categories the same way and validates its arguments with messages
that name the argument. Those conventions live here, once.

Conventions
-----------
* Weights are *agreement* weights ``w[i, j]`` in [0, 1] with ones on the diagonal (Cohen 1968;
  Fleiss, Levin & Paik 2003, sec. 18.2). ``"linear"`` are the Cicchetti–Allison weights
  ``1 - |i-j|/(K-1)``, ``"quadratic"`` the Fleiss–Cohen weights ``1 - (i-j)^2/(K-1)^2``; both use
  the *positions* of the categories, as SAS, R ``irr`` and scikit-learn do.
* With ``labels=None`` the categories are those observed in either rating vector, sorted
  (as R ``irr::kappa2`` and ``sklearn.metrics.cohen_kappa_score`` do).
* Missing ratings (``None``/``NaN``) are dropped pairwise; results report ``n`` (pairs used) and
  ``n_dropped``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError

WeightsArg = str | np.ndarray | Sequence[Sequence[float]] | None

__all__ = [
    "WeightsArg",
    "agreement_weights",
    "as_1d",
    "category_codes",
    "check_columns",
    "check_confidence",
    "check_table",
    "contingency_table",
    "encode_pair",
    "missing_mask",
    "resolve_categories",
    "to_builtin",
    "weights_name",
]


def as_1d(y: Any, name: str) -> np.ndarray:
    """Return ``y`` as a 1-D numpy array or raise an error naming the argument."""
    if isinstance(y, pd.DataFrame):
        raise InputDataError(f"{name} must be one column of labels, got a DataFrame.")
    arr = y.to_numpy() if isinstance(y, pd.Series | pd.Index) else np.asarray(y)
    if arr.ndim != 1:
        raise InputDataError(f"{name} must be 1-dimensional, got shape {arr.shape}.")
    return arr


def missing_mask(arr: np.ndarray) -> np.ndarray:
    """True where a rating is missing (None or NaN)."""
    kind = arr.dtype.kind
    if kind == "f":
        return np.isnan(arr)
    if kind in "iubUS":
        return np.zeros(arr.shape, dtype=bool)
    return np.asarray(pd.isna(arr), dtype=bool)


def resolve_categories(values: np.ndarray, labels: Any, name: str) -> np.ndarray:
    """Categories: ``labels`` as given (validated) or the sorted observed values."""
    if labels is None:
        try:
            return np.unique(values)
        except TypeError:  # mixed types that cannot be sorted: keep order of appearance
            return np.asarray(pd.unique(values), dtype=object)
    cats = as_1d(labels, "labels")
    if len(cats) == 0:
        raise InputDataError("labels must list at least one category.")
    if missing_mask(cats).any():
        raise InputDataError("labels must not contain missing values (None/NaN).")
    if len(pd.unique(cats)) != len(cats):
        raise InputDataError("labels contains duplicated categories.")
    return cats


def category_codes(values: np.ndarray, cats: np.ndarray, name: str) -> np.ndarray:
    """Integer codes of ``values`` in ``cats``; unknown values raise an error naming ``name``."""
    idx = pd.Index(cats).get_indexer(values)
    if (idx < 0).any():
        bad = pd.unique(values[idx < 0])[:10]
        raise InputDataError(
            f"{name} contains values that are not in labels: {list(bad)}. "
            "Add them to labels or recode them."
        )
    return idx.astype(np.intp, copy=False)


def encode_pair(
    y1: Any, y2: Any, labels: Any = None, names: tuple[str, str] = ("y1", "y2")
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Encode two paired rating vectors as integer codes.

    Returns ``(codes1, codes2, categories, n_dropped)`` after dropping pairs where either rating
    is missing.
    """
    a = as_1d(y1, names[0])
    b = as_1d(y2, names[1])
    if len(a) != len(b):
        raise InputDataError(
            f"{names[0]} and {names[1]} must have the same length (one rating per item); "
            f"got {len(a)} and {len(b)}."
        )
    keep = ~(missing_mask(a) | missing_mask(b))
    n_dropped = int(len(a) - keep.sum())
    if n_dropped:
        a, b = a[keep], b[keep]
    if len(a) == 0:
        raise InputDataError(
            f"{names[0]} and {names[1]} have no item rated by both (after dropping missing)."
        )
    if labels is None:
        if a.dtype.kind in "iub" and b.dtype.kind in "iub":
            cats = np.union1d(a, b)
        else:
            cats = resolve_categories(np.concatenate([a.astype(object), b.astype(object)])
                                       if a.dtype != b.dtype else np.concatenate([a, b]),
                                       None, names[0])
    else:
        cats = resolve_categories(np.empty(0), labels, "labels")
    return category_codes(a, cats, names[0]), category_codes(b, cats, names[1]), cats, n_dropped


def contingency_table(codes1: np.ndarray, codes2: np.ndarray, k: int) -> np.ndarray:
    """K x K table of counts: rows = first rater (or truth), columns = second (or prediction)."""
    return np.bincount(codes1 * k + codes2, minlength=k * k).reshape(k, k)


def check_table(table: Any, name: str = "table") -> np.ndarray:
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise InputDataError(f"{name} must be a square K x K contingency table, got {t.shape}.")
    if not np.isfinite(t).all() or (t < 0).any():
        raise InputDataError(f"{name} must contain finite, non-negative counts.")
    if t.sum() <= 0:
        raise InputDataError(f"{name} is empty (all counts are zero).")
    return t


def check_confidence(confidence: float) -> float:
    if not (isinstance(confidence, int | float) and 0 < confidence < 1):
        raise ValueError(f"confidence must be a number in (0, 1), got {confidence!r}.")
    return float(confidence)


def agreement_weights(k: int, weights: WeightsArg = None) -> np.ndarray:
    """Agreement-weight matrix for ``k`` ordered categories.

    ``None`` (or ``"identity"``/``"unweighted"``) gives the identity (unweighted coefficients);
    ``"linear"`` gives Cicchetti–Allison weights ``1 - |i-j|/(k-1)`` and ``"quadratic"`` the
    Fleiss–Cohen weights ``1 - (i-j)^2/(k-1)^2``. A ``k x k`` matrix is validated and returned.

    References: Cicchetti & Allison (1971) Am J EEG Technol 11:101-109; Fleiss & Cohen (1973)
    Educ Psychol Meas 33:613-619; Cohen (1968) Psychol Bull 70:213-220.
    """
    if weights is None or (isinstance(weights, str) and weights in ("identity", "unweighted")):
        return np.eye(k)
    if isinstance(weights, str):
        d = np.abs(np.subtract.outer(np.arange(k), np.arange(k))).astype(float)
        scale = max(k - 1, 1)
        if weights == "linear":
            return 1.0 - d / scale
        if weights == "quadratic":
            return 1.0 - (d / scale) ** 2
        raise ValueError(
            f"weights must be None, 'linear', 'quadratic' or a K x K matrix, got {weights!r}."
        )
    w = np.asarray(weights, dtype=float)
    if w.shape != (k, k):
        raise ValueError(f"weights matrix must have shape ({k}, {k}) for {k} categories, "
                         f"got {w.shape}.")
    if not np.isfinite(w).all() or (w < 0).any() or (w > 1).any():
        raise ValueError("weights matrix must contain agreement weights in [0, 1].")
    if not np.allclose(np.diag(w), 1.0):
        raise ValueError(
            "weights matrix must hold agreement weights with ones on the diagonal. For "
            "disagreement weights d (zeros on the diagonal, as scikit-learn uses) pass "
            "1 - d / d.max()."
        )
    return w


def weights_name(weights: WeightsArg) -> str:
    if weights is None:
        return "unweighted"
    return weights if isinstance(weights, str) else "custom"


def to_builtin(x: Any) -> Any:
    """Convert numpy scalars/arrays and tuples to JSON-friendly Python objects."""
    if isinstance(x, dict):
        return {str(k): to_builtin(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [to_builtin(v) for v in x]
    if isinstance(x, np.ndarray):
        return [to_builtin(v) for v in x.tolist()]
    if isinstance(x, pd.DataFrame):
        return [to_builtin(r) for r in x.to_dict(orient="records")]
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def check_columns(df: Any, cols: dict[str, str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InputDataError(f"expected a pandas DataFrame of long-format codes, got "
                             f"{type(df).__name__}.")
    missing = [f"{arg}={col!r}" for arg, col in cols.items() if col not in df.columns]
    if missing:
        raise InputDataError(f"column(s) not found in the data: {', '.join(missing)}; "
                             f"available: {list(df.columns)}.")
