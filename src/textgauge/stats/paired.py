"""Paired comparisons of coders scored on the same gold items, and humans against the model on
equal terms (leave-one-coder-out references).

Why: two coders evaluated on the same items share the items' difficulty, so their kappas are
correlated; comparing two separate CIs (overlap or not) is both too conservative and not the
question. The honest answer to "is A better than B?" is the *difference* with a paired
bootstrap CI: items are resampled jointly, each carrying its (reference, A, B) triple.

Vectorised as :func:`textgauge.stats.bootstrap.bootstrap_tables`: a resample of items only
matters through its joint (reference, A, B) table, so each replicate's K^3 joint table is drawn
from Multinomial(n, observed joint cell proportions) and the two (K, K) tables against the
reference are its margins; kappa and macro-F1 of a whole stack of replicates are computed at
once. With clustered data (one item carries several (item, coder) pairs, as in the crowd
comparison below) the bootstrap resamples items, each with all its pairs (cluster bootstrap):
a replicate's joint table is ``counts @ unit_tables`` (:func:`unit_resample_counts`).

Human against model on equal terms
----------------------------------
A human coder scored against a reference that contains their own codes is flattered (with two
coders and a majority reference, a coder agrees with half the reference by construction). Here
each human coder ``h`` is scored against the *leave-one-coder-out* reference: on each item, the
majority of the codes of the other coders (with two coders: the other coder alone). The model is
scored against exactly the same reference on exactly the same items, and the paired
difference (model - human) says whether the model codes like one more human coder. A tie in
a leave-one-out majority is broken by a seeded random draw among the tied labels, and counted;
an item without any other code gives no reference and is excluded, and counted.

Crowd-coded gold (many coders, few shared items) has no per-coder comparison worth making:
there every (item, coder) pair is pooled, each code compared with the leave-one-out majority of
the other codes on its item, the model's answer compared with the same reference for the same
pair, and the bootstrap resamples items with all their pairs (the "average coder").

Invalid answers are errors (:mod:`textgauge.stats.classification`): an invalid category is a
column of the tables, never equal to a reference label, with no partial credit in a weighted
kappa (:func:`~textgauge.stats.classification.label_weight_matrix`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from textgauge.errors import InputDataError
from textgauge.stats.bootstrap import (
    check_boot_args,
    ci_from_replicates,
    macro_f1_from_tables,
    unit_resample_counts,
)
from textgauge.stats.classification import (
    INVALID_FIRST,
    INVALID_LABEL,
    label_weight_matrix,
    scored_labels,
    scoring_categories,
)
from textgauge.stats.inputs import agreement_weights, check_confidence, to_builtin
from textgauge.stats.kappa import kappa_from_tables

__all__ = [
    "AVERAGE_CODER",
    "BELOW",
    "INDISTINGUISHABLE",
    "ABOVE",
    "STATISTICS",
    "human_model_comparison",
    "leave_one_out_reference",
    "paired_comparison",
    "verdict_vs_humans",
]

#: the verdicts of a model against human coders, in the words the report prints
INDISTINGUISHABLE = "indistinguishable from a human coder"
BELOW = "below human coders"
ABOVE = "above human coders"
UNDETERMINED = "undetermined"
#: the name of the pooled comparison (every (item, coder) pair): the average human coder
AVERAGE_CODER = "average coder"
#: the statistics every paired comparison reports
STATISTICS = ("kappa", "macro_f1")
#: upper bound on joint-table cells held in memory at once (per block of replicates)
_BLOCK_CELLS = 1 << 22


def verdict_vs_humans(ci_low: float, ci_high: float) -> str:
    """The verdict of a model against human coders from the CI of (model - human).

    "indistinguishable from a human coder" when the CI contains 0, "below human coders" when
    its upper end is below 0, "above human coders" when its lower end is above 0 (and
    "undetermined" when the CI is undefined).
    """
    if ci_low is None or ci_high is None or not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return UNDETERMINED
    if ci_high < 0:
        return BELOW
    if ci_low > 0:
        return ABOVE
    return INDISTINGUISHABLE


# --------------------------------------------------------------------------------------------
# The paired bootstrap
# --------------------------------------------------------------------------------------------


def _encode(values: Any, cats: list[Any], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise InputDataError(f"{name} must be 1-dimensional, got shape {arr.shape}.")
    missing = pd.isna(arr)
    if missing.any():
        raise InputDataError(
            f"{name} has {int(missing.sum())} missing label(s); a coder's unanswered item must "
            f"be coded {INVALID_LABEL!r} (it counts as an error), a reference must be complete.")
    codes = pd.Index(cats).get_indexer(arr)
    if (codes < 0).any():
        bad = sorted({str(v) for v in arr[codes < 0]})[:10]
        raise InputDataError(f"{name} holds labels that are not in the codebook: {bad}. Fix the "
                             "labels or add them to the codebook.")
    return codes.astype(np.int64)


def _statistic(statistic: str, w: np.ndarray, scored: np.ndarray
               ) -> Callable[[np.ndarray], np.ndarray]:
    if statistic == "kappa":
        return lambda t: kappa_from_tables(t, w)
    if statistic == "macro_f1":
        if len(scored) == 0:
            return lambda t: np.full(t.shape[:-2], np.nan)
        return lambda t: macro_f1_from_tables(t, scored)
    raise ValueError(f"statistic must be one of {STATISTICS}, got {statistic!r}.")


def _joint_replicates(joint: np.ndarray, unit_tables: sparse.csr_matrix | None, n_boot: int,
                      seed: int | None) -> np.ndarray:
    """(n_boot, K, K, K) bootstrap joint tables: a multinomial over the K^3 cells (items
    resampled), or with ``unit_tables`` (U, K^3) the sum of resampled units' tables."""
    k = joint.shape[0]
    kkk = k**3
    if unit_tables is None:
        n = int(joint.sum())
        rng = np.random.default_rng(seed)
        probs = joint.ravel() / n
        out = np.empty((n_boot, kkk), dtype=np.int64)
        block = max(1, _BLOCK_CELLS // kkk)
        for start in range(0, n_boot, block):  # memory blocks, not single replicates
            m = min(block, n_boot - start)
            out[start:start + m] = rng.multinomial(n, probs, size=m)
        return out.reshape(n_boot, k, k, k)
    out = np.empty((n_boot, kkk), dtype=np.int64)
    for start, counts in unit_resample_counts(unit_tables.shape[0], n_boot, seed):
        out[start:start + len(counts)] = np.asarray(
            (unit_tables.T @ counts.T).T)  # sparse (U, K^3): units hold few cells
    return out.reshape(n_boot, k, k, k)


def _design_replicates(cell: np.ndarray, w: np.ndarray, unit_index: np.ndarray,
                       design_cell: np.ndarray, k: int, n_boot: int,
                       seed: int | None) -> np.ndarray:
    """(n_boot, K, K, K) weighted joint tables of the bootstrap within design cells.

    Units (items, or clusters of pairs) are resampled within their design cell: ``n_h - 1``
    draws from a cell of ``n_h`` units, each weight scaled by ``n_h / (n_h - 1)`` (Rao & Wu
    1988, as :func:`textgauge.stats.weighted.stratified_tables`); a unit carries all its
    pairs with their design weights. A cell of one unit stays as drawn.
    """
    n_units = int(unit_index.max()) + 1
    kkk = k**3
    unit_tables = sparse.csr_matrix((w, (unit_index, cell)), shape=(n_units, kkk))
    unit_cell = np.empty(n_units, dtype=object)
    unit_cell[unit_index] = design_cell
    codes = pd.factorize(pd.Series(unit_cell).astype(str), sort=True)[0]
    rng = np.random.default_rng(seed)
    out = np.empty((n_boot, kkk))
    block = max(1, _BLOCK_CELLS // max(kkk, n_units))
    for start in range(0, n_boot, block):
        m = min(block, n_boot - start)
        mult = np.zeros((m, n_units))
        for h in np.unique(codes):
            idx = np.flatnonzero(codes == h)
            n_h = len(idx)
            if n_h == 1:
                mult[:, idx] = 1.0
                continue
            mult[:, idx] = rng.multinomial(n_h - 1, np.full(n_h, 1.0 / n_h),
                                           size=m) * (n_h / (n_h - 1))
        out[start:start + m] = np.asarray((unit_tables.T @ mult.T).T)
    return out.reshape(n_boot, k, k, k)


def _margins(joint: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tables (reference x A) and (reference x B) of joint tables (..., K, K, K)."""
    return joint.sum(axis=-1), joint.sum(axis=-2)


def paired_comparison(
    reference: Any, y_a: Any, y_b: Any, labels: Sequence[Any], *,
    units: Any = None, weights: str | None = None, statistics: Sequence[str] = STATISTICS,
    confidence: float = 0.95, n_boot: int = 1000, seed: int | None = 0,
    method: str = "percentile", design_weights: Any = None, cells: Any = None,
) -> dict[str, dict[str, Any]]:
    """The difference (A - B) in kappa and macro-F1 of two coders against one reference on
    the same items, with a paired bootstrap CI.

    Parameters
    ----------
    reference, y_a, y_b : labels, aligned (one entry per scored pair). Invalid answers of A or
        B are :data:`INVALID_LABEL` (errors); a reference label is never invalid-and-agreeing.
    labels : the codebook labels (scale order for a weighted kappa).
    units : optional cluster of each pair (e.g. the item id when an item carries several
        pairs): the bootstrap then resamples units with all their pairs. Default: every pair is
        its own unit (items resampled, drawn as a multinomial over the K^3 joint cells).
    weights : None (unweighted kappa), "linear" or "quadratic" (ordinal codebooks); an
        invalid answer earns no partial credit.
    method : "percentile" (default) or "bca" (jackknife acceleration over the units).
    design_weights, cells : for gold items drawn with unequal inclusion probabilities
        (``gold.design: model_assisted``; :func:`textgauge.stats.design.gold_design`): one
        design weight and one design cell per pair (constant within a unit). The tables are
        then weighted (corpus-level estimates) and the bootstrap resamples units within
        their design cells (Rao-Wu rescaled; percentile only). The result gains
        ``sum_weights`` and ``bootstrap``. Default None: the unweighted comparison.

    Returns
    -------
    ``{statistic: {statistic, estimate_a, estimate_b, difference, ci_low, ci_high, ci_low_a,
    ci_high_a, ci_low_b, ci_high_b, se, n, n_units, confidence, n_boot, method, seed, weights,
    n_invalid_replicates}}`` (``ci_*_a``/``ci_*_b``: each coder's own percentile CI from the
    same replicates). The
    estimates equal :func:`~textgauge.stats.classification.kappa_summary` and
    :func:`~textgauge.stats.classification.macro_f1_summary` of each coder on these items
    (macro-F1 of each coder over its own scored labels, as in its metrics).
    """
    check_boot_args(n_boot, method)
    confidence = check_confidence(confidence)
    labels = list(labels)
    ref = np.asarray(reference, dtype=object)
    a, b = np.asarray(y_a, dtype=object), np.asarray(y_b, dtype=object)
    if not len(ref) == len(a) == len(b):
        raise InputDataError(f"reference, y_a and y_b must be aligned; got lengths {len(ref)}, "
                             f"{len(a)} and {len(b)}.")
    if len(ref) == 0:
        raise InputDataError("no item to compare the two coders on.")
    # an invalid reference code never agrees with an invalid answer (two failures do not agree)
    ref = np.where(ref == INVALID_LABEL, INVALID_FIRST, ref)
    cats = scoring_categories(labels, ref, a, b)
    k = len(cats)
    cr, ca, cb = (_encode(v, cats, name) for v, name in ((ref, "reference"), (a, "y_a"),
                                                         (b, "y_b")))
    cell = (cr * k + ca) * k + cb
    if design_weights is not None:
        return _weighted_paired(cell, k, cats, labels, ref, a, b, units, weights, statistics,
                                confidence, int(n_boot), seed, method, design_weights, cells)
    joint = np.bincount(cell, minlength=k**3).reshape(k, k, k)
    unit_tables = unit_index = None
    if units is not None:
        unit_index, _ = pd.factorize(np.asarray(units, dtype=object))
        if len(unit_index) != len(ref):
            raise InputDataError("units must give one unit per compared pair.")
        n_units = int(unit_index.max()) + 1
        unit_tables = sparse.csr_matrix(
            (np.ones(len(cell), dtype=np.int64), (unit_index, cell)), shape=(n_units, k**3))
    else:
        n_units = len(ref)
    w = label_weight_matrix(labels, cats, weights)
    w = agreement_weights(k, None) if w is None else w
    idx = {c: i for i, c in enumerate(cats)}
    scored = {"a": np.array([idx[lab] for lab in scored_labels(ref, a, labels)], dtype=np.intp),
              "b": np.array([idx[lab] for lab in scored_labels(ref, b, labels)], dtype=np.intp)}
    reps_joint = _joint_replicates(joint, unit_tables, int(n_boot), seed)
    ta, tb = _margins(joint[None].astype(float))
    ra, rb = _margins(reps_joint)
    jack = None
    if method == "bca":
        if unit_tables is None:  # leave one item out: one table per occupied joint cell
            occ = np.flatnonzero(joint.ravel() > 0)
            jt = np.repeat(joint.ravel()[None].astype(float), len(occ), axis=0)
            jt[np.arange(len(occ)), occ] -= 1
            jw = joint.ravel()[occ].astype(float)
        else:  # leave one unit out
            jt = joint.ravel()[None].astype(float) - unit_tables.toarray()
            jw = np.ones(len(jt))
        jack = (_margins(jt.reshape(-1, k, k, k)), jw)
    out: dict[str, dict[str, Any]] = {}
    for stat in statistics:
        fa, fb = _statistic(stat, w, scored["a"]), _statistic(stat, w, scored["b"])
        est_a, est_b = float(fa(ta)[0]), float(fb(tb)[0])
        diff = est_a - est_b
        reps = np.asarray(fa(ra) - fb(rb), dtype=float)
        jv = jw = None
        if jack is not None:
            (ja, jb), jw = jack
            jv = np.asarray(fa(ja) - fb(jb), dtype=float)
        lo, hi = ci_from_replicates(diff, reps, confidence, method, jv, jw)
        # each side's own percentile CI from the same replicates (e.g. the average human
        # coder's agreement with the leave-one-out reference: the crowd's ceiling band)
        lo_a, hi_a = ci_from_replicates(est_a, np.asarray(fa(ra), dtype=float), confidence,
                                        "percentile")
        lo_b, hi_b = ci_from_replicates(est_b, np.asarray(fb(rb), dtype=float), confidence,
                                        "percentile")
        out[stat] = _difference_record(
            stat, (est_a, est_b, diff), (lo, hi, lo_a, hi_a, lo_b, hi_b), reps,
            n=len(ref), n_units=n_units, confidence=confidence, n_boot=int(n_boot),
            method=method, seed=seed, weights=weights)
    return out


def _difference_record(stat: str, estimates: tuple[float, float, float],
                       intervals: tuple[float, ...], reps: np.ndarray,
                       **facts: Any) -> dict[str, Any]:
    """One statistic's paired result (plain or design-weighted): both estimates, the
    difference, the three intervals, the replicates' SD and how many were undefined."""
    est_a, est_b, diff = estimates
    lo, hi, lo_a, hi_a, lo_b, hi_b = intervals
    finite = np.isfinite(reps)
    weights = facts.pop("weights")
    return to_builtin({
        "statistic": stat, "estimate_a": est_a, "estimate_b": est_b, "difference": diff,
        "ci_low": lo, "ci_high": hi, "ci_low_a": lo_a, "ci_high_a": hi_a,
        "ci_low_b": lo_b, "ci_high_b": hi_b,
        "se": float(np.std(reps[finite], ddof=1)) if finite.sum() > 1 else float("nan"),
        **{k: facts.pop(k) for k in ("n", "n_units", "confidence", "n_boot", "method",
                                     "seed")},
        "weights": (weights or "unweighted") if stat == "kappa" else None,
        "n_invalid_replicates": int((~finite).sum()), **facts})


def _weighted_paired(cell: np.ndarray, k: int, cats: list[Any], labels: list[Any],
                     ref: np.ndarray, a: np.ndarray, b: np.ndarray, units: Any,
                     weights: str | None, statistics: Sequence[str], confidence: float,
                     n_boot: int, seed: int | None, method: str, design_weights: Any,
                     cells: Any) -> dict[str, dict[str, Any]]:
    """:func:`paired_comparison` on design-weighted tables, bootstrap within design cells."""
    from textgauge.stats.weighted import BOOTSTRAP_WITHIN_CELLS

    if method != "percentile":
        raise ValueError("A design-weighted comparison has percentile intervals only "
                         f"(got method={method!r}).")
    n = len(cell)
    w_items = np.asarray(design_weights, dtype=float)
    if w_items.shape != (n,) or not np.isfinite(w_items).all() or (w_items <= 0).any():
        raise InputDataError(f"design_weights must be {n} positive finite weights (one per "
                             "compared pair).")
    dcell = (np.zeros(n, dtype=object) if cells is None else np.asarray(cells, dtype=object))
    if len(dcell) != n:
        raise InputDataError(f"cells must name one design cell per compared pair ({n}).")
    unit_index = (np.arange(n) if units is None
                  else pd.factorize(np.asarray(units, dtype=object))[0])
    if len(unit_index) != n:
        raise InputDataError("units must give one unit per compared pair.")
    n_units = int(unit_index.max()) + 1
    joint = np.bincount(cell, weights=w_items, minlength=k**3).reshape(k, k, k)
    reps_joint = _design_replicates(cell, w_items, unit_index, dcell, k, n_boot, seed)
    w = label_weight_matrix(labels, cats, weights)
    w = agreement_weights(k, None) if w is None else w
    idx = {c: i for i, c in enumerate(cats)}
    scored = {"a": np.array([idx[lab] for lab in scored_labels(ref, a, labels)], dtype=np.intp),
              "b": np.array([idx[lab] for lab in scored_labels(ref, b, labels)], dtype=np.intp)}
    ta, tb = _margins(joint[None])
    ra, rb = _margins(reps_joint)
    out: dict[str, dict[str, Any]] = {}
    for stat in statistics:
        fa, fb = _statistic(stat, w, scored["a"]), _statistic(stat, w, scored["b"])
        est_a, est_b = float(fa(ta)[0]), float(fb(tb)[0])
        diff = est_a - est_b
        rep_a, rep_b = np.asarray(fa(ra), dtype=float), np.asarray(fb(rb), dtype=float)
        reps = rep_a - rep_b
        lo, hi = ci_from_replicates(diff, reps, confidence, "percentile")
        lo_a, hi_a = ci_from_replicates(est_a, rep_a, confidence, "percentile")
        lo_b, hi_b = ci_from_replicates(est_b, rep_b, confidence, "percentile")
        out[stat] = _difference_record(
            stat, (est_a, est_b, diff), (lo, hi, lo_a, hi_a, lo_b, hi_b), reps,
            n=n, n_units=n_units, confidence=confidence, n_boot=n_boot,
            method="percentile", seed=seed, weights=weights,
            sum_weights=float(w_items[np.unique(unit_index, return_index=True)[1]].sum()),
            bootstrap=BOOTSTRAP_WITHIN_CELLS)
    return out


# --------------------------------------------------------------------------------------------
# Leave-one-coder-out references
# --------------------------------------------------------------------------------------------


def leave_one_out_reference(codes: pd.DataFrame, labels: Sequence[Any], *, unit: str = "id",
                            coder: str = "coder", label: str = "label",
                            seed: int | None = 0) -> tuple[pd.DataFrame, dict[str, int]]:
    """Each (unit, coder) code with the majority of the *other* coders' codes on its unit.

    Returns the pairs (columns unit, coder, label, reference, tied) and the counts: pairs and
    units in, pairs and units excluded because no other coder coded the unit, and pairs whose
    leave-one-out majority was tied (``tied``: broken by a seeded random draw among the tied
    labels, so neither coder nor model is favoured).
    """
    labels = list(labels)
    missing = [c for c in (unit, coder, label) if c not in codes.columns]
    if missing:
        raise InputDataError(f"the codes lack the column(s) {missing}; they have "
                             f"{list(codes.columns)}.")
    df = codes[[unit, coder, label]].dropna()
    dup = df.duplicated([unit, coder])
    if dup.any():
        rows = df.loc[dup, [unit, coder]].astype(str).agg("/".join, axis=1).head(10).tolist()
        raise InputDataError(f"some coders coded the same item more than once: {rows}; keep "
                             "one code per item and coder.")
    k = len(labels)
    codes_i = _encode(df[label].to_numpy(), labels, "codes")
    unit_i, unit_names = pd.factorize(df[unit].to_numpy())
    counts = np.zeros((len(unit_names), k), dtype=np.int64)
    np.add.at(counts, (unit_i, codes_i), 1)
    others = counts[unit_i] - np.eye(k, dtype=np.int64)[codes_i]
    has_other = others.sum(axis=1) > 0
    top = others.max(axis=1, keepdims=True)
    at_top = (others == top) & has_other[:, None]
    tied = at_top.sum(axis=1) > 1
    rng = np.random.default_rng(seed)
    pick = np.argmax(np.where(at_top, rng.random(at_top.shape) + 1.0, 0.0), axis=1)
    out = df.assign(reference=np.asarray(labels, dtype=object)[pick], tied=tied)
    out = out.loc[has_other].reset_index(drop=True)
    n_units_in = int(pd.Series(unit_i[has_other]).nunique())
    stats = {"n_pairs": int(has_other.sum()), "n_units": n_units_in,
             "n_pairs_excluded": int((~has_other).sum()),
             "n_units_excluded": int(len(unit_names) - n_units_in),
             "n_ties": int(tied[has_other].sum())}
    return out, stats


def human_model_comparison(
    codes: pd.DataFrame, answers: pd.Series, labels: Sequence[Any], *, mode: str = "pairwise",
    unit: str = "id", coder: str = "coder", label: str = "label",
    weights: str | None = None, confidence: float = 0.95, n_boot: int = 1000,
    seed: int | None = 0, method: str = "percentile", min_items: int = 10,
    design: Callable[[Sequence[str]], tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> dict[str, Any]:
    """A machine coder against the human coders, on equal terms.

    ``codes``: the human codes (long: unit, coder, label) of the gold items; ``answers``: the
    machine coder's label per unit (index = unit; :data:`INVALID_LABEL` for an invalid or
    missing answer). Units without an answer are left out (counted as
    ``n_units_without_answer``).

    ``mode="pairwise"``: for each human coder with at least ``min_items`` items, the
    difference (model - coder) against that coder's leave-one-coder-out reference, items
    resampled; and the pooled "average coder" comparison. ``mode="crowd"``: the pooled
    comparison only (every (item, coder) pair, items resampled with all their pairs). The
    headline ``verdict`` is the pooled comparison's kappa verdict (:func:`verdict_vs_humans`).

    ``design`` (gold items drawn with unequal inclusion probabilities): called with the
    unit ids of each comparison (unique, as strings), it returns their
    ``(design_weights, cells)`` (e.g. from :func:`textgauge.stats.design.gold_design`, so
    each comparison gets the nonresponse adjustment of its own items) or None (unweighted).
    Each pair then carries its unit's weight and the bootstrap resamples units within design
    cells (:func:`paired_comparison`'s ``design_weights``/``cells``). Default: unweighted.
    """
    if mode not in ("pairwise", "crowd"):
        raise ValueError(f"mode must be 'pairwise' or 'crowd', got {mode!r}.")
    answers = pd.Series(answers)
    answers.index = answers.index.astype(str)
    c = codes[[unit, coder, label]].dropna().copy()
    c[unit] = c[unit].astype(str)
    has_answer = c[unit].isin(answers.index)
    n_without = int(c.loc[~has_answer, unit].nunique())
    pairs, counts = leave_one_out_reference(c.loc[has_answer], labels, unit=unit, coder=coder,
                                            label=label, seed=seed)
    kw = {"weights": weights, "confidence": confidence, "n_boot": n_boot, "seed": seed,
          "method": method}
    model_answer = answers.reindex(pairs[unit]).to_numpy(dtype=object)
    comparisons = []
    skipped = []

    def add(name: str, rows: pd.DataFrame, answer: np.ndarray, units: Any) -> None:
        dw: dict[str, Any] = {}
        if design is not None:
            ids = pd.unique(rows[unit].astype(str))
            got = design(list(ids))
            if got is not None:
                wts, cls = got
                wmap = pd.Series(np.asarray(wts, dtype=float), index=ids)
                cmap = pd.Series(np.asarray(cls, dtype=object), index=ids)
                key = rows[unit].astype(str)
                dw = {"design_weights": wmap.reindex(key).to_numpy(),
                      "cells": cmap.reindex(key).to_numpy(dtype=object)}
        res = paired_comparison(rows["reference"], answer, rows[label], labels, units=units,
                                **kw, **dw)
        comparisons.append({
            "coder": name, "n": int(len(rows)), "n_items": int(rows[unit].nunique()),
            "n_ties": int(rows["tied"].sum()), **res,
            "verdict": verdict_vs_humans(res["kappa"]["ci_low"], res["kappa"]["ci_high"])})

    if mode == "pairwise":
        for h, rows in pairs.groupby(coder, sort=False):
            if len(rows) < min_items:
                skipped.append({"coder": str(h), "n": int(len(rows))})
                continue
            add(str(h), rows, model_answer[rows.index.to_numpy()], None)
    pooled = None
    if len(pairs) >= min_items:
        add(AVERAGE_CODER, pairs, model_answer, pairs[unit].to_numpy())
        pooled = comparisons[-1]
    return to_builtin({
        "mode": mode, "comparisons": comparisons, "skipped_coders": skipped,
        "reference": {**counts, "n_units_without_answer": n_without,
                      "ties": "broken by a seeded random draw among the tied labels"},
        "verdict": pooled["verdict"] if pooled else UNDETERMINED,
        "verdict_basis": ("kappa of the model minus kappa of the average human coder, each "
                          "against the leave-one-coder-out reference"),
    })
