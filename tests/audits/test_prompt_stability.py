"""Prompt stability (textgauge.audits.prompt_stability)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.audits.simulated import LABELS, gold_set
from textgauge.audits.prompt_stability import prompt_stability


def test_prompt_stability_alpha():
    gold = gold_set(300, seed=9)
    ref = gold["reference"].to_numpy()
    rng = np.random.default_rng(19)
    rows = []
    for v, noise in (("p1", 0.05), ("p2", 0.05), ("p3", 0.6)):  # p3: an unstable paraphrase
        for run in (1, 2):
            lab = np.where(rng.random(300) < noise, rng.choice(LABELS, 300), ref)
            rows.append(pd.DataFrame({"id": gold["id"], "label": lab, "prompt_variant": v,
                                      "run": run}))
    df = pd.concat(rows)
    res = prompt_stability(df, gold=gold, bootstrap=50)
    stable = prompt_stability(df[df["prompt_variant"] != "p3"], bootstrap=0)
    assert stable.alpha_all["estimate"] > 0.85
    assert res.alpha_all["estimate"] < stable.alpha_all["estimate"] - 0.1
    assert res.alpha_all["ci_low"] < res.alpha_all["estimate"] < res.alpha_all["ci_high"]
    pv = res.per_variant.set_index("variant")
    assert pv.loc["p3", "alpha_within_runs"] < 0.7 < pv.loc["p1", "alpha_within_runs"]
    assert pv.loc["p3", "accuracy"] < pv.loc["p1", "accuracy"]
    assert pv["deviation_from_modal"].idxmax() == "p3"
    import krippendorff

    codes = {lab: i for i, lab in enumerate(LABELS)}
    two = df[(df["prompt_variant"].isin(["p1", "p2"])) & (df["run"] == 1)]
    mat = two.pivot(index="prompt_variant", columns="id", values="label").map(codes.get)
    direct = krippendorff.alpha(reliability_data=mat.to_numpy(float),
                                level_of_measurement="nominal")
    got = prompt_stability(two, run_col=None, bootstrap=0).alpha_variants["estimate"]
    assert got == pytest.approx(direct)
