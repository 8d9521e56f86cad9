"""Test-retest (textgauge.audits.retest)."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.audits.simulated import gold_set
from textgauge.audits.retest import manifest_diff, test_retest


def test_test_retest_with_manifests():
    gold = gold_set(200, seed=7)
    earlier = pd.DataFrame({"id": gold["id"], "label": gold["reference"], "status": "ok",
                            "confidence": 0.9})
    current = earlier.copy()
    flip_ids = gold["id"].iloc[[3, 10, 50]].tolist()
    current.loc[current["id"].isin(flip_ids), "label"] = "neutral"
    current = current[current["id"] != "g199"]
    current = pd.concat([current, pd.DataFrame({"id": ["x1"], "label": ["support"]})])
    em = {"model": "gpt-x", "revision": "2024-05-13", "provider": "openai",
          "date": "2024-06-01", "settings": {"temperature": 0}}
    cm = {"model": "gpt-x", "revision": "2024-08-06", "provider": "openai",
          "date": "2025-01-10", "settings": {"temperature": 0}, "seed": 1}
    res = test_retest(current, earlier, cm, em, gold=gold, bootstrap=200)
    assert res.n_common == 199
    changed = [i for i in flip_ids if gold.set_index("id").loc[i, "reference"] != "neutral"]
    assert sorted(res.flips["id"]) == sorted(changed)
    assert res.agreement == pytest.approx(1 - len(changed) / 199)
    assert res.only_earlier == ["g199"] and res.only_current == []  # x1 is not gold
    assert res.accuracy_earlier == 1.0 and res.accuracy_current < 1.0
    diff = res.manifest_diff
    assert diff["key"].tolist()[:2] == ["date", "revision"]
    assert set(diff["key"]) == {"date", "revision", "seed"}
    assert manifest_diff(em, em).empty
