"""Class balance of a training split: random oversampling of the minority labels.

The course offers two remedies for a skewed training set: weigh the loss by inverse class
frequency (``class_weights``) or show the model the rare labels more often (oversampling).
:func:`oversample` does the second: each label with fewer training texts than the majority
label gets extra copies of its own texts, drawn with replacement (seeded), until it reaches
the majority count, or ``cap`` texts if that is lower. No label is ever shrunk, and only the
training split is touched: the validation split (model selection, temperature scaling) keeps
the real label distribution.

The two remedies correct the same thing; applied together they would count each minority
example twice over, so a model with ``class_balance: oversample`` must set its class weights
off (:func:`textgauge.options.check_class_balance` says so as a ConfigError).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import ConfigError, InputDataError


def oversample(train: pd.DataFrame, labels: Sequence[str], seed: int,
               cap: int | None = None, label_column: str = "label"
               ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Oversample the minority labels of ``train``: (the larger frame, a record of it).

    Each label's target is the majority label's count, lowered to ``cap`` when given (a
    label already at or above its target keeps its texts as they are). The extra rows are
    copies of that label's own rows, drawn with replacement from a generator seeded with
    ``seed``; the original rows all stay. The result keeps the original rows first, then
    the copies (a trainer shuffles anyway). The record: method, seed, cap,
    counts_before, counts_after, n_before, n_after, n_added.
    """
    labels = list(labels)
    if cap is not None and int(cap) < 1:
        raise ConfigError(f"oversample_cap must be at least 1, not {cap!r}.")
    counts: Mapping[str, int] = (train[label_column].value_counts()
                                 .reindex(labels, fill_value=0).astype(int).to_dict())
    empty = [lab for lab, n in counts.items() if n == 0]
    if empty:
        raise InputDataError(f"The training split has no example of {empty}: oversampling "
                             "needs at least one text of every label to copy.")
    target = max(counts.values()) if counts else 0
    if cap is not None:
        target = min(target, int(cap))
    rng = np.random.default_rng(seed)
    extra = []
    for lab in labels:
        need = target - counts[lab]
        if need > 0:
            rows = np.flatnonzero((train[label_column] == lab).to_numpy())
            extra.append(train.iloc[rng.choice(rows, size=need, replace=True)])
    out = pd.concat([train, *extra], ignore_index=True) if extra else train.reset_index(drop=True)
    after = out[label_column].value_counts().reindex(labels, fill_value=0).astype(int).to_dict()
    record = {"method": "oversample", "seed": int(seed),
              "cap": None if cap is None else int(cap),
              "rule": "each label with fewer texts than the majority label gets copies of its "
                      "own texts, drawn with replacement (seeded), up to the majority count"
                      + (" or the cap, whichever is lower" if cap is not None else ""),
              "counts_before": {k: int(v) for k, v in counts.items()},
              "counts_after": {k: int(v) for k, v in after.items()},
              "n_before": int(len(train)), "n_after": int(len(out)),
              "n_added": int(len(out) - len(train))}
    return out, record
