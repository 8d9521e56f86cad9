"""Stage 5: a fresh stratified sample of the classified corpus, for re-validation.

After deployment the coder is validated again on texts it classified at scale. The sample is
stratified by predicted label x stratum, so rare classes and small groups get enough items,
and it records each item's inclusion probability, which the corrected prevalence
(:func:`textgauge.audits.prevalence.corrected_prevalence`) needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import prediction_labels, require_columns
from textgauge.audits.prevalence import merge_metadata
from textgauge.errors import InputDataError

__all__ = ["revalidation_sample"]


def _allocate(sizes: np.ndarray, n: int, weights: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """Integer allocation proportional to ``weights``, capped by ``sizes`` (water-filling)."""
    alloc = np.zeros(len(sizes), dtype=np.int64)
    remaining = int(min(n, sizes.sum()))
    while remaining > 0:
        open_ = alloc < sizes
        share = np.where(open_, weights, 0.0)
        share = remaining * share / share.sum()
        add = np.minimum(np.floor(share).astype(np.int64), sizes - alloc)
        if add.sum() == 0:  # hand out single units: largest remainder, ties at random
            frac = np.where(open_, share - np.floor(share), -1.0)
            order = np.lexsort((rng.random(len(sizes)), -frac))
            for i in order[:remaining]:
                if alloc[i] < sizes[i]:
                    alloc[i] += 1
            remaining = int(min(n, sizes.sum())) - int(alloc.sum())
            continue
        alloc += add
        remaining -= int(add.sum())
    return alloc


def revalidation_sample(
    predictions: pd.DataFrame,
    n: int = 300,
    strata: Sequence[str] = (),
    metadata: pd.DataFrame | None = None,
    exclude_ids: Iterable[str] = (),
    allocation: str = "equal",
    seed: int = 0,
) -> pd.DataFrame:
    """Stage-5 sample: a fresh stratified sample of the classified corpus for re-validation.

    Cells are predicted label x every strata column (invalid answers form their own cell).
    ``exclude_ids`` (the earlier gold set, training items) are never drawn and are left out
    of the sampling frame. ``allocation='equal'`` gives every cell the same share (capped by
    its size, the rest spread over larger cells) so rare classes and small subgroups get
    enough items; ``'proportional'`` follows cell sizes. Items are drawn without replacement
    with a seeded generator. Columns: id, label (predicted), strata..., cell, cell_size,
    cell_n, inclusion_prob (= cell_n / cell_size, for :func:`corrected_prevalence`), weight
    (= 1 / inclusion_prob). ``attrs['design']`` holds the per-cell allocation.
    """
    require_columns(predictions, ["id", "label"], "predictions")
    df = merge_metadata(predictions, metadata, strata)
    if df["id"].duplicated().any():
        raise InputDataError("The predictions repeat ids; keep one row per item.")
    df["label"] = prediction_labels(df, invalid="as_error").astype(str)
    excl = {str(i) for i in exclude_ids}
    frame = df[~df["id"].isin(excl)].sort_values("id").reset_index(drop=True)
    keys = ["label", *strata]
    frame["cell"] = frame[keys].astype(str).agg(" | ".join, axis=1)
    design = frame.groupby("cell", sort=True).size().rename("cell_size").reset_index()
    sizes = design["cell_size"].to_numpy()
    if allocation == "equal":
        w = np.ones(len(sizes))
    elif allocation == "proportional":
        w = sizes.astype(float)
    else:
        raise ValueError("allocation must be 'equal' or 'proportional'")
    rng = np.random.default_rng(seed)
    design["cell_n"] = _allocate(sizes, n, w, rng)
    design["inclusion_prob"] = design["cell_n"] / design["cell_size"]
    picked = []
    for cell, k in zip(design["cell"], design["cell_n"], strict=True):
        if k == 0:
            continue
        idx = frame.index[frame["cell"] == cell].to_numpy()
        picked.append(rng.choice(idx, size=int(k), replace=False))
    chosen = np.sort(np.concatenate(picked)) if picked else np.array([], dtype=int)
    out = frame.loc[chosen, ["id", *keys, "cell"]].merge(design, on="cell", how="left")
    out["weight"] = 1 / out["inclusion_prob"]
    out = out.sort_values(["cell", "id"]).reset_index(drop=True)
    out.attrs["design"] = design
    out.attrs["seed"] = seed
    return out
