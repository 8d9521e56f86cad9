"""Validation reports: classification metrics, pairwise agreement, the human ceiling, decisions.

Why: a classifier is validated against human coders by (a) standard classification metrics
against a reference label, (b) chance-corrected agreement with each human coder, read next to
how well the humans agree with each other on the same items (the "human ceiling"), and (c) a
pre-registered decision rule: the model passes only if the whole confidence interval clears the
threshold (e.g. kappa >= .70), fails if the whole interval is below it, and is inconclusive
otherwise (Gwet 2014, ch. 6 on benchmarking with the interval, not the point estimate).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from textgauge.errors import InputDataError
from textgauge.stats.bootstrap import bootstrap_macro_f1
from textgauge.stats.core import (
    WeightsArg,
    _check_columns,
    _missing_mask,
    _resolve_categories,
    _to_builtin,
    cohen_kappa,
    encode_pair,
)

__all__ = [
    "ClassificationReport",
    "HumanBenchmark",
    "classification_metrics",
    "compare_with_humans",
    "decide",
    "pairwise_agreement",
    "per_stratum",
]


# --------------------------------------------------------------------------------------------
# Classification metrics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ClassificationReport:
    """Per-class and averaged classification metrics (scikit-learn definitions).

    ``per_class``: label, precision, recall, f1, support. ``averages``: macro / micro / weighted
    rows of precision, recall, f1, support. ``confusion``: counts (rows = true, columns =
    predicted); ``confusion_normalized``: row proportions (recall on the diagonal).
    """

    labels: tuple
    per_class: pd.DataFrame
    averages: pd.DataFrame
    accuracy: float
    balanced_accuracy: float
    mcc: float
    confusion: np.ndarray
    confusion_normalized: np.ndarray
    n: int
    n_dropped: int

    def confusion_table(self, normalized: bool = False) -> pd.DataFrame:
        """Confusion matrix as a DataFrame (index = true label, columns = predicted label)."""
        m = self.confusion_normalized if normalized else self.confusion
        idx = pd.Index(list(self.labels), name="true")
        return pd.DataFrame(m, index=idx, columns=pd.Index(list(self.labels), name="predicted"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tables as lists of records, matrices as nested lists)."""
        return _to_builtin({
            "labels": list(self.labels), "per_class": self.per_class,
            "averages": self.averages, "accuracy": self.accuracy,
            "balanced_accuracy": self.balanced_accuracy, "mcc": self.mcc,
            "confusion": self.confusion, "confusion_normalized": self.confusion_normalized,
            "n": self.n, "n_dropped": self.n_dropped,
        })


def classification_metrics(y_true: Any, y_pred: Any, labels: Any = None) -> ClassificationReport:
    """Precision/recall/F1 per class, macro/micro/weighted averages, accuracy, balanced
    accuracy, Matthews correlation and the confusion matrix, computed with scikit-learn.

    Pairs with a missing truth or prediction are dropped and counted in ``n_dropped`` (a model
    that failed to answer should be recoded to an explicit label first if it must count as an
    error). ``zero_division=0`` is explicit, so classes never predicted get precision 0.

    References: scikit-learn ``classification_report``; Matthews (1975) Biochim Biophys Acta
    405:442-451; Brodersen et al. (2010) ICPR (balanced accuracy).
    """
    c_true, c_pred, cats, n_dropped = encode_pair(y_true, y_pred, labels,
                                                  names=("y_true", "y_pred"))
    k = len(cats)
    ids = np.arange(k)
    p, r, f, s = skm.precision_recall_fscore_support(c_true, c_pred, labels=ids,
                                                     zero_division=0)
    per_class = pd.DataFrame({"label": list(cats), "precision": p, "recall": r, "f1": f,
                              "support": s.astype(int)})
    rows = []
    for avg in ("macro", "micro", "weighted"):
        pa, ra, fa, _ = skm.precision_recall_fscore_support(
            c_true, c_pred, labels=ids, average=avg, zero_division=0)
        rows.append({"average": avg, "precision": pa, "recall": ra, "f1": fa,
                     "support": int(s.sum())})
    cm = skm.confusion_matrix(c_true, c_pred, labels=ids)
    with np.errstate(divide="ignore", invalid="ignore"):
        cmn = np.where(cm.sum(1, keepdims=True) > 0, cm / cm.sum(1, keepdims=True), 0.0)
    present = np.unique(c_true)
    if len(present) < k:  # balanced accuracy averages recall over classes present in y_true
        bal = float(np.mean(r[present]))
    else:
        bal = float(skm.balanced_accuracy_score(c_true, c_pred))
    return ClassificationReport(
        labels=tuple(_to_builtin(list(cats))), per_class=per_class,
        averages=pd.DataFrame(rows), accuracy=float(skm.accuracy_score(c_true, c_pred)),
        balanced_accuracy=bal, mcc=float(skm.matthews_corrcoef(c_true, c_pred)),
        confusion=cm, confusion_normalized=cmn, n=len(c_true), n_dropped=n_dropped,
    )


