"""Agreement between many coders: every pair of coders, and models against the human ceiling.

Why: a model is read against how well the humans agree with each other on the same items
(the "human ceiling"): a kappa of .65 is weak where humans reach .90 and strong where they
reach .60.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError
from textgauge.stats.classification import decide
from textgauge.stats.inputs import (
    WeightsArg,
    check_columns,
    missing_mask,
    resolve_categories,
    to_builtin,
)
from textgauge.stats.kappa import cohen_kappa

__all__ = ["HumanBenchmark", "compare_with_humans", "pairwise_agreement"]


def _to_wide(data: pd.DataFrame, unit: str | None, coder: str | None,
             label: str | None) -> pd.DataFrame:
    """Long (unit, coder, label) or wide (units x coders) -> wide DataFrame."""
    if not isinstance(data, pd.DataFrame):
        raise InputDataError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    if unit is None and coder is None and label is None:
        return data
    if None in (unit, coder, label):
        raise ValueError("for long-format data pass all of unit=, coder= and label=.")
    check_columns(data, {"unit": unit, "coder": coder, "label": label})
    dup = data.duplicated([unit, coder], keep=False)
    if dup.any():
        rows = data.loc[dup, [unit, coder]].drop_duplicates().head(10).values.tolist()
        raise InputDataError(f"some coders coded the same unit more than once: {rows}.")
    return data.pivot(index=unit, columns=coder, values=label)


def _all_categories(wide: pd.DataFrame, labels: Any) -> np.ndarray:
    vals = wide.to_numpy(dtype=object).ravel()
    vals = vals[~missing_mask(vals)]
    try:
        vals = vals.astype(float) if all(isinstance(v, int | float | np.number)
                                         for v in vals) else vals
    except (TypeError, ValueError):
        pass
    return resolve_categories(vals, labels, "labels")


def _kappa_row(a: str, b: str, y1: Any, y2: Any, weights: WeightsArg, cats: Any,
               confidence: float) -> dict[str, Any]:
    try:
        r = cohen_kappa(y1, y2, weights=weights, labels=cats, confidence=confidence)
    except InputDataError:  # no item coded by both
        return {"coder_a": a, "coder_b": b, "kappa": np.nan, "se": np.nan, "ci_low": np.nan,
                "ci_high": np.nan, "p_observed": np.nan, "n": 0}
    return {"coder_a": a, "coder_b": b, "kappa": r.estimate, "se": r.se, "ci_low": r.ci_low,
            "ci_high": r.ci_high, "p_observed": r.p_observed, "n": r.n}


def pairwise_agreement(
    data: pd.DataFrame, unit: str | None = None, coder: str | None = None,
    label: str | None = None, coders: list | None = None, weights: WeightsArg = None,
    labels: Any = None, confidence: float = 0.95,
) -> pd.DataFrame:
    """Cohen's kappa (with CI and n) for every pair of coders, humans and models alike.

    Parameters
    ----------
    data : wide DataFrame (rows = units, one column per coder) or long DataFrame with
        ``unit``, ``coder`` and ``label`` columns (pass all three).
    coders : subset/order of coders; default: all columns.
    weights, labels, confidence : as in :func:`cohen_kappa`. With ``labels=None`` every pair
        uses the categories observed across *all* coders, so weighted kappas are comparable.

    Returns
    -------
    Tidy DataFrame, one row per unordered pair: coder_a, coder_b, kappa, se, ci_low, ci_high,
    p_observed, n (items coded by both). Pivot with
    ``df.pivot(index="coder_a", columns="coder_b", values="kappa")`` for a matrix.
    """
    wide = _to_wide(data, unit, coder, label)
    cols = list(wide.columns) if coders is None else list(coders)
    missing = [c for c in cols if c not in wide.columns]
    if missing:
        raise InputDataError(f"coders not found in the data: {missing}.")
    if len(cols) < 2:
        raise InputDataError("pairwise_agreement needs at least two coders.")
    cats = _all_categories(wide[cols], labels)
    rows = [_kappa_row(a, b, wide[a].to_numpy(dtype=object), wide[b].to_numpy(dtype=object),
                       weights, cats, confidence) for a, b in itertools.combinations(cols, 2)]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Models against the human ceiling
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class HumanBenchmark:
    """Result of :func:`compare_with_humans`.

    ``pairs``: one row per comparison (kind = model-reference, model-human, human-human,
    human-reference) with kappa, CI, n and the decision at ``threshold``.
    ``summary``: one row per model: kappa vs the reference (CI, decision), mean kappa vs the
    human coders, mean human-human kappa on the same items, and their ratio.
    """

    pairs: pd.DataFrame
    summary: pd.DataFrame
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return to_builtin({"pairs": self.pairs, "summary": self.summary,
                            "threshold": self.threshold})


def _predictions_wide(predictions: Any, unit: str, model: str, label: str) -> pd.DataFrame:
    if isinstance(predictions, dict):
        return pd.DataFrame({k: pd.Series(v) for k, v in predictions.items()})
    if isinstance(predictions, pd.Series):
        return predictions.to_frame(predictions.name or "model")
    if isinstance(predictions, pd.DataFrame):
        if {unit, model, label}.issubset(predictions.columns):
            return _to_wide(predictions, unit, model, label)
        if unit in predictions.columns:
            return predictions.set_index(unit)
        return predictions
    raise InputDataError("predictions must be a dict {model: Series indexed by id}, a wide "
                         "DataFrame (index = id, one column per model) or a long DataFrame "
                         f"with columns {unit!r}, {model!r}, {label!r}.")


def _reference_series(reference: Any, unit: str, label: str) -> pd.Series:
    if isinstance(reference, pd.DataFrame):
        check_columns(reference, {"unit": unit, "label": label})
        if reference[unit].duplicated().any():
            raise InputDataError("reference has more than one label for some ids.")
        return reference.set_index(unit)[label]
    if isinstance(reference, dict):
        return pd.Series(reference)
    if isinstance(reference, pd.Series):
        return reference
    raise InputDataError("reference must be a Series/dict id -> label or a DataFrame with "
                         f"columns {unit!r} and {label!r}.")


def compare_with_humans(
    human_codes: pd.DataFrame, reference: Any, predictions: Any, unit: str = "id",
    coder: str = "coder", label: str = "label", model: str = "model",
    weights: WeightsArg = None, labels: Any = None, threshold: float = 0.70,
    confidence: float = 0.95,
) -> HumanBenchmark:
    """Each model vs each human coder and vs the reference, next to human-human agreement.

    Human-human kappas are computed on the items that the models also labelled, so the ceiling
    and the model are judged on the same material. Human-vs-reference rows are shown too, but
    when the reference was built from these same coders (e.g. a majority vote) they are biased
    upwards and are not a fair ceiling.

    Parameters
    ----------
    human_codes : long DataFrame with ``unit``, ``coder``, ``label`` columns.
    reference : gold label per id (Series/dict id -> label, or DataFrame with unit, label).
    predictions : dict {model: Series indexed by id}, wide DataFrame (index or ``unit``
        column = id, one column per model) or long DataFrame (unit, model, label).
    threshold : decision threshold for :func:`decide` on each row.
    """
    humans = _to_wide(human_codes, unit, coder, label)
    ref = _reference_series(reference, unit, label)
    preds = _predictions_wide(predictions, unit, model, label)
    items = preds.index[preds.notna().any(axis=1)]
    ids = humans.index.union(ref.index).union(items)
    humans, ref, preds = humans.reindex(ids), ref.reindex(ids), preds.reindex(ids)
    everything = pd.concat([humans, preds, ref.rename("__reference__")], axis=1)
    cats = _all_categories(everything, labels)
    on_items = ids.isin(items)
    rows = []

    def add(kind: str, a: str, b: str, y1: pd.Series, y2: pd.Series) -> None:
        row = _kappa_row(str(a), str(b), y1.to_numpy(dtype=object),
                         y2.to_numpy(dtype=object), weights, cats, confidence)
        row["kind"] = kind
        row["decision"] = decide(row, threshold)
        rows.append(row)

    for m in preds.columns:
        add("model-reference", m, "reference", preds[m], ref)
        for h in humans.columns:
            add("model-human", m, h, preds[m], humans[h])
    for h1, h2 in itertools.combinations(humans.columns, 2):
        add("human-human", h1, h2, humans[h1][on_items], humans[h2][on_items])
    for h in humans.columns:
        add("human-reference", h, "reference", humans[h][on_items], ref[on_items])
    pairs = pd.DataFrame(rows)[["kind", "coder_a", "coder_b", "kappa", "se", "ci_low",
                                "ci_high", "n", "p_observed", "decision"]]
    hh = pairs.loc[pairs.kind == "human-human", "kappa"].mean()
    summ = []
    for m in preds.columns:
        mr = pairs[(pairs.kind == "model-reference") & (pairs.coder_a == str(m))].iloc[0]
        mh = pairs.loc[(pairs.kind == "model-human") & (pairs.coder_a == str(m)), "kappa"]
        summ.append({
            "model": str(m), "kappa_vs_reference": mr.kappa, "ci_low": mr.ci_low,
            "ci_high": mr.ci_high, "n": mr.n, "decision": mr.decision,
            "mean_kappa_vs_humans": mh.mean(), "mean_human_human_kappa": hh,
            "ratio_to_human_ceiling": mh.mean() / hh if hh and np.isfinite(hh) else np.nan,
        })
    return HumanBenchmark(pairs=pairs, summary=pd.DataFrame(summ), threshold=threshold)
