"""Fleiss' kappa for m raters per unit, with the null standard error and per-category kappas."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from textgauge.errors import InputDataError
from textgauge.stats.inputs import category_codes, check_columns, resolve_categories, to_builtin

__all__ = ["FleissResult", "fleiss_kappa", "fleiss_kappa_long"]


@dataclass(frozen=True, eq=False)
class FleissResult:
    """Fleiss' kappa for m raters per unit, with the null SE of Fleiss, Nee & Landis (1979).

    ``per_category`` has one row per category: kappa_j, its null SE, z and p-value (Fleiss 1971
    eq. 11; Fleiss, Nee & Landis 1979 eq. 9).
    """

    estimate: float
    se0: float
    z: float
    p_value: float
    p_observed: float
    p_expected: float
    n_units: int
    n_raters: int
    categories: tuple
    per_category: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (per_category as a list of records)."""
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        return to_builtin(d)


def fleiss_kappa(counts: Any, categories: Sequence | None = None) -> FleissResult:
    """Fleiss' kappa from a units x categories count table (each row sums to m raters).

    Why: the usual coefficient when each item is coded by m coders drawn from a pool (not the
    same m for every item). The estimate is statsmodels' ``fleiss_kappa``; the null standard
    error (for z and p) and the per-category kappas are added here.

    Parameters
    ----------
    counts : (N, K) array; ``counts[i, j]`` = number of raters who put unit i in category j.
        All rows must have the same total m >= 2 (use :func:`krippendorff_alpha` otherwise).
    categories : optional names for the K columns.

    References
    ----------
    Fleiss (1971) Psychol Bull 76:378-382; Fleiss, Nee & Landis (1979) Psychol Bull
    86:974-977, eq. 12 (null variance of the overall kappa).
    """
    from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss

    x = counts.to_numpy() if isinstance(counts, pd.DataFrame) else np.asarray(counts)
    if categories is None and isinstance(counts, pd.DataFrame):
        categories = list(counts.columns)
    x = np.asarray(x, dtype=float)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 2:
        raise InputDataError(
            f"counts must be a units x categories table with >= 2 categories, got {x.shape}.")
    if not np.isfinite(x).all() or (x < 0).any() or (x != np.round(x)).any():
        raise InputDataError("counts must contain non-negative integer counts.")
    m_rows = x.sum(axis=1)
    if not np.all(m_rows == m_rows[0]):
        bad = np.flatnonzero(m_rows != m_rows[0])[:10].tolist()
        raise InputDataError(
            "Fleiss' kappa needs the same number of ratings for every unit; rows "
            f"{bad} differ from row 0 ({int(m_rows[0])} ratings). Use krippendorff_alpha for "
            "unequal numbers of ratings.")
    m = int(m_rows[0])
    if m < 2:
        raise InputDataError("counts must have at least 2 ratings per unit.")
    nu, k = x.shape
    if categories is None:
        categories = list(range(k))
    if len(categories) != k:
        raise InputDataError(f"categories has {len(categories)} names for {k} columns.")
    kappa = float(_sm_fleiss(x, method="fleiss"))
    pj = x.sum(axis=0) / (nu * m)
    qj = 1 - pj
    pq = pj * qj
    spq = pq.sum()
    p_i = ((x * x).sum(axis=1) - m) / (m * (m - 1))
    var0 = 2.0 / (nu * m * (m - 1) * spq**2) * (spq**2 - (pq * (qj - pj)).sum())
    se0 = float(np.sqrt(var0)) if spq > 0 else np.nan
    z = kappa / se0 if se0 and np.isfinite(se0) else np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        kj = 1 - (x * (m - x)).sum(axis=0) / (nu * m * (m - 1) * pq)
    se0_j = np.sqrt(2.0 / (nu * m * (m - 1)))
    per = pd.DataFrame({
        "category": list(categories), "proportion": pj, "kappa": kj,
        "se0": np.full(k, se0_j), "z": kj / se0_j,
        "p_value": 2 * stats.norm.sf(np.abs(kj / se0_j)),
    })
    return FleissResult(
        estimate=kappa, se0=se0, z=float(z),
        p_value=float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
        p_observed=float(p_i.mean()), p_expected=float((pj**2).sum()), n_units=nu,
        n_raters=m, categories=tuple(to_builtin(list(categories))), per_category=per,
    )


def fleiss_kappa_long(df: pd.DataFrame, unit: str = "id", coder: str = "coder",
                      label: str = "label", labels: Any = None) -> FleissResult:
    """Fleiss' kappa from long-format codes (one row per unit x coder).

    Rows with a missing label are dropped; every remaining unit must have the same number of
    codes. A coder who coded the same unit twice is an error (listed in the message).
    """
    check_columns(df, {"unit": unit, "coder": coder, "label": label})
    d = df.loc[~df[label].isna(), [unit, coder, label]]
    dup = d.duplicated([unit, coder], keep=False)
    if dup.any():
        rows = d.loc[dup, [unit, coder]].drop_duplicates().head(10).values.tolist()
        raise InputDataError(f"some coders coded the same unit more than once: {rows}.")
    cats = resolve_categories(d[label].to_numpy(), labels, "labels")
    codes = category_codes(d[label].to_numpy(), cats, label)
    units, uidx = np.unique(d[unit].to_numpy(), return_inverse=True)
    x = np.zeros((len(units), len(cats)))
    np.add.at(x, (uidx, codes), 1)
    return fleiss_kappa(x, categories=list(cats))