# --------------------------------------------------------------------------------------------
# Decision rule
# --------------------------------------------------------------------------------------------


def decide(result: Any, threshold: float = 0.70) -> str:
    """"pass" if the CI lies at or above ``threshold``, "fail" if it lies wholly below,
    "inconclusive" if it straddles the threshold (or is undefined).

    ``result`` is anything with ``ci_low`` and ``ci_high`` (KappaResult, BootstrapResult,
    AlphaResult, AgreementResult) or a mapping with those keys. Judging the interval rather
    than the estimate keeps small validation samples from passing by luck.
    """
    if isinstance(result, dict):
        lo, hi = result.get("ci_low"), result.get("ci_high")
    else:
        lo, hi = getattr(result, "ci_low", None), getattr(result, "ci_high", None)
    if lo is None or hi is None:
        raise ValueError("result must have ci_low and ci_high (e.g. a KappaResult).")
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return "inconclusive"
    if lo >= threshold:
        return "pass"
    if hi < threshold:
        return "fail"
    return "inconclusive"


# --------------------------------------------------------------------------------------------
# Pairwise agreement
# --------------------------------------------------------------------------------------------


def _to_wide(data: pd.DataFrame, unit: str | None, coder: str | None,
             label: str | None) -> pd.DataFrame:
    """Long (unit, coder, label) or wide (units x coders) -> wide DataFrame."""
    if not isinstance(data, pd.DataFrame):
        raise InputDataError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    if unit is None and coder is None and label is None:
        return data
    if None in (unit, coder, label):
        raise ValueError("for long-format data pass all of unit=, coder= and label=.")
    _check_columns(data, {"unit": unit, "coder": coder, "label": label})
    dup = data.duplicated([unit, coder], keep=False)
    if dup.any():
        rows = data.loc[dup, [unit, coder]].drop_duplicates().head(10).values.tolist()
        raise InputDataError(f"some coders coded the same unit more than once: {rows}.")
    return data.pivot(index=unit, columns=coder, values=label)


def _all_categories(wide: pd.DataFrame, labels: Any) -> np.ndarray:
    vals = wide.to_numpy(dtype=object).ravel()
    vals = vals[~_missing_mask(vals)]
    try:
        vals = vals.astype(float) if all(isinstance(v, int | float | np.number)
                                         for v in vals) else vals
    except (TypeError, ValueError):
        pass
    return _resolve_categories(vals, labels, "labels")


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
        return _to_builtin({"pairs": self.pairs, "summary": self.summary,
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
        _check_columns(reference, {"unit": unit, "label": label})
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


# --------------------------------------------------------------------------------------------
# Per-stratum tables
# --------------------------------------------------------------------------------------------


def per_stratum(
    df: pd.DataFrame, stratum_col: str, y_true_col: str, y_pred_col: str,
    labels: Any = None, weights: WeightsArg = None, n_boot: int = 1000, seed: int | None = 0,
    confidence: float = 0.95, include_overall: bool = True,
) -> pd.DataFrame:
    """Kappa (analytic CI), macro-F1 (bootstrap CI), accuracy and n for each stratum.

    Why: a classifier can be valid overall and fail for one source, period or language.
    With ``labels=None`` each stratum uses the labels present in that stratum (truth or
    prediction), as scikit-learn does; pass ``labels`` to score every stratum on the full
    codebook. Strata where kappa is undefined (one category only) get NaN.
    """
    _check_columns(df, {"stratum_col": stratum_col, "y_true_col": y_true_col,
                        "y_pred_col": y_pred_col})
    groups: list[tuple[Any, pd.DataFrame]] = list(df.groupby(stratum_col, sort=True,
                                                             dropna=False))
    if include_overall:
        groups.append(("__overall__", df))
    rows = []
    for s, g in groups:
        row: dict[str, Any] = {"stratum": s, "n_rows": len(g)}
        try:
            k = cohen_kappa(g[y_true_col], g[y_pred_col], weights=weights, labels=labels,
                            confidence=confidence)
            f = bootstrap_macro_f1(g[y_true_col], g[y_pred_col], labels=labels,
                                   n_boot=n_boot, seed=seed, confidence=confidence)
            ok = g[y_true_col].notna() & g[y_pred_col].notna()
            acc = float((g.loc[ok, y_true_col] == g.loc[ok, y_pred_col]).mean())
            row.update(n=k.n, kappa=k.estimate, kappa_ci_low=k.ci_low, kappa_ci_high=k.ci_high,
                       macro_f1=f.estimate, macro_f1_ci_low=f.ci_low,
                       macro_f1_ci_high=f.ci_high, accuracy=acc)
        except InputDataError:
            row.update(n=0, kappa=np.nan, kappa_ci_low=np.nan, kappa_ci_high=np.nan,
                       macro_f1=np.nan, macro_f1_ci_low=np.nan, macro_f1_ci_high=np.nan,
                       accuracy=np.nan)
        rows.append(row)
    return pd.DataFrame(rows)
