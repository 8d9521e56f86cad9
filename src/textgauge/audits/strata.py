"""Distribution shift / group bias: is the coder valid in every stratum of the gold set?

The course's mitigation for distribution shift is to validate on each stratum separately. The
numbers are the one per-stratum table of :func:`textgauge.stats.per_stratum` (kappa and
macro-F1 with CIs, coverage, the flag): the evaluation writes it to
``validation/{model}/per_stratum.csv`` and the model audit reads that file, so the audit, the
evaluation and the report show the same numbers. Flag rule (``flagged``): the stratum's whole
kappa CI lies below ``kappa_threshold`` (:func:`textgauge.stats.flag_stratum`).

The flag says whether a stratum *fails*; :func:`stratum_shift` says whether it *differs*:
each stratum's kappa and macro-F1 minus the rest of gold's, with a CI (audit.json ``shift``).
A coder that fails everywhere has every stratum flagged and, rightly, no shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import align_with_gold, require_columns
from textgauge.audits.weighting import AuditDesign
from textgauge.stats import (
    INVALID_LABEL,
    OVERALL,
    STRATUM_COLUMNS,
    independent_difference,
    per_stratum,
    weighted_metrics,
)

__all__ = ["SHIFT_COLUMNS", "flagged_strata", "stratum_performance", "stratum_shift"]


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
    weights: str | None = None,
) -> pd.DataFrame:
    """The per-stratum table of one coder on the gold set (see :func:`textgauge.stats.per_stratum`;
    ``weights`` for the weighted kappa of an ordinal codebook).

    ``gold`` has id, the reference label and the strata columns; ``predictions`` id, label,
    status. Invalid/failed answers and gold items without an answer are errors.
    """
    al = align_with_gold(gold, predictions, reference_col)
    require_columns(al, list(strata), "gold")
    return per_stratum(al, list(strata), list(labels), kappa_threshold=kappa_threshold,
                       bootstrap=bootstrap, confidence=confidence, seed=seed,
                       weights=weights)


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


#: the columns of :func:`stratum_shift`, in order (audit.json key ``shift``)
SHIFT_COLUMNS = (
    "stratum_col", "stratum", "n", "n_rest", "kappa", "kappa_rest", "kappa_diff",
    "kappa_diff_ci_low", "kappa_diff_ci_high", "macro_f1", "macro_f1_rest", "macro_f1_diff",
    "macro_f1_diff_ci_low", "macro_f1_diff_ci_high", "shifted", "note", "weights",
    "confidence", "n_boot",
)


def stratum_shift(
    scored: pd.DataFrame,
    strata: Sequence[str],
    labels: Sequence[str],
    *,
    weights: str | None = None,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    design: AuditDesign | None = None,
) -> pd.DataFrame:
    """Per-stratum shift: each stratum against the rest of the gold set.

    Why apart from the flag: a coder below the kappa threshold everywhere has every stratum
    flagged, which says nothing about whether one source differs from the others. The shift
    is the coder's kappa (and macro-F1) on a stratum minus on all other gold items, with a
    percentile CI from independent bootstrap replicates of the two parts
    (:func:`textgauge.stats.independent_difference`; each part resampled on its own, seeds
    spawned from ``seed``). ``shifted`` is true when the kappa difference's CI excludes 0.

    ``scored``: one row per gold item with ``reference``, ``label`` (the coder's answer,
    invalid = :data:`~textgauge.stats.INVALID_LABEL`, an error) and the ``strata`` columns
    (a missing value is its own stratum, as in the per-stratum table). ``weights``: the
    kappa's agreement weights (ordinal codebooks). Returns :data:`SHIFT_COLUMNS`, one row per
    stratum value; a stratum that is the whole set, or a part without a defined kappa, gets
    NaN and a ``note``.

    With a weighted gold ``design`` (model-assisted; ``scored`` then needs ``id``) each part
    is design-weighted and resampled within its design cells: corpus kappas of the stratum
    and of the rest.
    """
    require_columns(scored, ["reference", "label", *strata], "gold")
    weighted = design is not None and design.weighted
    d = scored.assign(label=scored["label"].astype(object).where(scored["label"].notna(),
                                                                 INVALID_LABEL))
    keys = [(col, value) for col in strata
            for value in d[col].astype(object).fillna("nan").astype(str).drop_duplicates()
            .sort_values()]
    children = np.random.SeedSequence(seed).spawn(max(len(keys), 1))
    nan = float("nan")
    rows = []
    for (col, value), child in zip(keys, children, strict=False):
        inside = (d[col].astype(object).fillna("nan").astype(str) == value).to_numpy()
        part, rest = d[inside], d[~inside]
        row: dict[str, Any] = {c: nan for c in SHIFT_COLUMNS}
        row.update(stratum_col=col, stratum=value, n=int(len(part)), n_rest=int(len(rest)),
                   shifted=False, note="", weights=weights or "unweighted",
                   confidence=float(confidence), n_boot=int(bootstrap))
        if len(rest) == 0:
            row["note"] = "the stratum is the whole gold set: nothing to compare with"
            rows.append(row)
            continue
        s_seed, r_seed = child.spawn(2)
        kw = {"weights": weights, "n_boot": int(bootstrap), "confidence": confidence}
        a = weighted_metrics(part["reference"], part["label"], labels, seed=s_seed, **kw,
                             **(_design_kw(design, part) if weighted else {}))
        b = weighted_metrics(rest["reference"], rest["label"], labels, seed=r_seed, **kw,
                             **(_design_kw(design, rest) if weighted else {}))
        kappa_note = ""
        for stat in ("kappa", "macro_f1"):
            diff = independent_difference(a, b, stat)
            kappa_note = diff.get("ci_note", "") if stat == "kappa" else kappa_note
            row.update({stat: diff["first"], f"{stat}_rest": diff["second"],
                        f"{stat}_diff": diff["estimate"], f"{stat}_diff_ci_low": diff["ci_low"],
                        f"{stat}_diff_ci_high": diff["ci_high"]})
        # an undefined statistic arrives as None (JSON-ready) or NaN
        est, lo, hi = (pd.to_numeric(pd.Series([row[k]], dtype=object), errors="coerce")
                       .astype(float).iloc[0]
                       for k in ("kappa_diff", "kappa_diff_ci_low", "kappa_diff_ci_high"))
        if not np.isfinite(est):
            row["note"] = "kappa undefined in the stratum or the rest (one category only)"
        elif not (np.isfinite(lo) and np.isfinite(hi)):
            row["note"] = f"kappa {kappa_note}" if kappa_note else "no CI"
        else:
            row["shifted"] = bool(lo > 0 or hi < 0)
        rows.append(row)
    return pd.DataFrame(rows, columns=list(SHIFT_COLUMNS))


def _design_kw(design: AuditDesign, part: pd.DataFrame) -> dict[str, Any]:
    """weighted_metrics' design arguments for the gold items of ``part`` (by id)."""
    return {"design_weights": design.weights_for(part["id"]),
            "cells": design.cells_for(part["id"])}
