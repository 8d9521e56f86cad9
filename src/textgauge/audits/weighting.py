"""The gold design inside the audits: per-item weights by id, weighted shares with a
design-based standard error.

Why: a ``model_assisted`` gold sample over-samples rare predicted labels and low-confidence
texts, so every share an audit computes on gold items (accuracy above a threshold, a class's
prevalence, a flip rate) describes the *sample* unless each item counts for the corpus texts
it stands for. The weights and cells always come from
:func:`textgauge.stats.design.gold_design` (the one place they are computed);
this module only lines them up with the rows an audit scores and gives the stratified
(Horvitz-Thompson ratio) mean with its textbook variance (Cochran 1977, 5.3;
Sarndal, Swensson & Wretman 1992, 3.7), used where an audit reports a share with a CI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as st

from textgauge.stats.design import GoldDesign, gold_design

__all__ = ["AuditDesign", "audit_design", "stratified_share"]


@dataclass(frozen=True)
class AuditDesign:
    """The gold design of one audit's items, looked up by id.

    ``weighted`` False (a proportional sample): ``weights_for``/``cells_for`` return None,
    and every audit takes its historical, unweighted path.
    """

    design: GoldDesign
    table: pd.DataFrame | None  # index id: weight, cell

    @property
    def weighted(self) -> bool:
        return self.design.weighted

    @property
    def info(self) -> dict[str, Any]:
        return self.design.info

    def weights_for(self, ids: Sequence[Any] | pd.Series) -> np.ndarray | None:
        """The design weights of ``ids`` (in that order), or None when not weighted."""
        if self.table is None:
            return None
        return self.table.loc[pd.Series(list(ids)).astype(str), "weight"].to_numpy(float)

    def cells_for(self, ids: Sequence[Any] | pd.Series) -> np.ndarray | None:
        """The design cells of ``ids`` (in that order), or None when not weighted."""
        if self.table is None:
            return None
        return self.table.loc[pd.Series(list(ids)).astype(str), "cell"].to_numpy()


def audit_design(items: pd.DataFrame | pd.Series | list, sample: pd.DataFrame) -> AuditDesign:
    """:func:`gold_design` of the scored gold ``items`` (their ``id``s, unique), indexed by id."""
    ids = (items["id"] if isinstance(items, pd.DataFrame) else pd.Series(list(items)))
    ids = ids.astype(str).drop_duplicates().reset_index(drop=True)
    d = gold_design(ids, sample)
    if not d.weighted:
        return AuditDesign(d, None)
    table = pd.DataFrame({"weight": d.weights, "cell": d.cells}, index=ids.to_numpy())
    return AuditDesign(d, table)


def stratified_share(x: Sequence[float] | np.ndarray, weights: Sequence[float] | np.ndarray,
                     cells: Sequence[Any] | np.ndarray, confidence: float = 0.95,
                     ) -> dict[str, float]:
    """Weighted mean of ``x`` (0/1, or a difference of indicators) with a normal CI from the
    stratified-sampling variance: sum_h W_h^2 (1 - f_h) s_h^2 / n_h, W_h the cell's share of
    the total weight, f_h = n_h / N_h. A cell of one item contributes no variance (s_h
    undefined): the interval is then too narrow, which ``n_single_cells`` says."""
    x = np.asarray(x, dtype=float)
    w = np.asarray(weights, dtype=float)
    c = pd.Series(np.asarray(cells)).astype(str)
    if not len(x):
        return {"estimate": float("nan"), "se": float("nan"), "ci_low": float("nan"),
                "ci_high": float("nan"), "n_single_cells": 0}
    total = w.sum()
    est = float((w * x).sum() / total)
    var, single = 0.0, 0
    for _, idx in c.groupby(c).groups.items():
        xi, wi = x[idx], w[idx]
        n_h, big_n = len(xi), float(wi.sum())
        if n_h < 2:
            single += 1
            continue
        f_h = min(n_h / big_n, 1.0) if big_n > 0 else 1.0
        var += (big_n / total) ** 2 * (1 - f_h) * xi.var(ddof=1) / n_h
    se = float(np.sqrt(var))
    z = float(st.norm.ppf(0.5 + confidence / 2))
    return {"estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se,
            "n_single_cells": single}
