"""Draw the stratified gold-standard sample.

The gold sample is the test set every coder (human or machine) is judged on, so it must be
(a) reproducible: same corpus, config and seed give the byte-identical sample; (b) disjoint
from anything a model is trained or tuned on; (c) stratified, with each item's inclusion
probability recorded so that corpus-level estimates can be weighted back.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError

#: the design columns every gold sample carries (model-assisted samples add the first pass's)
DESIGN_COLUMNS = ("stratum", "design", "cell", "cell_size", "inclusion_prob")


def allocate(sizes: pd.Series, n: int, min_per_stratum: int = 0) -> pd.Series:
    """Proportional allocation of ``n`` items over strata (largest remainder), capped by size.

    ``min_per_stratum`` guarantees small strata enough items for a per-stratum estimate.
    """
    total = int(sizes.sum())
    if n > total:
        raise InputDataError(f"gold.size is {n}, but only {total} eligible texts exist "
                             "(training items are excluded). Lower gold.size.")
    base = np.minimum(sizes.to_numpy(), min_per_stratum)
    rest = n - int(base.sum())
    if rest < 0:
        raise InputDataError(f"gold.min_per_stratum x {len(sizes)} strata exceeds gold.size "
                             f"({n}); lower gold.min_per_stratum or use fewer strata.")
    room = sizes.to_numpy() - base
    quota = rest * room / max(room.sum(), 1)
    alloc = np.floor(quota).astype(int)
    order = np.argsort(-(quota - alloc), kind="stable")
    for k in order[: rest - int(alloc.sum())]:
        alloc[k] += 1
    alloc = np.minimum(alloc, room)
    # capped strata give back items; hand them out in order of remaining room
    short = rest - int(alloc.sum())
    while short > 0:
        free = np.flatnonzero(room - alloc > 0)
        for k in free[:short]:
            alloc[k] += 1
        short = rest - int(alloc.sum())
    return pd.Series(base + alloc, index=sizes.index)


def sample_gold(corpus: pd.DataFrame, size: int, strata: Sequence[str], seed: int,
                exclude_ids: Sequence[str] = (), min_per_stratum: int = 0) -> pd.DataFrame:
    """Stratified simple random sample without replacement, seeded, sorted by id.

    Returns id, text, the corpus columns, ``stratum`` (the combined key), ``design``
    ("proportional"), ``cell`` (the stratum: the design cell), ``cell_size`` (N_h) and
    ``inclusion_prob`` (n_h / N_h).
    """
    excluded = set(map(str, exclude_ids))
    eligible = corpus.loc[~corpus["id"].isin(excluded)].copy()
    eligible = eligible.sort_values("id", kind="stable").reset_index(drop=True)
    strata = list(strata)
    if strata:
        eligible["stratum"] = eligible[strata].astype(str).agg(" | ".join, axis=1)
    else:
        eligible["stratum"] = "all"
    sizes = eligible.groupby("stratum", sort=True).size()
    alloc = allocate(sizes, size, min_per_stratum)
    rng = np.random.default_rng(seed)
    parts = []
    for stratum, n_h in alloc.items():
        members = eligible.loc[eligible["stratum"] == stratum]
        if n_h == 0:
            continue
        pick = rng.choice(len(members), size=int(n_h), replace=False)
        part = members.iloc[np.sort(pick)].copy()
        part["cell_size"] = len(members)
        part["inclusion_prob"] = n_h / len(members)
        parts.append(part)
    sample = pd.concat(parts).sort_values("id", kind="stable").reset_index(drop=True)
    # every corpus column travels with the sample (per-stratum audits use all strata)
    sample["design"] = "proportional"
    sample["cell"] = sample["stratum"]
    other = [c for c in corpus.columns if c not in ("id", "text", *DESIGN_COLUMNS)]
    return sample[["id", "text", *other, *DESIGN_COLUMNS]]
