"""A gold sample designed around a first-pass coder's predictions (``gold.design: model_assisted``).

Why: a proportional gold sample of 300 holds a handful of texts of a 3% category, so its F1
and the kappa cannot be estimated with useful precision. Before any text is coded, the only
information about where the rare texts and the hard texts are is a first coder's
predictions. Stratifying by predicted label x confidence band puts enough texts of every
predicted label in the sample (its precision) and over-samples the low-confidence texts, where
a coder's errors, and so the other labels' missed texts (their recall), concentrate.

The price: the sample no longer looks like the corpus, so every estimate from it must carry
the design weights (inverse inclusion probabilities; :mod:`textgauge.stats.design`), or it is
biased. The design is recorded per item (``cell``, ``cell_size``, ``inclusion_prob``).

Allocation (documented in the methods):

1. every cell gets ``min(2, cell size)`` items (a cell of one item has no within-cell
   variance; two is the fewest the bootstrap can use);
2. every predicted label is topped up to ``min_per_label`` items (default
   ``size // (2 x predicted labels)``), capped by its size;
3. the rest goes to cells in proportion to ``N_c sqrt(e_c (1 - e_c))``, ``e_c`` the mean of
   ``1 - confidence`` in the cell: Neyman's allocation for estimating the error rate when the
   first pass's confidence is calibrated (Neyman 1934; Cochran 1977 ch. 5.5). Low-confidence
   cells get more items per text: the edge cases are over-sampled by construction.

Confidence bands are quantiles of the first pass's confidence *within* each predicted label
(band 0 the least confident), so each band of each label holds about the same number of texts.
Texts the first pass gave no valid answer for form a predicted label of their own,
``(no answer)``, with the highest error rate: they are sampled, never dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from textgauge.errors import ConfigError, InputDataError

__all__ = ["FIRST_PASS_COLUMNS", "NO_ANSWER", "answered", "confidence_bands", "first_pass_frame",
           "model_assisted_allocation", "sample_model_assisted", "water_fill"]

#: the columns a model-assisted gold sample records about the first pass, per item
FIRST_PASS_COLUMNS = ("first_pass_model", "first_pass_label", "first_pass_confidence",
                      "confidence_band")
#: the predicted label of a text the first pass gave no valid answer for
NO_ANSWER = "(no answer)"
#: every cell gets at least this many items (where it holds them)
MIN_PER_CELL = 2


def water_fill(room: np.ndarray, n: int, measure: np.ndarray) -> np.ndarray:
    """Integer allocation of ``n`` in proportion to ``measure``, capped by ``room``.

    Capped cells give their excess to the others (water-filling); units left by rounding go
    to the largest remainders, ties to the first cell (deterministic: the draw, not the
    allocation, is random). Cells with zero measure get items only when nothing else can.
    """
    room = np.asarray(room, dtype=np.int64)
    measure = np.asarray(measure, dtype=float)
    alloc = np.zeros(len(room), dtype=np.int64)
    remaining = int(min(n, room.sum()))
    while remaining > 0:
        open_ = alloc < room
        m = np.where(open_, measure, 0.0)
        if m.sum() <= 0:  # only zero-measure cells have room left: by size
            m = np.where(open_, (room - alloc).astype(float), 0.0)
        share = remaining * m / m.sum()
        add = np.minimum(np.floor(share).astype(np.int64), room - alloc)
        if add.sum() == 0:
            order = np.argsort(-(share - np.floor(share)) - open_ * 1e-9, kind="stable")
            for i in order:
                if remaining == 0:
                    break
                if alloc[i] < room[i] and m[i] > 0:
                    alloc[i] += 1
                    remaining -= 1
            continue
        alloc += add
        remaining -= int(add.sum())
    return alloc


def confidence_bands(labels: pd.Series, confidence: pd.Series, n_bands: int) -> pd.Series:
    """Band 0 (least confident) .. ``n_bands - 1`` per text: quantiles within its predicted
    label. A text without a confidence is in band 0 (unknown confidence is an edge case)."""
    if int(n_bands) < 1:
        raise ConfigError(f"gold.confidence_bands must be at least 1, got {n_bands}.")
    conf = pd.to_numeric(confidence, errors="coerce")
    pct = conf.groupby(labels.to_numpy()).rank(method="average", pct=True)
    band = np.ceil(pct.to_numpy() * int(n_bands)) - 1
    band = np.where(np.isfinite(band), np.clip(band, 0, int(n_bands) - 1), 0)
    return pd.Series(band.astype(int), index=labels.index, name="confidence_band")


def answered(first_pass: pd.DataFrame, labels: Sequence[str] | None = None) -> pd.Series:
    """Which first-pass rows hold a valid answer: a label (one of ``labels`` when given) and
    status ok (or no status column). The one rule of the sampler, the planner and the gold
    step's predicted-label counts; the others are :data:`NO_ANSWER`."""
    lab = first_pass["label"]
    ok = lab.notna() & (lab.astype(str) != "")
    if labels is not None:
        ok &= lab.isin(list(labels))
    if "status" in first_pass.columns:
        ok &= first_pass["status"].isna() | (first_pass["status"].astype(str) == "ok")
    return ok


