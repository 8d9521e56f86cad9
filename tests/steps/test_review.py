"""Steps of workflow/rules/review.smk (textgauge.steps.review), called directly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from textgauge.steps.review import prompt_stability, retest

LABELS = ["economic", "moral", "security", "rights"]


@pytest.fixture
def gold_files(tmp_path):
    rng = np.random.default_rng(1)
    ids = [f"g{i:02d}" for i in range(40)]
    ref = pd.DataFrame({"id": ids, "reference": rng.choice(LABELS, 40)})
    ref.to_parquet(tmp_path / "reference.parquet")
    preds = pd.DataFrame({"id": ids, "label": ref["reference"], "status": "ok",
                          "prompt_hash": "h0"})
    preds.loc[:3, "label"] = "moral"
    return tmp_path, ref, preds




def test_retest_stage_counts_flips_without_a_stored_manifest(gold_files):
    d, ref, preds = gold_files
    preds.to_parquet(d / "current.parquet")
    earlier = preds.copy()
    earlier.loc[10:12, "label"] = [{"moral": "rights"}.get(x, "moral")
                                   for x in earlier.loc[10:12, "label"]]
    earlier.to_parquet(d / "earlier.parquet")
    (d / "current.manifest.json").write_text(json.dumps({"model_revision": "b"}))
    out = retest(model="m", current=str(d / "current.parquet"),
                 current_manifest=str(d / "current.manifest.json"),
                 earlier=str(d / "earlier.parquet"), earlier_manifest=None,
                 reference=str(d / "reference.parquet"), retest=str(d / "retest.json"),
                 labels=LABELS, confidence=0.9, bootstrap=100, seed=0)
    assert out["n_flips"] == 3 and out["n_common"] == 40
    assert out["agreement"] == pytest.approx(37 / 40)
    assert {f["id"] for f in out["flips"]} == {"g10", "g11", "g12"}
    assert out["flips"][0]["reference"] == ref.at[10, "reference"]
    # no stored manifest: every current key shows as new
    assert [(r["key"], r["earlier"], r["current"]) for r in out["manifest_diff"]] == [
        ("model_revision", None, "b")]
    saved = json.loads((d / "retest.json").read_text())
    assert saved["kappa"]["kappa"] < 1 and saved["kappa"]["ci_low"] is not None
    assert saved["kappa"]["confidence"] == 0.9 and saved["kappa"]["n_boot"] == 100


def test_prompt_stability_stage(gold_files):
    d, ref, preds = gold_files
    preds.to_parquet(d / "base.parquet")
    same = preds.assign(prompt_hash="h1")
    same.to_parquet(d / "v1.parquet")
    other = preds.assign(prompt_hash="h2")
    other.loc[20:29, "label"] = "security"
    other.to_parquet(d / "v2.parquet")
    out = prompt_stability(
        model="m", base=str(d / "base.parquet"),
        variants=[str(d / "v1.parquet"), str(d / "v2.parquet")],
        reference=str(d / "reference.parquet"), audit=str(d / "ps.json"), base_prompt="p0.jinja",
        templates=["p1.jinja", "p2.jinja"], labels=LABELS, confidence=0.9, bootstrap=100, seed=0)
    assert out["n_items"] == 40 and out["n_variants"] == 3
    a = out["alpha"]
    assert 0 < a["estimate"] < 1 and a["confidence"] == 0.9 and a["n_boot"] == 100
    assert a["ci_low"] <= a["estimate"] <= a["ci_high"]
    per = {r["variant"]: r for r in out["per_variant"]}
    assert per["original"]["changed_vs_original"] == 0
    assert per["variant-1"]["template"] == "p1.jinja"
    changed = (other.loc[20:29, "label"] != preds.loc[20:29, "label"]).mean() * 10 / 40
    assert per["variant-2"]["changed_vs_original"] == pytest.approx(changed)
    assert per["variant-2"]["prompt_hash"] == "h2"
    acc = (preds["label"] == ref["reference"]).mean()
    assert acc < 1 and per["original"]["accuracy"] == pytest.approx(acc)


def test_prompt_stability_is_design_weighted_under_a_model_assisted_gold_sample(gold_files):
    """Items 20-29 change label under variant 2; they are in a cell drawn at twice the rate
    of the others (weight 5 vs 10), so the corpus-level change rate is lower than the 25%
    the sample shows as drawn: 10 x 5 / (10 x 5 + 30 x 10) = 1/7."""
    d, ref, preds = gold_files
    preds.to_parquet(d / "base.parquet")
    other = preds.assign(prompt_hash="h2")
    other.loc[20:29, "label"] = [{"security": "rights"}.get(x, "security")
                                 for x in other.loc[20:29, "label"]]
    other.to_parquet(d / "v1.parquet")
    hard = preds.index.isin(range(20, 30))
    sample = pd.DataFrame({"id": preds["id"], "design": "model_assisted",
                           "cell": np.where(hard, "x | band 0", "x | band 1"),
                           "cell_size": np.where(hard, 50, 300)})
    sample["inclusion_prob"] = 1 / np.where(hard, 5.0, 10.0)
    sample.to_parquet(d / "sample.parquet")
    kw = {"model": "m", "base": str(d / "base.parquet"), "variants": [str(d / "v1.parquet")],
          "reference": str(d / "reference.parquet"), "base_prompt": "p0.jinja",
          "templates": ["p1.jinja"], "labels": LABELS, "confidence": 0.9, "bootstrap": 100,
          "seed": 0}
    out = prompt_stability(audit=str(d / "w.json"), sample=str(d / "sample.parquet"), **kw)
    per = {r["variant"]: r for r in out["per_variant"]}
    assert per["variant-1"]["changed_vs_original"] == pytest.approx(1 / 7)
    assert out["as_drawn"]["changed_vs_original"][1] == pytest.approx(0.25)
    assert out["design"]["weighted"] is True
    # fewer changes in the corpus than in the sample: the weighted alpha is higher
    assert out["alpha"]["estimate"] > out["as_drawn"]["alpha"]["estimate"]
    plain = prompt_stability(audit=str(d / "p.json"), **kw)
    assert plain["as_drawn"] is None and plain["design"] is None
    assert plain["alpha"] == out["as_drawn"]["alpha"]
