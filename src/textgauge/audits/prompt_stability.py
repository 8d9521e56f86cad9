"""Prompt stability: reliability of a coder across paraphrased prompts and repeated runs.

Krippendorff's alpha (nominal; Krippendorff 2019, *Content Analysis*, ch. 12), from
:func:`textgauge.stats.krippendorff_alpha`, the one alpha path (bootstrap over units).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import prediction_labels, require_columns, require_unique
from textgauge.errors import InputDataError
from textgauge.stats import krippendorff_alpha

__all__ = ["PromptStability", "prompt_stability"]


def _alpha(table: pd.DataFrame, bootstrap: int, confidence: float, seed: int,
           level: str = "nominal", categories: Sequence[str] | None = None) -> dict[str, Any]:
    """Alpha (nominal, or ordinal over ``categories`` in scale order) of a units x coders
    label table; NaN when undefined (fewer than two categories or no unit coded twice), with
    the interval settings recorded."""
    try:
        return krippendorff_alpha(table.to_numpy(dtype=object).T, level=level,
                                  n_boot=int(bootstrap), seed=seed, confidence=confidence,
                                  categories=categories).to_dict()
    except InputDataError:
        nan = float("nan")
        return {"estimate": nan, "ci_low": nan, "ci_high": nan, "se": nan, "level": level,
                "n_units": 0, "confidence": float(confidence), "n_boot": int(bootstrap)}


@dataclass
class PromptStability:
    """Result of :func:`prompt_stability`."""

    alpha_all: dict[str, Any]
    alpha_variants: dict[str, Any]
    per_variant: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def prompt_stability(
    predictions: pd.DataFrame,
    variant_col: str = "prompt_variant",
    run_col: str | None = "run",
    gold: pd.DataFrame | None = None,
    reference_col: str = "reference",
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    level: str = "nominal",
    categories: Sequence[str] | None = None,
) -> PromptStability:
    """Reliability of a coder across paraphrased prompt variants and repeated runs.

    ``predictions`` is long: ``id``, ``label``, the variant in ``variant_col`` (e.g. the
    prompt hash) and optionally the repetition in ``run_col``. Krippendorff's alpha, nominal:

    * ``alpha_all``: every (variant, run) is a coder;
    * ``alpha_variants``: coders are the variants, each represented by its modal label over
      runs (ties: alphabetically first);
    * ``per_variant``: per variant the within-variant alpha across runs (run-to-run noise),
      the share of items where it differs from the modal label over all variants, and the
      accuracy against ``gold`` when given.

    Invalid/failed answers are missing values (not a category): alpha is a reliability of
    the answers given, and it handles missing values by design. ``alpha_all`` and
    ``alpha_variants`` are :meth:`textgauge.stats.AlphaResult.to_dict` dicts (estimate, CI,
    confidence, n_boot) or NaN estimates when alpha is undefined. ``level="ordinal"`` with
    ``categories`` (the scale, lowest first) gives the ordinal alpha of an ordinal codebook.
    """
    require_columns(predictions, ["id", "label", variant_col], "prompt-variant predictions")
    df = predictions.copy()
    df["id"] = df["id"].astype(str)
    df["label"] = prediction_labels(df, invalid="drop")
    df[variant_col] = df[variant_col].astype(str)
    notes: list[str] = []
    use_runs = run_col is not None and run_col in df.columns
    keys = ["id", variant_col] + ([run_col] if use_runs else [])
    require_unique(df, keys, "prompt-variant predictions")
    coder = (df[variant_col] + "#" + df[run_col].astype(str)) if use_runs else df[variant_col]
    all_table = df.assign(_coder=coder).pivot(index="id", columns="_coder", values="label")
    lv = {"level": level, "categories": categories}
    a_all = _alpha(all_table, bootstrap, confidence, seed, **lv)

    def modal(s: pd.Series) -> Any:
        s = s.dropna()
        if s.empty:
            return np.nan
        vc = s.value_counts()
        return sorted(vc[vc == vc.max()].index)[0]

    var_table = df.groupby(["id", variant_col])["label"].agg(modal).unstack(variant_col)
    a_var = _alpha(var_table, bootstrap, confidence, seed, **lv)
    overall_modal = var_table.apply(modal, axis=1)
    ref = None
    if gold is not None:
        require_columns(gold, ["id", reference_col], "gold")
        ref = dict(zip(gold["id"].astype(str), gold[reference_col].astype(str), strict=True))
    rows = []
    for v, part in df.groupby(variant_col):
        within = (_alpha(part.pivot(index="id", columns=run_col, values="label"), 0,
                         confidence, seed, **lv)["estimate"]
            if use_runs and part[run_col].nunique() > 1 else np.nan)
        col = var_table[v]
        have = col.notna() & overall_modal.notna()
        row = {"variant": v, "n_items": int(col.notna().sum()),
               "n_runs": int(part[run_col].nunique()) if use_runs else 1,
               "alpha_within_runs": within,
               "deviation_from_modal": float((col[have] != overall_modal[have]).mean())}
        if ref is not None:
            r = col.index.map(ref)
            ok = r.notna()
            row["accuracy"] = float((col[ok] == r[ok]).mean()) if ok.any() else np.nan
        rows.append(row)
    if var_table.shape[1] < 2:
        notes.append("fewer than two prompt variants: alpha_variants is undefined")
    return PromptStability(alpha_all=a_all, alpha_variants=a_var,
                           per_variant=pd.DataFrame(rows), notes=notes)


def weighted_change_rates(wide: pd.DataFrame, weights: np.ndarray | None,
                          variants: list[str], base: str = "original") -> list[float]:
    """Share of the gold items whose answer under each of ``variants`` differs from ``base``
    (``wide``: one row per item, one column per prompt variant), weighted by the gold
    design's ``weights`` (aligned with ``wide``'s rows; None: the plain share, as drawn).
    Under a model-assisted gold sample the low-confidence texts, which change more, are
    over-sampled, so only the weighted share describes the corpus."""
    out = []
    for v in variants:
        changed = (wide[v].fillna("") != wide[base].fillna("")).to_numpy(dtype=float)
        if weights is None:
            out.append(float(changed.mean()))
        else:
            w = np.asarray(weights, dtype=float)
            out.append(float((w * changed).sum() / w.sum()))
    return out
