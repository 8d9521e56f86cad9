"""The workflow, run for real with snakemake on the tiny config (tests/conftest.py::tiny_run)."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake

pytestmark = pytest.mark.slow

MODELS = ("encoder", "zeroshot", "baseline")  # baseline: from config.yaml (merged)


def test_every_output_exists_and_is_consistent(tiny_run):
    r = tiny_run / "results"
    corpus = pd.read_parquet(r / "corpus/corpus.parquet")
    assert len(corpus) == 3000
    sample = pd.read_parquet(r / "gold/sample.parquet")
    assert len(sample) == 40 and sample["id"].is_unique
    codes = pd.read_parquet(r / "gold/codes.parquet")
    assert set(codes["coder"]) == {"coder_a", "coder_b"} and len(codes) == 80
    ref = pd.read_parquet(r / "gold/reference.parquet")
    assert set(ref["id"]) == set(sample["id"])
    train = pd.read_parquet(r / "training/train.parquet")
    assert not set(train["id"]) & set(sample["id"])
    for m in MODELS:
        preds = pd.read_parquet(r / f"predictions/{m}.parquet")
        assert {"id", "label", "confidence", "status", "raw", "model", "model_revision",
                "prompt_hash", "run_timestamp"} <= set(preds.columns)
        assert {f"prob_{lab}" for lab in ("economic", "moral", "security", "rights")} <= set(preds.columns)
        assert preds["id"].is_unique and preds["status"].isin(["ok", "invalid", "failed"]).all()
        metrics = json.loads((r / f"validation/{m}/metrics.json").read_text())
        k = metrics["kappa"]
        assert -1 <= k["ci_low"] <= k["kappa"] <= k["ci_high"] <= 1
        assert metrics["n_gold"] == 40
        assert metrics["decision"] in {"pass", "fail", "inconclusive"}
    enc = pd.read_parquet(r / "predictions/encoder.parquet")
    assert set(enc["id"]) == set(corpus["id"])  # scope corpus: every text, across shards
    # temperature scaling fitted on the validation split, applied at inference (#14.6); the
    # texts cut at max_length counted in training, in the predictions and their manifest
    trained = json.loads((r / "models/encoder/training.json").read_text())
    cal = trained["calibration"]
    assert cal["method"] == "temperature" and cal["n"] == trained["n_val"] > 0
    assert cal["nll_after"] <= cal["nll_before"]
    assert trained["n_truncated_train"] >= 0 and trained["n_truncated_val"] >= 0
    assert {"confidence_raw", "truncated"} <= set(enc.columns)
    scaled = enc[[c for c in enc.columns if c.startswith("prob_")]].to_numpy()
    assert np.allclose(enc["confidence"], scaled.max(axis=1))
    enc_manifest = json.loads((r / "predictions/encoder.manifest.json").read_text())
    assert enc_manifest["n_truncated"] == int(enc["truncated"].sum())
    assert enc_manifest["calibration"]["temperature"] == pytest.approx(cal["temperature"])
    enc_audit = json.loads((r / "audits/encoder/audit.json").read_text())
    assert enc_audit["calibration"]["calibrated"]
    assert enc_audit["calibration"]["review_uncalibrated"]["kappa"][0]["subset"] == "all_gold"
    base = pd.read_parquet(r / "predictions/baseline.parquet")
    assert set(base["id"]) == set(corpus["id"]) and (base["status"] == "ok").all()
    fitted = json.loads((r / "models/baseline/training.json").read_text())
    assert fitted["n_train"] == len(train) and fitted["val_macro_f1"] is not None
    assert not list((r / "models/baseline").rglob("*.pkl"))  # JSON + .npz, no pickle
    zs = pd.read_parquet(r / "predictions/zeroshot.parquet")
    assert set(zs["id"]) == set(sample["id"])  # scope gold
    assert zs["prompt_hash"].nunique() == 1
    probs = zs[[c for c in zs.columns if c.startswith("prob_")]].sum(axis=1)
    assert probs.round(6).eq(1).all()
    human = json.loads((r / "validation/human/metrics.json").read_text())
    assert "simulated_truth" in human and human["simulated_truth"]["pairs"][0]["true_kappa"] > 0.5
    html = (r / "report/index.html").read_text()
    assert "SYNTHETIC" in html and "Simulated truth" in html
    for m in MODELS:
        assert f"Machine coder: {m}" in html
    # paired comparisons (rule compare): every model against the human coders, with a verdict
    comparisons = json.loads((r / "validation/comparisons.json").read_text())
    assert comparisons["mode"] == "pairwise" and set(comparisons["vs_humans"]) >= set(MODELS)
    assert (r / "validation/comparisons.csv").exists()
    assert "Paired comparisons" in html
    verdicts = ("indistinguishable from a human coder", "below human coders",
                "above human coders")
    for m in MODELS:
        assert comparisons["vs_humans"][m]["verdict"] in verdicts
        assert comparisons["vs_humans"][m]["verdict"] in html
    assert html.count("data:image/png;base64,") >= 4
    # per-stratum shift (each stratum minus the rest of gold), its own figure, apart from
    # the flag; stage 5 completed (simulated coders fill the re-validation sheets)
    assert "shift between strata" in html and 'alt="per-stratum shift encoder"' in html
    assert "Stage 5: validate again" in html and 'alt="stage 5 minus gold"' in html
    assert "kappa" in (r / "report/methods.md").read_text()
    assert "before calibration" in html and "texts truncated at max_length 64 tokens" in html
    assert "calibrated by temperature scaling" in (r / "report/methods.md").read_text()
    assert "TF-IDF word 1-2-grams + logistic regression (balanced class weights), fitted on " \
        f"the {len(train)} training texts" in (r / "report/methods.md").read_text()
    manifest = json.loads((r / "report/manifest.json").read_text())
    assert manifest["packages"]["snakemake"] and manifest["config_hash"]


def test_second_run_does_nothing(tiny_run):
    out = snakemake(tiny_run, "--configfile", "config/test.yaml", "-n")
    assert "Nothing to be done" in out.stdout + out.stderr


def _variant(wd, name, **changes):
    """A config file derived from config/test.yaml with some keys changed (dotted paths)."""
    cfg = yaml.safe_load((wd / "config/test.yaml").read_text())
    for dotted, value in changes.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value
    path = wd / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))  # key order is part of params
    return f"config/{name}.yaml"


def test_changing_one_model_reruns_only_that_model(tiny_run):
    variant = _variant(tiny_run, "changed", **{"models.zeroshot.temperature": 0.5})
    out = snakemake(tiny_run, "--configfile", variant, "-n")
    text = out.stdout + out.stderr
    table = text[text.index("Job stats"):]
    jobs = dict(re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M))
    assert jobs.get("predict_gold") == "1" and jobs.get("gather_predictions") == "1"
    assert jobs.get("evaluate") == "1" and "train_encoder" not in jobs
    assert "predict_shard" not in jobs


def test_same_config_gives_byte_identical_sample_and_split(tiny_run, tmp_path):
    wd = copy_workflow(tmp_path / "again")
    snakemake(wd, "split_training", "--configfile", "config/test.yaml")

    def digest(p):
        return hashlib.sha256(pd.read_parquet(p).to_csv(index=False).encode()).hexdigest()

    for rel in ("gold/sample.parquet", "training/train.parquet", "training/val.parquet"):
        assert digest(tiny_run / "results" / rel) == digest(wd / "results" / rel), rel


def test_bad_corpus_gives_one_paragraph_not_a_traceback(tmp_path):
    wd = copy_workflow(tmp_path / "bad")
    (wd / "bad.csv").write_text("id,body,party,period,chamber\n1,hello,A,x,y\n2,world,A,x,y\n")
    out = snakemake(wd, "ingest_corpus", "--configfile",
                    _variant(wd, "bad", **{"corpus.path": "bad.csv"}), check=False)
    assert out.returncode != 0
    log = (wd / "results/logs/ingest_corpus.log").read_text()
    assert "no column(s) 'text'" in log and "'body'" in log
    assert "Traceback" not in log


def test_config_typo_is_rejected_with_the_key(tmp_path):
    wd = copy_workflow(tmp_path / "typo")
    out = snakemake(wd, "--configfile", "config/test.yaml", "--config", "validaton={'x': 1}",
                    "-n", check=False)
    assert out.returncode != 0
    assert "validaton" in out.stdout + out.stderr


def test_report_images_are_embedded_pngs_and_no_external_resources(tiny_run):
    """The report is one file that renders offline: every image is an inline, decodable PNG."""
    import base64

    html = (tiny_run / "results/report/index.html").read_text()
    srcs = re.findall(r'<img src="([^"]*)"', html)
    assert len(srcs) >= 8
    for src in srcs:
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="https?://', html)


def test_no_gold_id_in_any_training_or_validation_file(tiny_run):
    r = tiny_run / "results"
    gold = set(pd.read_parquet(r / "gold/sample.parquet")["id"])
    for rel in ("training/train.parquet", "training/val.parquet"):
        assert not gold & set(pd.read_parquet(r / rel)["id"]), rel


def test_snakemake_report_hook(tiny_run):
    snakemake(tiny_run, "--configfile", "config/test.yaml", "--report", "smk-report.html")
    assert (tiny_run / "smk-report.html").stat().st_size > 10_000


def test_spend_planned_vs_actual_in_the_report_and_manifest(tiny_run):
    """Rule spend: every prediction file summed beside the plan, benchmark files per rule and
    model (GPU-hours for the GPU jobs), in the report and the run manifest."""
    r = tiny_run / "results"
    spend = json.loads((r / "plan/spend.json").read_text())
    z = spend["models"]["zeroshot"]  # the local decoder: gold sample + one label order
    assert z["parts"] == {"predict_gold": 1, "predict_gold_order": 1}
    assert z["actual"]["answers"] + z["reused"]["answers"] == 2 * 40
    assert z["planned"]["input_tokens"] > 0 and z["actual"]["cost_usd"] is None
    b = spend["benchmarks"]
    assert not b["missing"], b["missing"]  # every predict/train job wrote its benchmark file
    for rule in ("predict_shard", "predict_gold", "train_encoder", "cost_plan"):
        assert b["rules"][rule]["wall_hours"] > 0, rule
    # the encoder and the decoder request a GPU; the TF-IDF baseline does not
    assert b["models"]["encoder"]["gpu_hours"] > 0 and b["models"]["baseline"]["gpu_hours"] == 0
    assert b["rules"]["train_baseline"]["gpu_hours"] == 0
    html = (r / "report/index.html").read_text()
    assert "Spend: planned vs actual" in html and "GPU-hours requested" in html
    manifest = json.loads((r / "report/manifest.json").read_text())
    assert manifest["spend"]["models"]["zeroshot"]["planned"] == z["planned"]
