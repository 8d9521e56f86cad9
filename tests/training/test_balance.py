"""Oversampling of the training split (textgauge.training.balance)."""

from __future__ import annotations

import pandas as pd
import pytest

from textgauge.errors import ConfigError, InputDataError
from textgauge.options import check_class_balance
from textgauge.training.balance import oversample


def _train() -> pd.DataFrame:
    labels = ["a"] * 10 + ["b"] * 4 + ["c"] * 1
    return pd.DataFrame({"id": [f"t{i}" for i in range(len(labels))], "label": labels,
                         "text": [f"text {i}" for i in range(len(labels))]})


def test_oversample_to_the_majority_seeded_and_recorded():
    train = _train()
    out, rec = oversample(train, ["a", "b", "c"], seed=1)
    assert rec["counts_before"] == {"a": 10, "b": 4, "c": 1}
    assert rec["counts_after"] == {"a": 10, "b": 10, "c": 10}
    assert rec["n_before"] == 15 and rec["n_after"] == 30 and rec["n_added"] == 15
    # the original rows all stay; copies are of the label's own rows
    assert out.iloc[:15].equals(train)
    copies = out.iloc[15:]
    assert set(copies.loc[copies["label"] == "c", "id"]) == {"t14"}
    assert set(copies.loc[copies["label"] == "b", "id"]) <= {"t10", "t11", "t12", "t13"}
    again, _ = oversample(train, ["a", "b", "c"], seed=1)
    assert again.equals(out)
    other, _ = oversample(train, ["a", "b", "c"], seed=2)
    assert not other.equals(out)


def test_oversample_cap_never_shrinks():
    out, rec = oversample(_train(), ["a", "b", "c"], seed=1, cap=6)
    assert rec["counts_after"] == {"a": 10, "b": 6, "c": 6} and rec["cap"] == 6
    with pytest.raises(InputDataError, match="no example"):
        oversample(_train(), ["a", "b", "c", "d"], seed=1)
    with pytest.raises(ConfigError):
        oversample(_train(), ["a", "b", "c"], seed=1, cap=0)


def test_check_class_balance():
    assert check_class_balance(None, "inverse_frequency", "m") == "none"
    assert check_class_balance("oversample", "none", "m") == "oversample"
    assert check_class_balance("oversample", None, "m") == "oversample"
    with pytest.raises(ConfigError, match="class_weights: none"):
        check_class_balance("oversample", "inverse_frequency", "m")
    with pytest.raises(ConfigError, match="class_weights: none"):
        check_class_balance("oversample", {"a": 1.0}, "m")
    with pytest.raises(ConfigError, match="none or oversample"):
        check_class_balance("undersample", "none", "m")