def first_pass_frame(eligible: pd.DataFrame, first_pass: pd.DataFrame,
                     n_bands: int) -> pd.DataFrame:
    """The eligible texts with their predicted label, confidence, band and error measure
    (also what the design planner simulates with: the same bands as the gold step)."""
    for col in ("id", "label"):
        if col not in first_pass.columns:
            raise InputDataError(f"The first-pass predictions have no {col!r} column (columns: "
                                 f"{', '.join(map(str, first_pass.columns))}).")
    fp = first_pass.assign(id=first_pass["id"].astype(str))
    if fp["id"].duplicated().any():
        raise InputDataError("The first-pass predictions repeat ids; gather them first.")
    ok = answered(fp)
    fp["predicted"] = np.where(ok, fp["label"].astype(str), NO_ANSWER)
    conf = (pd.to_numeric(fp["confidence"], errors="coerce") if "confidence" in fp.columns
            else pd.Series(np.nan, index=fp.index))
    fp["conf"] = conf.where(ok)
    frame = eligible.merge(fp[["id", "predicted", "conf"]], on="id", how="left")
    frame["predicted"] = frame["predicted"].fillna(NO_ANSWER)
    frame["band"] = confidence_bands(frame["predicted"], frame["conf"], n_bands)
    # the error measure of a text: 1 - confidence; unknown (no answer) counts as 0.5, the
    # largest binomial variance
    frame["error"] = (1 - frame["conf"]).clip(0, 1).fillna(0.5)
    return frame


