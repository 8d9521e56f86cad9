"""Label-noise check: flipped labels in a separable synthetic set are found."""

from __future__ import annotations

import random

import pandas as pd
import pytest

pytest.importorskip("cleanlab")

from textgauge.errors import InputDataError  # noqa: E402
from textgauge.training.label_noise import find_issues  # noqa: E402

LABELS = ["economic", "security", "moral"]
WORDS = {
    "economic": ["taxes", "budget", "jobs", "prices", "growth", "wages", "deficit", "trade"],
    "security": ["crime", "border", "police", "threat", "safety", "terror", "army", "prison"],
    "moral": ["duty", "fairness", "decency", "values", "compassion", "dignity", "shame", "right"],
}
FILLER = "the we must our country about this bill people will house members today".split()


def synthetic(n: int = 300, n_flip: int = 24, seed: int = 0) -> tuple[pd.DataFrame, set[str]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lab = LABELS[i % 3]
        words = rng.sample(FILLER, 5) + rng.sample(WORDS[lab], 3)
        rng.shuffle(words)
        rows.append({"id": f"t{i:04d}", "text": " ".join(words), "label": lab})
    df = pd.DataFrame(rows)
    flip = rng.sample(range(n), n_flip)
    for i in flip:
        df.loc[i, "label"] = rng.choice([lab for lab in LABELS if lab != df.loc[i, "label"]])
    return df, {f"t{i:04d}" for i in flip}


def test_flipped_labels_are_found():
    df, flipped = synthetic()
    sheet, summary = find_issues(df, LABELS, seed=1)
    found = set(sheet.loc[sheet["is_issue"], "id"])
    recall = len(found & flipped) / len(flipped)
    precision = len(found & flipped) / max(len(found), 1)
    assert recall > 0.5, (recall, precision)
    assert precision > 0.6, (recall, precision)
    # the suggested label of a found flip is (mostly) the original one
    orig = synthetic(n_flip=0)[0].set_index("id")["label"]
    hits = sheet[sheet["id"].isin(found & flipped)]
    assert (hits["suggested_label"] == orig.loc[hits["id"]].values).mean() > 0.8
    assert summary["n_issues"] == len(found) and summary["n_train"] == 300
    assert summary["oof_macro_f1"] > 0.7
    # self-confidence is the out-of-fold probability of the given label
    row = sheet.iloc[0]
    assert row["self_confidence"] == row[f"prob_{row['given_label']}"]


def test_clean_data_flags_few():
    df, _ = synthetic(n_flip=0)
    sheet, _ = find_issues(df, LABELS, seed=1)
    assert sheet["is_issue"].mean() < 0.05


def test_bad_inputs():
    df, _ = synthetic(n=30, n_flip=0)
    with pytest.raises(InputDataError, match="not in the codebook"):
        find_issues(df.assign(label="other"), LABELS)
    with pytest.raises(InputDataError, match="at least 2"):
        find_issues(pd.concat([df, pd.DataFrame([{"id": "x", "text": "a b", "label": "rare"}])]),
                    LABELS + ["rare"])
