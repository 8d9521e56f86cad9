"""Stage 5: a fresh stratified sample of the classified corpus, for re-validation.

After deployment the coder is validated again on texts it classified at scale. The sample is
stratified by predicted label x stratum, so rare classes and small groups get enough items,
and it records each item's inclusion probability, which the corrected prevalence
(:func:`textgauge.audits.prevalence.corrected_prevalence`) needs.

Once coded (:func:`revalidation_comparison`), the coder is scored on it with the design
weights (inverse inclusion probabilities: the weighted metrics estimate its agreement over the
classified corpus, :mod:`textgauge.stats.weighted`), beside the sample as drawn and the gold
set, and the difference with the gold set says whether the pipeline generalised.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import prediction_labels, require_columns
from textgauge.audits.prevalence import merge_metadata
from textgauge.errors import InputDataError

__all__ = ["REVALIDATION_SAMPLES", "design_weights", "revalidation_comparison",
           "revalidation_sample", "revalidation_table"]


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


# ------------------------------------------------------------------ stage 5, coded
#: the samples a stage-5 row describes: the fresh sample weighted by its design, as drawn
#: (unweighted), and the gold set (the same coder, the same metrics)
REVALIDATION_SAMPLES = ("weighted", "drawn", "gold")


def design_weights(scored: pd.DataFrame) -> pd.Series:
    """Inverse inclusion probabilities of the scored stage-5 items, within-cell adjusted.

    An item stands for ``cell_size / n`` corpus texts, ``n`` the items of its cell that
    received a reference label: items left without one (no code, an excluded tie) are
    counted in the output and their cell's other items carry their share (the usual
    nonresponse adjustment within design cells; equal to 1 / inclusion_prob when every
    drawn item is coded).
    """
    require_columns(scored, ["cell", "cell_size"], "re-validation sample")
    n_cell = scored.groupby("cell")["cell"].transform("size")
    return scored["cell_size"].astype(float) / n_cell


def _metrics_row(rev: pd.DataFrame, gold: pd.DataFrame, labels: Sequence[str],
                 weights: str | None, seeds: list[np.random.SeedSequence],
                 n_boot: int, confidence: float) -> dict:
    """The weighted, drawn and gold metrics of one group, and the differences with gold."""
    from textgauge.stats import independent_difference, weighted_metrics

    row: dict = {"n": int(len(rev)), "n_gold": int(len(gold)),
                 "sum_weights": float(rev["design_weight"].sum()) if len(rev) else 0.0,
                 "n_cells": int(rev["cell"].nunique()), "note": ""}
    kw = {"weights": weights, "n_boot": n_boot, "confidence": confidence}
    fits = {}
    if len(rev):
        fits["weighted"] = weighted_metrics(rev["reference"], rev["label"], labels,
                                            design_weights=rev["design_weight"],
                                            cells=rev["cell"], seed=seeds[0], **kw)
        fits["drawn"] = weighted_metrics(rev["reference"], rev["label"], labels,
                                         seed=seeds[1], **kw)
    if len(gold):
        # a model-assisted gold set carries its own design (design_weight, design_cell)
        gw = "design_weight" in gold.columns
        fits["gold"] = weighted_metrics(gold["reference"], gold["label"], labels,
                                        design_weights=gold["design_weight"] if gw else None,
                                        cells=gold["design_cell"] if gw else None,
                                        seed=seeds[2], **kw)
    for name in REVALIDATION_SAMPLES:
        row[name] = fits[name].summary() if name in fits else None
    if "weighted" in fits and "gold" in fits:
        stats_ = ["kappa", "macro_f1", "accuracy",
                  *(f"f1:{lab}" for lab in fits["weighted"].scored)]
        row["difference"] = {s: independent_difference(fits["weighted"], fits["gold"], s)
                             for s in stats_}
    else:
        row["difference"] = None
        row["note"] = ("no re-validation item" if "weighted" not in fits
                       else "no gold item") + " in this stratum: no comparison"
    return row


def revalidation_comparison(
    revalidation: pd.DataFrame, gold: pd.DataFrame, labels: Sequence[str],
    strata: Sequence[str] = (), *, weights: str | None = None, n_boot: int = 1000,
    seed: int = 0, confidence: float = 0.95,
) -> dict:
    """Stage 5: the coder on the re-validation sample (design-weighted and as drawn) against
    the same coder on the gold set, overall and per stratum.

    ``revalidation``: one row per stage-5 item with a reference label: ``reference``,
    ``label`` (the coder's answer; invalid = :data:`~textgauge.stats.INVALID_LABEL`, an
    error), ``cell`` and ``cell_size`` (the design) and the ``strata`` columns. ``gold``: the
    gold items with ``reference``, ``label`` and the strata (and, from a model-assisted gold
    sample, ``design_weight`` and ``design_cell``: its side is then weighted too). The weighted metrics estimate
    the coder's agreement over the classified corpus (:func:`design_weights`; the bootstrap
    resamples within design cells, :mod:`textgauge.stats.weighted`); the difference with the
    gold set (weighted minus gold) has a CI from independent replicates of the two samples.
    Every group gets its own seeds (children of ``seed``).

    Returns ``{"overall": row, "strata": [row, ...]}``; a row holds stratum_col, stratum,
    n, n_gold, sum_weights, n_cells, weighted / drawn / gold (metric summaries with CIs, or
    None without items), difference (statistic -> estimate, CI; None when one side has no
    item) and note.
    """
    from textgauge.stats import OVERALL

    require_columns(revalidation, ["reference", "label", "cell", "cell_size", *strata],
                    "re-validation sample")
    require_columns(gold, ["reference", "label", *strata], "gold set")
    rev = revalidation.assign(design_weight=design_weights(revalidation).to_numpy())
    groups: list[tuple[str, str, pd.DataFrame, pd.DataFrame]] = [(OVERALL, OVERALL, rev, gold)]
    for col in strata:
        values = sorted(set(rev[col].astype(str)) | set(gold[col].astype(str)))
        for v in values:
            groups.append((col, v, rev[rev[col].astype(str) == v],
                           gold[gold[col].astype(str) == v]))
    children = np.random.SeedSequence(seed).spawn(len(groups))
    rows = []
    for (col, value, r, g), child in zip(groups, children, strict=True):
        row = {"stratum_col": col, "stratum": value,
               **_metrics_row(r, g, labels, weights, child.spawn(3), n_boot, confidence)}
        rows.append(row)
    return {"overall": rows[0], "strata": rows[1:]}


def revalidation_table(result: dict) -> pd.DataFrame:
    """The tidy table of :func:`revalidation_comparison`: one row per stratum, sample
    (weighted, drawn, gold, difference) and statistic (kappa, macro_f1, accuracy, f1:label)."""
    out = []
    for row in [result["overall"], *result["strata"]]:
        base = {"stratum_col": row["stratum_col"], "stratum": row["stratum"]}
        for name in REVALIDATION_SAMPLES:
            s = row.get(name)
            if not s:
                continue
            n = row["n_gold"] if name == "gold" else row["n"]
            for stat in ("kappa", "macro_f1", "accuracy"):
                out.append({**base, "sample": name, "statistic": stat, "n": n,
                            **{k: s[stat][k] for k in ("estimate", "ci_low", "ci_high")},
                            "confidence": s["confidence"], "n_boot": s["n_boot"]})
            for pc in s["per_class"]:
                out.append({**base, "sample": name, "statistic": f"f1:{pc['label']}", "n": n,
                            "estimate": pc["f1"], "ci_low": pc["ci_low"],
                            "ci_high": pc["ci_high"], "confidence": s["confidence"],
                            "n_boot": s["n_boot"]})
        for stat, d in (row.get("difference") or {}).items():
            out.append({**base, "sample": "difference", "statistic": stat, "n": row["n"],
                        **{k: d[k] for k in ("estimate", "ci_low", "ci_high")},
                        "confidence": d["confidence"], "n_boot": d["n_boot"]})
    return pd.DataFrame(out, columns=["stratum_col", "stratum", "sample", "statistic", "n",
                                      "estimate", "ci_low", "ci_high", "confidence", "n_boot"])