def model_assisted_allocation(frame: pd.DataFrame, size: int,
                              min_per_label: int | None = None) -> pd.DataFrame:
    """One row per cell: cell, predicted, band, stratum, cell_size, mean_error, cell_n.

    ``frame``: one row per eligible text with ``predicted``, ``band``, ``stratum``,
    ``error`` (1 - confidence) and ``cell``. The three steps of the module docstring.
    """
    design = (frame.groupby("cell", sort=True)
              .agg(predicted=("predicted", "first"), band=("band", "first"),
                   stratum=("stratum", "first"), cell_size=("id", "size"),
                   mean_error=("error", "mean"))
              .reset_index())
    sizes = design["cell_size"].to_numpy(dtype=np.int64)
    total = int(sizes.sum())
    if size > total:
        raise InputDataError(f"gold.size is {size}, but only {total} eligible texts exist "
                             "(texts the first pass was trained or validated on and labelled "
                             "training texts are excluded). Lower gold.size.")
    base = np.minimum(sizes, MIN_PER_CELL)
    if base.sum() > size:
        raise ConfigError(f"gold.design model_assisted makes {len(sizes)} cells (predicted "
                          f"labels x {design['band'].nunique()} confidence bands x strata) "
                          f"and every cell needs {MIN_PER_CELL} items, {int(base.sum())} in "
                          f"all, more than gold.size ({size}). Lower gold.confidence_bands, "
                          "use fewer gold.strata or raise gold.size.")
    alloc = base.copy()
    n_labels = max(int((design["predicted"].unique() != NO_ANSWER).sum()), 1)
    m = size // (2 * n_labels) if min_per_label is None else int(min_per_label)
    if m < 0:
        raise ConfigError(f"gold.min_per_label must be >= 0, got {m}.")
    e = design["mean_error"].to_numpy(dtype=float)
    measure = sizes * np.sqrt(np.clip(e * (1 - e), 0, None))
    for lab in design["predicted"].unique():
        idx = np.flatnonzero(design["predicted"].to_numpy() == lab)
        need = min(m, int(sizes[idx].sum())) - int(alloc[idx].sum())
        if need > 0:
            alloc[idx] += water_fill(sizes[idx] - alloc[idx], need, measure[idx])
    if alloc.sum() > size:
        raise ConfigError(f"gold.min_per_label ({m}) x {n_labels} predicted labels needs "
                          f"{int(alloc.sum())} items, more than gold.size ({size}); lower "
                          "gold.min_per_label or raise gold.size.")
    alloc += water_fill(sizes - alloc, size - int(alloc.sum()), measure)
    design["cell_n"] = alloc
    design["inclusion_prob"] = design["cell_n"] / design["cell_size"]
    design.attrs["min_per_label"] = int(m)  # as applied (the default resolved)
    return design


def sample_model_assisted(eligible: pd.DataFrame, first_pass: pd.DataFrame, size: int,
                          strata: Sequence[str], seed: int, *, n_bands: int = 3,
                          min_per_label: int | None = None,
                          model: str = "first_pass") -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model-assisted gold sample and its allocation table (one row per cell).

    ``eligible``: the corpus rows that may be drawn (id, text, strata columns ...);
    ``first_pass``: the first pass's predictions (id, label, confidence, status). Seeded: the
    same inputs give the same sample, sorted by id, with the corpus columns, ``stratum``,
    ``design``, ``cell``, ``cell_size``, ``inclusion_prob`` and :data:`FIRST_PASS_COLUMNS`.
    """
    eligible = eligible.assign(id=eligible["id"].astype(str))
    eligible = eligible.sort_values("id", kind="stable").reset_index(drop=True)
    strata = list(strata)
    eligible["stratum"] = (eligible[strata].astype(str).agg(" | ".join, axis=1) if strata
                           else "all")
    frame = first_pass_frame(eligible, first_pass, n_bands)
    frame["cell"] = (frame["predicted"] + " | band " + frame["band"].astype(str)
                     + (" | " + frame["stratum"] if strata else ""))
    design = model_assisted_allocation(frame, size, min_per_label)
    rng = np.random.default_rng(seed)
    parts = []
    for row in design.itertuples(index=False):
        if row.cell_n == 0:
            continue
        members = frame.index[frame["cell"] == row.cell].to_numpy()
        parts.append(np.sort(rng.choice(members, size=int(row.cell_n), replace=False)))
    picked = frame.loc[np.sort(np.concatenate(parts))].copy()
    picked = picked.merge(design[["cell", "cell_size", "inclusion_prob"]], on="cell")
    picked["design"] = "model_assisted"
    picked["first_pass_model"] = model
    picked["first_pass_label"] = picked["predicted"]
    picked["first_pass_confidence"] = picked["conf"]
    picked["confidence_band"] = picked["band"].astype(int)
    other = [c for c in eligible.columns if c not in ("id", "text", "stratum")]
    cols = ["id", "text", *other, "stratum", "design", "cell", "cell_size", "inclusion_prob",
            *FIRST_PASS_COLUMNS]
    sample = picked[cols].sort_values("id", kind="stable").reset_index(drop=True)
    return sample, design
