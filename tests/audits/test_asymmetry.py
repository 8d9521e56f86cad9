"""Class asymmetry (textgauge.audits.asymmetry) with a sycophantic coder."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.audits.simulated import LABELS, gold_set
from textgauge.audits.asymmetry import class_asymmetry


def test_asymmetry_flags_the_overpredicted_class():
    rng = np.random.default_rng(12)
    gold = gold_set(800, seed=2)
    ref = gold["reference"].to_numpy()
    pred = np.where(rng.random(len(ref)) < 0.3, "support", ref)  # sycophantic coder
    preds = pd.DataFrame({"id": gold["id"], "label": pred, "confidence": 0.9, "status": "ok"})
    out = class_asymmetry(gold, preds).set_index("label")
    assert out.loc["support", "flag"] == "over"
    assert set(out.index[out["flag"] == "over"]) == {"support"}
    assert set(out.index[out["flag"] == "under"]) <= {"oppose", "neutral"}
    assert out.loc["support", "recall"] == 1.0
    assert out.loc["support", "recall_gap"] > 0.2
    assert out.loc["support", "predicted_ci_low"] > out.loc["support", "gold_ci_high"]
    # a noisy coder whose errors follow the class distribution (margins kept): nothing flagged
    noise = np.where(rng.random(len(ref)) < 0.1,
                     rng.choice(LABELS, len(ref), p=[0.5, 0.3, 0.2]), ref)
    fair = class_asymmetry(gold, preds.assign(label=noise))
    assert (fair["flag"] == "").all()
