"""Simulated coders of known behaviour, shared by the audit tests."""

from __future__ import annotations

import numpy as np
import pandas as pd

LABELS = ["support", "oppose", "neutral"]


def gold_set(n=600, seed=0, p=(0.5, 0.3, 0.2)):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": [f"g{i}" for i in range(n)],
                         "reference": rng.choice(LABELS, n, p=list(p))})


def positional_runs(gold, first_bias: float, seed: int = 1, accuracy: float = 0.8):
    """Same coder, same items, label order fixed / reversed / rotated per item."""
    rng = np.random.default_rng(seed)
    rows = []
    for cond in ("fixed", "reversed", "rotated"):
        for i, (item, ref) in enumerate(zip(gold["id"], gold["reference"], strict=True)):
            if cond == "fixed":
                order = LABELS
            elif cond == "reversed":
                order = LABELS[::-1]
            else:
                order = LABELS[i % 3:] + LABELS[:i % 3]
            if rng.random() < first_bias:
                label = order[0]
            elif rng.random() < accuracy:
                label = ref
            else:
                label = rng.choice([lab for lab in LABELS if lab != ref])
            rows.append({"id": item, "order": cond, "label_order": "|".join(order),
                         "label": label, "status": "ok"})
    return pd.DataFrame(rows)
