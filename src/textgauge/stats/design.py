"""The gold sample's design, as every statistic computed on gold items must use it.

Why one helper: a gold sample drawn with ``gold.design: model_assisted`` over-samples rare
predicted labels and low-confidence texts, so an item stands for ``cell_size / n_cell``
corpus texts and the bootstrap must resample within the design cells it was drawn in
(:mod:`textgauge.stats.weighted`). Every rule that scores gold items (evaluate, human
agreement, comparisons, audits) asks :func:`gold_design` for the weights and cells of the
items IT scores, so none of them can weight differently, or forget to.

Weights are the inverse inclusion probabilities adjusted for nonresponse within cells:
``cell_size / n``, ``n`` the items of the cell in this analysis (a drawn item without a
reference label, a tie left out, or a text one coder skipped, moves its share to the other
items of its cell: the usual adjustment within design cells, Sarndal et al. 1992 ch. 15).
A cell with no item left in the analysis cannot be represented: its texts are counted in
``info["cells_without_items"]`` and the estimate describes the rest of the corpus
(``sum_weights`` says how much).

A ``proportional`` sample is self-weighting (every stratum sampled at the same rate, up to
rounding), so it is analysed as drawn: ``weighted`` is False and the statistics are the
plain ones (the historical behaviour, byte-identical numbers). One whose small strata were
topped up (``gold.min_per_stratum``: a stratum one item or more off its proportional share,
:func:`beyond_rounding`) is not, and is weighted like a model-assisted one, within strata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError

__all__ = ["DESIGNS", "GoldDesign", "beyond_rounding", "gold_design", "sample_design",
           "weighted_design"]

#: the gold designs ``gold.design`` can name
DESIGNS = ("proportional", "model_assisted")


@dataclass(frozen=True)
class GoldDesign:
    """Weights and cells of the items of one analysis (aligned with the ``items`` given).

    ``weights``/``cells`` are None when the design is self-weighting (``weighted`` False):
    pass them straight to :func:`~textgauge.stats.weighted_metrics` either way.
    """

    design: str
    weighted: bool
    weights: np.ndarray | None
    cells: np.ndarray | None
    info: dict[str, Any] = field(default_factory=dict)


def sample_design(sample: pd.DataFrame) -> str:
    """The design a gold sample was drawn with (a sample from before designs: proportional)."""
    if "design" not in sample.columns or sample.empty:
        return "proportional"
    names = sorted(set(sample["design"].astype(str)))
    if len(names) != 1 or names[0] not in DESIGNS:
        raise InputDataError(f"The gold sample's design column holds {names}; expected one of "
                             f"{DESIGNS}. Was sample.parquet edited by hand? Redraw it.")
    return names[0]


def beyond_rounding(sample: pd.DataFrame) -> float:
    """How many items a proportional sample's most topped-up stratum holds above its
    proportional share: the largest n_h - N_h n / N over its strata (cells). Largest-remainder
    rounding keeps it below 1, so 1 or more means a stratum was sampled at a higher rate on
    purpose (``gold.min_per_stratum``) and the sample is not self-weighting. N counts the
    strata with an item only (a tiny stratum rounded to none is not in the sample), which
    can only raise the shares: rounding alone never reaches 1. 0 for a sample without cell
    sizes (drawn before designs were recorded)."""
    if not {"cell", "cell_size"} <= set(sample.columns) or sample.empty:
        return 0.0
    cells = sample.groupby(sample["cell"].astype(str)).agg(
        n=("cell", "size"), size=("cell_size", "first"))
    quota = cells["size"].astype(float) * len(sample) / float(cells["size"].sum())
    return float((cells["n"] - quota).max())


def weighted_design(sample: pd.DataFrame) -> bool:
    """Whether analyses of this gold sample are design-weighted: a model-assisted sample, or
    a proportional one with a topped-up stratum (:func:`beyond_rounding`)."""
    return sample_design(sample) == "model_assisted" or beyond_rounding(sample) >= 1


def gold_design(items: pd.DataFrame | pd.Series | list, sample: pd.DataFrame) -> GoldDesign:
    """The design weights and cells of ``items`` (their ``id`` column, or the ids), all of
    them gold items of ``sample`` (results/gold/sample.parquet).

    Refuses an item that is not in the sample (it has no inclusion probability).
    """
    ids = (items["id"] if isinstance(items, pd.DataFrame) else pd.Series(list(items)))
    ids = ids.astype(str).reset_index(drop=True)
    if ids.duplicated().any():
        raise ValueError("gold_design takes one row per item; the ids repeat.")
    design = sample_design(sample)
    info: dict[str, Any] = {"design": design, "n_items": int(len(ids))}
    excess = beyond_rounding(sample) if design != "model_assisted" else 0.0
    if not weighted_design(sample):
        info.update(weighted=False, reason="a proportional sample is self-weighting: "
                    "analysed as drawn")
        return GoldDesign(design, False, None, None, info)
    need = {"cell", "cell_size"}
    if not need <= set(sample.columns):  # (a proportional one without them never gets here)
        raise InputDataError(f"The gold sample was drawn model_assisted but lacks {sorted(need)}"
                             "; redraw it (rule sample_gold).")
    frame = sample.assign(id=sample["id"].astype(str)).set_index("id")
    missing = ids[~ids.isin(frame.index)]
    if len(missing):
        raise InputDataError(f"{len(missing)} scored item(s) are not in the gold sample (e.g. "
                             f"{missing.iloc[:3].tolist()}): they have no inclusion probability.")
    cells = frame.loc[ids, "cell"].astype(str).to_numpy()
    size = frame.loc[ids, "cell_size"].astype(float).to_numpy()
    n_cell = pd.Series(cells).map(pd.Series(cells).value_counts()).to_numpy(dtype=float)
    weights = size / n_cell
    drawn = frame.groupby("cell")["cell_size"].agg(["size", "first"])
    present = set(cells)
    lost = drawn.loc[[c for c in drawn.index if c not in present]]
    reason = ("model-assisted sample: each item weighted by cell_size / items of its cell in "
              "this analysis; bootstrap within design cells")
    if design != "model_assisted":
        reason = (f"a proportional sample whose strata were not sampled at one rate (a stratum "
                  f"holds {excess:.1f} items more than its proportional share: "
                  "gold.min_per_stratum topped it up): weighted by cell_size / items of its "
                  "stratum in this analysis; bootstrap within strata")
    info.update(
        weighted=True, n_cells=int(len(present)), sum_weights=float(weights.sum()),
        population=float(drawn["first"].sum()),
        cells_without_items=[{"cell": str(c), "cell_size": int(r["first"]),
                              "drawn": int(r["size"])} for c, r in lost.iterrows()],
        texts_not_represented=int(lost["first"].sum()) if len(lost) else 0,
        items_left_out=int(len(frame) - len(ids)), reason=reason)
    if "first_pass_model" in frame.columns:
        info["first_pass"] = str(frame["first_pass_model"].iloc[0])
    return GoldDesign(design, True, weights, cells, info)
