"""Classification metrics against a reference, the decision rule, and the one way every coder
is scored (:func:`kappa_summary`, :func:`macro_f1_summary`, :func:`per_class_f1_ci`).

Why: a classifier is validated against human coders by standard classification metrics
against a reference label, chance-corrected agreement with its confidence interval, and a
pre-registered decision rule: the model passes only if the whole confidence interval clears
the threshold (e.g. kappa >= .70), fails if the whole interval is below it, and is
inconclusive otherwise (Gwet 2014, ch. 6 on benchmarking with the interval, not the point
estimate).

Invalid answers (the rule used everywhere)
------------------------------------------
An answer a coder could not give (status invalid/failed, or no answer at all) is coded
:data:`INVALID_LABEL` and **counts as an error**: it is one more column of the confusion
table, never equal to a reference label. It lowers agreement and accuracy, and it is a false
negative of the item's true class in F1; it is not a class of its own in the macro average.
``coverage`` (share of valid answers) is reported beside every metric, so a coder that
fails on hard items cannot look better than it is by leaving them out.

Macro-F1 (the rule used everywhere)
-----------------------------------
The unweighted mean of per-class F1 over the codebook labels that occur in the reference
or in the valid answers of the items scored (scikit-learn's default label set), fixed from
the full sample and kept in every bootstrap replicate. A label absent from a stratum is
left out of that stratum's average instead of counting as F1 = 0.

Intervals
---------
Kappa: the Fleiss-Cohen-Everitt Wald interval (:func:`textgauge.stats.kappa.cohen_kappa`,
clipped to [-1, 1]) drives the decision; a percentile bootstrap interval is reported beside
it. Macro-F1 and per-class F1: percentile bootstrap (:mod:`textgauge.stats.bootstrap`, the
one seeded, vectorised bootstrap). Every summary records its ``confidence`` and ``n_boot``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from textgauge.stats.bootstrap import (
    bootstrap_kappa,
    bootstrap_macro_f1,
    bootstrap_tables,
    f1_from_tables,
)
from textgauge.stats.inputs import agreement_weights, encode_pair, to_builtin
from textgauge.stats.kappa import cohen_kappa

__all__ = [
    "INVALID_FIRST",
    "INVALID_LABEL",
    "MIN_N_BOOTSTRAP",
    "ClassificationReport",
    "classification_metrics",
    "classification_summary",
    "decide",
    "invalid_never_agrees",
    "kappa_summary",
    "kappa_weights_for",
    "label_weight_matrix",
    "macro_f1_summary",
    "per_class_f1_ci",
    "scored_labels",
    "scoring_categories",
]

#: the category of an answer a coder could not give (invalid/failed/missing): an error
INVALID_LABEL = "__invalid__"
#: the first coder's invalid answers, recoded so two invalid answers never agree
INVALID_FIRST = INVALID_LABEL + "(first)"
#: fewer items than this get no bootstrap interval for kappa (it would be degenerate)
MIN_N_BOOTSTRAP = 10

#: the scales a codebook can declare, and the kappa weights an ordinal scale can use
SCALES = ("nominal", "ordinal")
KAPPA_WEIGHTS = ("linear", "quadratic")


def kappa_weights_for(scale: str | None, kappa_weights: str | None = "quadratic") -> str | None:
    """The ``weights`` argument every kappa takes, from the codebook's ``scale`` and
    ``kappa_weights`` options: None (unweighted) for a nominal codebook, "linear" or
    "quadratic" for an ordinal one.

    Why one helper: every rule, audit and comparison must weight kappa the same way, or a
    weighted model kappa would be compared with an unweighted human ceiling. ``kappa_weights``
    is ignored for a nominal scale (documented in config/README.md).
    """
    scale = "nominal" if scale is None else str(scale)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}.")
    if scale == "nominal":
        return None
    kw = "quadratic" if kappa_weights is None else str(kappa_weights)
    if kw not in KAPPA_WEIGHTS:
        raise ValueError(f"kappa_weights must be one of {KAPPA_WEIGHTS}, got {kw!r}.")
    return kw


def label_weight_matrix(labels: Sequence[Any], categories: Sequence[Any],
                        weights: str | None) -> np.ndarray | None:
    """Agreement weights over ``categories`` (the codebook ``labels`` in scale order, then
    any invalid category): the ``weights`` of :func:`~textgauge.stats.inputs.agreement_weights`
    among the codebook labels, and no partial credit at all for an invalid answer (its weight
    with every label is 0), so an invalid answer is never "one step away" from the top of the
    scale. None when ``weights`` is None (unweighted).
    """
    if weights is None:
        return None
    n_lab = len(labels)
    w = np.eye(len(categories))
    w[:n_lab, :n_lab] = agreement_weights(n_lab, weights)
    return w


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
        return to_builtin({
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
        labels=tuple(to_builtin(list(cats))), per_class=per_class,
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
# The one way a coder is scored against a reference (or another coder)
# --------------------------------------------------------------------------------------------


def scoring_categories(labels: Sequence[Any], *ratings: Sequence[Any]) -> list[Any]:
    """The codebook labels, plus each invalid category that occurs in ``ratings``."""
    cats = list(labels)
    for extra in (INVALID_LABEL, INVALID_FIRST):
        if extra not in cats and any(extra in set(map(str, r)) for r in ratings):
            cats.append(extra)
    return cats


def invalid_never_agrees(y1: Sequence[Any], y2: Sequence[Any]) -> np.ndarray:
    """``y1`` with its invalid answers recoded, so that two invalid answers do not agree
    (two runs of one coder that both failed on an item are not in agreement)."""
    a = np.asarray(y1, dtype=object)
    if INVALID_LABEL in set(map(str, a)) and INVALID_LABEL in set(map(str, y2)):
        a = np.where(a == INVALID_LABEL, INVALID_FIRST, a)
    return a


def scored_labels(y_true: Sequence[Any], y_pred: Sequence[Any],
                  labels: Sequence[Any]) -> list[Any]:
    """The labels macro-F1 averages over: those of ``labels`` (codebook order) that occur in
    the reference or the valid answers (see the module docstring)."""
    seen = set(pd.unique(np.asarray(y_true, dtype=object))) | set(
        pd.unique(np.asarray(y_pred, dtype=object)))
    return [lab for lab in labels if lab in seen and lab != INVALID_LABEL]


def kappa_summary(y1: Sequence[Any], y2: Sequence[Any], labels: Sequence[Any], *,
                  confidence: float = 0.95, bootstrap: int = 1000,
                  seed: int | None = 0, weights: str | None = None) -> dict[str, Any]:
    """Cohen's kappa of ``y2`` against ``y1`` with the asymptotic CI and a bootstrap CI.

    ``weights`` (None, "linear" or "quadratic"; see :func:`kappa_weights_for`) gives the
    weighted kappa of an ordinal codebook, with ``labels`` in scale order; the Wald and the
    bootstrap interval use the same weights, and an invalid answer earns no partial credit
    (:func:`label_weight_matrix`). The result records ``weights`` ("unweighted" for None).

    ``ci_low``/``ci_high`` are the Fleiss-Cohen-Everitt Wald interval, reported within
    [-1, 1] (a Wald interval can pass the bounds on small samples); ``boot_ci_low``/
    ``boot_ci_high`` the percentile bootstrap over items with ``bootstrap`` replicates
    (given from :data:`MIN_N_BOOTSTRAP` items on). Invalid answers (:data:`INVALID_LABEL`)
    are errors: between two coders, two invalid answers do not agree. Returns kappa, se,
    ci_low, ci_high, n, p_observed, p_expected, confidence, n_boot [, boot_ci_low,
    boot_ci_high].
    """
    y1 = invalid_never_agrees(y1, y2)
    y2 = np.asarray(y2, dtype=object)
    cats = scoring_categories(labels, y1, y2)
    w = label_weight_matrix(labels, cats, weights)
    k = cohen_kappa(y1, y2, labels=cats, confidence=confidence, weights=w)
    out: dict[str, Any] = {
        "kappa": k.estimate, "se": k.se, "ci_low": max(k.ci_low, -1.0),
        "ci_high": min(k.ci_high, 1.0), "n": k.n, "p_observed": k.p_observed,
        "p_expected": k.p_expected, "confidence": float(confidence), "n_boot": 0,
        "weights": weights or "unweighted"}
    if bootstrap and k.n >= MIN_N_BOOTSTRAP:
        b = bootstrap_kappa(y1, y2, labels=cats, n_boot=int(bootstrap), seed=seed,
                            confidence=confidence, weights=w)
        out.update({"boot_ci_low": b.ci_low, "boot_ci_high": b.ci_high,
                    "n_boot": int(bootstrap)})
    return out


def macro_f1_summary(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any], *,
                     confidence: float = 0.95, bootstrap: int = 1000,
                     seed: int | None = 0) -> dict[str, Any]:
    """Macro-F1 (over :func:`scored_labels`) with a percentile bootstrap CI.

    Invalid answers count as errors of their true class. Returns estimate, ci_low, ci_high,
    n, labels (averaged over), confidence, n_boot. Without any scored label (or items) the
    values are NaN.
    """
    scored = scored_labels(y_true, y_pred, labels)
    nan = float("nan")
    out: dict[str, Any] = {"estimate": nan, "ci_low": nan, "ci_high": nan, "n": len(y_true),
                           "labels": scored, "confidence": float(confidence),
                           "n_boot": int(bootstrap)}
    if not scored or len(y_true) == 0:
        return out
    f = bootstrap_macro_f1(y_true, y_pred, labels=scoring_categories(labels, y_pred),
                           n_boot=max(int(bootstrap), 1), seed=seed, confidence=confidence,
                           scored=scored)
    out.update(estimate=f.estimate, n=f.n)
    if bootstrap:
        out.update(ci_low=f.ci_low, ci_high=f.ci_high)
    return out


def classification_summary(y_true: Sequence[Any], y_pred: Sequence[Any],
                           labels: Sequence[Any]) -> tuple[dict[str, Any], pd.DataFrame,
                                                           pd.DataFrame]:
    """Per-class and averaged metrics, and the confusion matrix as a labelled table.

    Invalid answers are a column of the confusion matrix (when there are any) and count as
    errors; the per-class table lists the codebook labels.
    """
    cats = scoring_categories(labels, y_pred)
    rep = classification_metrics(list(y_true), list(y_pred), labels=cats)
    d = rep.to_dict()
    d["averages"] = {a.pop("average"): a for a in d["averages"]}
    scored = rep.per_class[rep.per_class["label"].isin(scored_labels(y_true, y_pred, labels))]
    # the macro average follows the one macro-F1 rule (scored labels, invalid not a class)
    d["averages"]["macro"].update({m: float(scored[m].mean()) if len(scored) else None
                                   for m in ("precision", "recall", "f1")})
    per_class = rep.per_class[rep.per_class["label"] != INVALID_LABEL].reset_index(drop=True)
    return d, per_class, rep.confusion_table()


def per_class_f1_ci(y_true: Sequence[Any], y_pred: Sequence[Any], labels: Sequence[Any], *,
                    confidence: float = 0.95, bootstrap: int = 1000,
                    seed: int | None = 0) -> pd.DataFrame:
    """Percentile bootstrap CIs of each class's F1 (items resampled; the same replicate
    tables as :func:`kappa_summary` and :func:`macro_f1_summary` for the same seed).

    Columns: label, f1_ci_low, f1_ci_high, confidence, n_boot.
    """
    cats = scoring_categories(labels, y_pred)
    c1, c2, _, _ = encode_pair(np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object),
                               cats, names=("y_true", "y_pred"))
    k = len(cats)
    tabs = bootstrap_tables(c1, c2, k, n_boot=int(bootstrap), seed=seed)
    f1 = f1_from_tables(tabs)[:, :len(labels)]
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(f1, [alpha, 1 - alpha], axis=0)
    return pd.DataFrame({"label": list(labels), "f1_ci_low": lo, "f1_ci_high": hi,
                         "confidence": float(confidence), "n_boot": int(bootstrap)})

