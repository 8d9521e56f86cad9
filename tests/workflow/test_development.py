"""The development sample for prompt iteration through snakemake (issue 11, item 6).

On a copy of the workflow with config/test.yaml and gold.development_size: 30: the dry run of
`snakemake development` plans the development jobs (and no gold coding); a real run of the
sample, sheets, simulated codes and import (~15 s) shows the development sample is apart
from gold and from the training data, with the right sizes; one evaluate_development run of
the prompted coder (~1.5 min: SmolLM2 on 30 texts) writes development metrics and no entry in
the gold-set ledger. With development_size 0, rule `all` plans no development job.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import copy_workflow, snakemake
from textgauge.errors import ConfigError
from textgauge.steps import gold as gold_steps

SIZE = 30
DEV = "results/development"
CONFIG = ("--configfile", "config/test.yaml", "config/dev.yaml")
DEV_RULES = {"sample_development", "development_sheets", "simulate_development_coding",
             "import_development_codes", "development_human_agreement",
             "predict_development", "evaluate_development", "development"}


def planned(proc) -> dict[str, int]:
    """rule -> job count from a dry run's job table."""
    out = proc.stdout + proc.stderr
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.fixture(scope="module")
def wd(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("development") / "wf")
    (wd / "config/dev.yaml").write_text(f"gold:\n  development_size: {SIZE}\n")
    return wd


@pytest.fixture(scope="module")
def coded(wd) -> Path:
    snakemake(wd, f"{DEV}/codes.json", f"{DEV}/sheets/codebook.md", *CONFIG)
    return wd


def test_lint_is_clean_with_a_development_sample(wd):
    res = snakemake(wd, "--lint", *CONFIG, check=False)
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Lints for" not in out, out[-4000:]


def test_dry_run_plans_the_development_jobs(wd):
    jobs = planned(snakemake(wd, "-n", "development", *CONFIG))
    n_models = 3  # config/test.yaml: encoder, zeroshot and baseline
    assert jobs["sample_development"] == 1 and jobs["development_sheets"] == 1
    assert jobs["simulate_development_coding"] == 1 and jobs["import_development_codes"] == 1
    assert jobs["development_human_agreement"] == 1
    assert jobs["predict_development"] == n_models
    assert jobs["evaluate_development"] == n_models
    # prompt iteration needs no gold codes, no gold predictions and no gold evaluation
    assert not {"import_codes", "simulate_coding", "coding_sheets", "human_agreement",
                "evaluate", "predict_gold", "report"} & set(jobs)


def test_all_plans_no_development_job(wd):
    for configs in (("--configfile", "config/test.yaml"), CONFIG):
        jobs = planned(snakemake(wd, "-n", *configs))
        assert "evaluate" in jobs and not DEV_RULES & set(jobs), jobs


def test_development_target_when_off_says_how_to_turn_it_on(wd):
    res = snakemake(wd, "-n", "development", "--configfile", "config/test.yaml", check=False)
    assert res.returncode != 0
    assert "gold.development_size" in res.stdout + res.stderr


def test_development_sample_is_apart_from_gold_and_training(coded):
    dev = pd.read_parquet(coded / f"{DEV}/sample.parquet")
    gold = pd.read_parquet(coded / "results/gold/sample.parquet")
    training = gold_steps.labelled_ids(str(coded / "resources/example/labelled_pool.csv"))
    assert len(dev) == SIZE and dev["id"].is_unique
    assert not set(dev["id"]) & set(gold["id"])
    assert training and not set(dev["id"]) & set(training)
    # stratified like gold: the same strata, proportional allocation
    assert set(dev["stratum"]) == set(gold["stratum"])
    summary = json.loads((coded / f"{DEV}/sample.json").read_text())
    gold_summary = json.loads((coded / "results/gold/sample.json").read_text())
    assert summary["size"] == SIZE and summary["excluded_gold_ids"] == len(gold)
    assert summary["seed"] != gold_summary["seed"]
    assert sum(summary["per_stratum"].values()) == SIZE
    assert summary["eligible"] == gold_summary["eligible"] - len(gold)


def test_development_sheets_codes_and_reference(coded):
    ids = set(pd.read_parquet(coded / f"{DEV}/sample.parquet")["id"])
    for coder in ("coder_a", "coder_b"):
        sheet = pd.read_csv(coded / f"{DEV}/sheets/{coder}.csv", dtype=str)
        assert set(sheet["id"]) == ids and len(sheet) == SIZE
        filled = pd.read_csv(coded / f"{DEV}/coded/{coder}.csv", dtype=str)
        assert set(filled["id"]) == ids and filled["label"].notna().all()
    ref = pd.read_parquet(coded / f"{DEV}/reference.parquet")
    assert set(ref["id"]) == ids
    counts = json.loads((coded / f"{DEV}/codes.json").read_text())["counts"]
    assert counts["sample_size"] == counts["evaluated"] == SIZE
    assert counts["codes"] == 2 * SIZE
    # the gold coding was not needed
    assert not (coded / "results/gold/codes.parquet").exists()


@pytest.mark.slow
def test_evaluate_development_writes_metrics_and_no_ledger_entry(coded):
    target = f"{DEV}/zeroshot/metrics.json"
    snakemake(coded, target, *CONFIG)
    m = json.loads((coded / target).read_text())
    assert m["evaluated_on"] == "development" and m["model"] == "zeroshot"
    assert m["n_gold"] == m["n_reference"] == SIZE
    human = json.loads((coded / f"{DEV}/human/metrics.json").read_text())
    assert m["human_ceiling"]["kappa"] == human["ceiling_kappa"]
    assert "development" in m["human_ceiling"]["from"]
    assert (coded / "results/predictions/zeroshot/development.parquet").exists()
    ledger = coded / "results/validation/ledger.jsonl"
    assert not ledger.exists() or not ledger.read_text().strip()


def test_development_size_larger_than_the_eligible_texts_is_refused(tmp_path):
    corpus = pd.DataFrame({"id": [f"t{i}" for i in range(20)], "text": ["x"] * 20})
    corpus.to_parquet(tmp_path / "corpus.parquet")
    corpus.head(12).to_parquet(tmp_path / "gold.parquet")
    kw = {"corpus": str(tmp_path / "corpus.parquet"), "labelled": None,
          "sample": str(tmp_path / "dev.parquet"), "summary": str(tmp_path / "dev.json"),
          "strata": [], "seed": 2, "gold": str(tmp_path / "gold.parquet")}
    with pytest.raises(ConfigError, match="development_size is 10, but only 8"):
        gold_steps.sample_gold(size=10, **kw)
    gold_steps.sample_gold(size=8, **kw)
    assert set(pd.read_parquet(tmp_path / "dev.parquet")["id"]) == {f"t{i}"
                                                                   for i in range(12, 20)}
