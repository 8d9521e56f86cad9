"""Positional bias: does the coder's answer depend on where a label is listed?

The same items coded under different label orders (fixed / reversed / rotated): flip rates
and Cohen's kappa between orders, and a chi-square goodness-of-fit test of the *position* of
the chosen label against the positions expected under position-neutrality (Zheng et al. 2024,
"Large language models are not robust multiple choice selectors", ICLR; Wang et al. 2023,
"Large language models are not fair evaluators"). Statistics: :mod:`textgauge.stats`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import (
    INVALID_LABEL,
    prediction_labels,
    require_columns,
    require_unique,
)
from textgauge.audits.weighting import AuditDesign
from textgauge.errors import InputDataError, format_rows
from textgauge.stats import goodness_of_fit, kappa_summary, wilson_ci

__all__ = ["PositionalAudit", "parse_order", "positional_audit"]


def parse_order(value: Any) -> list[str]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            return [str(v) for v in json.loads(s)]
        sep = "|" if "|" in s else ","
        return [v.strip() for v in s.split(sep)]
    raise InputDataError(f"Cannot read the label order {value!r}: give a list or 'a|b|c'.")


@dataclass
class PositionalAudit:
    """Result of :func:`positional_audit`.

    ``selection`` has one row per position (1 = first listed): observed count and rate of
    chosen labels there, and the rate expected under position-neutrality. ``effect_w`` is
    Cohen's (1988) w = sqrt(sum((p_obs - p_exp)^2 / p_exp)); 0.1 small, 0.3 medium, 0.5 large.
    """

    pairs: pd.DataFrame
    selection: pd.DataFrame
    any_flip_rate: float
    chi2: float
    dof: int
    p_value: float
    effect_w: float
    first_position_excess: float
    expected_basis: str
    flagged: bool
    alpha: float
    min_effect_w: float
    confidence: float = 0.95
    notes: list[str] = field(default_factory=list)


def positional_audit(
    predictions: pd.DataFrame,
    order_col: str = "order",
    label_order_col: str = "label_order",
    position_col: str = "position",
    reference: pd.DataFrame | Mapping[str, str] | None = None,
    reference_col: str = "reference",
    expected: str = "auto",
    alpha: float = 0.01,
    min_effect_w: float = 0.3,
    labels: Sequence[str] | None = None,
    bootstrap: int = 0,
    confidence: float = 0.95,
    seed: int = 0,
    weights: str | None = None,
) -> PositionalAudit:
    """Audit positional bias: does the coder's answer depend on where a label is listed?

    ``predictions`` is long: one row per (``id``, order condition) with the chosen ``label``,
    the condition name in ``order_col`` (e.g. fixed / reversed / rotated_1 ...) and either the
    label order shown (``label_order_col``: a list, JSON list or ``'a|b|c'``) or the 1-based
    position of the chosen label (``position_col``).

    * Flip rate and Cohen's kappa between every pair of conditions (same items).
    * Selection rate by position, tested with a chi-square goodness-of-fit test against the
      rate expected under position-neutrality (Zheng et al. 2024). The expectation accounts
      for the label distribution: ``expected='gold'`` places each item's gold label in the
      order shown on that row; ``'consensus'`` places the item's modal label across conditions
      (a neutral coder picks the same label whatever the order); ``'uniform'`` (only valid
      for balanced rotations) spreads 1/k. ``'auto'`` picks gold, else consensus, else uniform.
    * Flagged when p < ``alpha`` (default 0.01) **and** Cohen's w >= ``min_effect_w``
      (default 0.3: a large sample makes trivial deviations significant).

    Invalid/failed answers are left out of the position test (they chose no position) and
    count as flips; in the kappa between orders they are errors (two invalid answers do not
    agree). ``labels`` is the codebook (default: the labels chosen); ``bootstrap`` and
    ``confidence`` set the kappa intervals (analytic CI; bootstrap CI beside when > 0).
    ``weights`` ("linear"/"quadratic", ordinal codebooks: ``labels`` in scale order) weights
    the kappa between orders as every other kappa of that codebook; the flip rate and the
    position test do not depend on it.
    """
    require_columns(predictions, ["id", "label", order_col], "positional predictions")
    df = predictions.copy()
    df["id"] = df["id"].astype(str)
    df["label"] = prediction_labels(df, invalid="drop")
    require_unique(df, ["id", order_col], "positional predictions")
    notes: list[str] = []

    # ---- flips between conditions
    wide = df.pivot(index="id", columns=order_col, values="label")
    conds = list(wide.columns)
    if len(conds) < 2:
        notes.append("only one order condition: no flip rates")
    codebook = list(labels) if labels is not None else sorted(df["label"].dropna().unique())
    rows = []
    for c1, c2 in combinations(conds, 2):
        both = wide[[c1, c2]].dropna(how="all")
        x = both[c1].fillna(INVALID_LABEL).astype(str)
        y = both[c2].fillna(INVALID_LABEL).astype(str)
        kap = (kappa_summary(x, y, codebook, confidence=confidence, bootstrap=bootstrap,
                             seed=seed, weights=weights) if len(x) >= 2 else {})
        rows.append({"order_a": c1, "order_b": c2, "n": len(x),
                     "flip_rate": float((x != y).mean()) if len(x) else np.nan,
                     "kappa": kap.get("kappa", np.nan),
                     "kappa_ci_low": kap.get("ci_low", np.nan),
                     "kappa_ci_high": kap.get("ci_high", np.nan),
                     "confidence": float(confidence), "n_boot": kap.get("n_boot", 0)})
    pairs = pd.DataFrame(rows, columns=["order_a", "order_b", "n", "flip_rate", "kappa",
                                        "kappa_ci_low", "kappa_ci_high", "confidence",
                                        "n_boot"])
    filled = wide.fillna(INVALID_LABEL)
    any_flip = float((filled.nunique(axis=1) > 1).mean()) if len(conds) > 1 else np.nan

    # ---- positions of chosen labels
    ok = df[df["label"].notna()].copy()
    has_order = label_order_col in ok.columns
    if has_order:
        orders = ok[label_order_col].map(parse_order)
        k = int(orders.map(len).max())
        chosen_pos = np.array([o.index(lab) if lab in o else -1
                               for o, lab in zip(orders, ok["label"], strict=True)])
        if (chosen_pos < 0).any():
            bad = ok.loc[chosen_pos < 0, "id"].tolist()
            raise InputDataError(
                f"Items {format_rows(bad)} have a chosen label that is not in the label order "
                f"shown ({label_order_col}); check the order column.")
    elif position_col in ok.columns:
        chosen_pos = ok[position_col].astype(int).to_numpy() - 1
        k = int(chosen_pos.max()) + 1
    else:
        raise InputDataError(
            f"The positional predictions need either a '{label_order_col}' column (the label "
            f"order shown) or a '{position_col}' column (1-based position of the chosen label).")
    observed = np.bincount(chosen_pos, minlength=k).astype(float)

    ref_map: dict[str, str] | None = None
    if reference is not None:
        if isinstance(reference, pd.DataFrame):
            require_columns(reference, ["id", reference_col], "gold")
            ref_map = dict(zip(reference["id"].astype(str), reference[reference_col].astype(str),
                               strict=True))
        else:
            ref_map = {str(a): str(b) for a, b in reference.items()}
    basis = expected
    if basis == "auto":
        basis = "gold" if (ref_map and has_order) else ("consensus" if has_order else "uniform")
    if basis in ("gold", "consensus") and not has_order:
        raise InputDataError(f"expected='{basis}' needs the '{label_order_col}' column.")
    if basis == "gold":
        if not ref_map:
            raise InputDataError("expected='gold' needs the reference labels.")
        target = ok["id"].map(ref_map)
        if target.isna().any():
            notes.append(f"{int(target.isna().sum())} rows without gold left out of expectation")
    elif basis == "consensus":
        modal = (ok.groupby("id")["label"]
                 .agg(lambda s: sorted(s.value_counts().pipe(lambda v: v[v == v.max()]).index)[0]))
        target = ok["id"].map(modal)
    elif basis == "uniform":
        target = None
    else:
        raise ValueError("expected must be 'auto', 'gold', 'consensus' or 'uniform'")
    if target is None:
        exp_counts = np.full(k, 1.0)
    else:
        exp_pos = np.array([o.index(t) if isinstance(t, str) and t in o else -1
                            for o, t in zip(orders, target, strict=True)])
        exp_counts = np.bincount(exp_pos[exp_pos >= 0], minlength=k).astype(float)
    exp_prop = (exp_counts + 0.5) / (exp_counts.sum() + 0.5 * k)  # no empty expected cell
    n_obs = observed.sum()
    gof = goodness_of_fit(observed, exp_prop)
    obs_prop = observed / n_obs
    selection = pd.DataFrame({
        "position": np.arange(1, k + 1), "observed_n": observed.astype(int),
        "observed_rate": obs_prop, "expected_rate": exp_prop,
        "excess": obs_prop - exp_prop,
    })
    lo, hi = wilson_ci(observed, n_obs, confidence)
    selection["observed_ci_low"], selection["observed_ci_high"] = lo, hi
    p, w = gof["p_value"], gof["effect_w"]
    return PositionalAudit(
        pairs=pairs, selection=selection, any_flip_rate=any_flip, chi2=gof["chi2"],
        dof=k - 1, p_value=p, effect_w=w, first_position_excess=float(obs_prop[0] - exp_prop[0]),
        expected_basis=basis, flagged=bool(p < alpha and w >= min_effect_w), alpha=alpha,
        min_effect_w=min_effect_w, confidence=confidence, notes=notes,
    )


def weighted_flip_rates(predictions: pd.DataFrame, design: AuditDesign,
                        order_col: str = "order") -> dict[str, Any]:
    """Flip rates of :func:`positional_audit`, design-weighted over the gold items (a
    model-assisted gold sample over-samples low-confidence texts, which flip more): the
    share of the corpus whose answer changes between two orders, and under any order.

    Only the gold items ``design`` covers count; invalid answers count as flips, as in the
    unweighted audit. The position test stays a test on the items as drawn (it asks whether
    position moves answers, not how often in the corpus)."""
    df = predictions.assign(id=predictions["id"].astype(str))
    df["label"] = prediction_labels(df, invalid="drop")
    wide = df.pivot(index="id", columns=order_col, values="label")
    wide = wide.loc[wide.index.isin(design.table.index)]
    conds = list(wide.columns)
    pairs = []
    for c1, c2 in combinations(conds, 2):
        both = wide[[c1, c2]].dropna(how="all")
        w = design.weights_for(both.index)
        flip = (both[c1].fillna(INVALID_LABEL).astype(str)
                != both[c2].fillna(INVALID_LABEL).astype(str)).to_numpy(dtype=float)
        pairs.append({"order_a": c1, "order_b": c2, "n": len(both),
                      "flip_rate": float((w * flip).sum() / w.sum()) if len(both) else np.nan})
    w = design.weights_for(wide.index)
    anyf = (wide.fillna(INVALID_LABEL).nunique(axis=1) > 1).to_numpy(dtype=float)
    return {"any_flip_rate": float((w * anyf).sum() / w.sum())
            if len(conds) > 1 and len(wide) else np.nan, "pairs": pairs}
