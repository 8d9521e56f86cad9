"""The workflow lints clean, dry-runs with a job table, and plans its jobs (textgauge.planning.jobs).

Each snakemake call here takes a few seconds (no job runs); they use a run folder whose
workflow files are links into the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from textgauge.planning import jobs as jobplan

REPO = Path(__file__).resolve().parents[2]
LINKED = ["Snakefile", "workflow", "scripts", "prompts", "resources", "config.yaml", "config",
          "envs", "profiles"]


@pytest.fixture(scope="module")
def rundir(tmp_path_factory):
    run = tmp_path_factory.mktemp("dryrun")
    for name in LINKED:
        (run / name).symlink_to(REPO / name)
    return run


def snakemake(run: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=run, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_lint_reports_nothing(rundir):
    res = snakemake(rundir, "--lint", "--configfile", "config/test.yaml")
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "Lints for" not in out, out[-4000:]


def test_dry_run_prints_the_job_table(rundir):
    res = snakemake(rundir, "-n", "--configfile", "config/test.yaml")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    counts = jobplan.parse_job_stats(out)
    # encoder and baseline classify the corpus (2 shards each); the decoder gold only
    assert counts["predict_shard"] == 4 and counts["train_encoder"] == 1, counts
    assert counts["train_baseline"] == 1
    assert counts["evaluate"] == 3 and counts["report"] == 1
    assert "total" not in counts


def test_dry_run_of_the_replication_target(rundir):
    res = snakemake(rundir, "replication", "-n", "--configfile", "config/test.yaml")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    assert jobplan.parse_job_stats(out).get("replication") == 1


def test_job_plan_with_the_slurm_profile(rundir):
    plan = jobplan.plan_jobs(["--configfile", "config/test.yaml", "--workflow-profile",
                              "profiles/slurm"], cwd=str(rundir), timeout=120)
    assert plan.resources_known, plan.notes
    r = plan.rules
    assert r["train_encoder"].gpu_jobs == 1 and r["predict_shard"].gpu_jobs == 2
    # the TF-IDF baseline asks for no GPU: neither its fit nor its 2 shards
    assert r["train_baseline"].gpu_jobs == 0 and r["predict_shard"].jobs == 4
    # the prompted coder of config/test.yaml is a local decoder (transformers): GPU jobs for
    # the gold set and its positional-audit re-run (reversed order)
    assert r["predict_gold"].gpu_jobs == 1 and r["predict_gold_order"].gpu_jobs == 1
    # (+ the prompt-variant re-runs, where config.yaml's audits.prompt_variants reach it)
    variants = r["predict_gold_variant"].gpu_jobs if "predict_gold_variant" in r else 0
    assert plan.gpu_jobs == 5 + variants
    # runtimes from each job's texts and the model's throughput (workflow/rules/runtime.smk),
    # not fixed walltimes in the profile: the tiny run's GPU jobs each ask for the floor
    from textgauge.planning.runtime import FLOOR_MINUTES

    assert plan.gpu_hours == pytest.approx(plan.gpu_jobs * FLOOR_MINUTES / 60)
    # threads are the rules' requests (set-threads), not capped at the local cores
    assert r["train_encoder"].cpu_hours == pytest.approx(8 * FLOOR_MINUTES / 60)
    text = jobplan.format_plan(plan)
    assert "train_encoder" in text and "gpu-h" in text


def test_jobplan_cli_json(rundir, capsys):
    rc = jobplan.jobplan_cli(["--json", "-d", str(rundir), "--", "--configfile",
                              "config/test.yaml"])
    assert rc == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["total_jobs"] == sum(r["jobs"] for r in data["rules"].values())
    # 2 shards each for the encoder (GPU) and the TF-IDF baseline (CPU)
    assert data["rules"]["predict_shard"]["jobs"] == 4
    assert data["rules"]["predict_shard"]["gpu_jobs"] == 2


# ------------------------------------------------------------------ parsing, no snakemake
TABLE = """Building DAG of jobs...
Job stats:
job                   count
------------------  -------
ingest_corpus             1
predict_shard          1000
all                       1
total                  1002

Reasons:
"""


def test_parse_job_stats():
    assert jobplan.parse_job_stats(TABLE) == {"ingest_corpus": 1, "predict_shard": 1000,
                                              "all": 1}
    assert jobplan.parse_job_stats("Nothing to be done.") == {}


def test_summarise_counts_gpu_hours_and_gres():
    jobs = [{"rule": "train_encoder", "threads": 4, "resources": {"runtime": 120, "gpu": 2}},
            {"rule": "predict_shard", "threads": 1, "resources": {"runtime": 60,
                                                                  "gres": "gpu:a100:1"}},
            {"rule": "report", "threads": 1, "resources": {"runtime": 30, "gpu": 0}}]
    plan = jobplan.summarise({"train_encoder": 1, "predict_shard": 1, "report": 1}, jobs)
    assert plan.gpu_jobs == 2
    assert plan.gpu_hours == pytest.approx(2 * 2 + 1)
    assert plan.cpu_hours == pytest.approx(4 * 2 + 1 + 0.5)
    assert not plan.notes


def test_summarise_without_per_job_records_falls_back_to_counts():
    plan = jobplan.summarise({"a": 3, "b": 1}, [])
    assert plan.total_jobs == 4 and not plan.resources_known and plan.notes


def _design_config(run: Path, **gold) -> str:
    import yaml

    cfg = yaml.safe_load((run / "config/test.yaml").read_text())
    cfg["gold"].update(gold)
    name = f"design_{abs(hash(repr(sorted(gold.items()))))}.yaml"
    (run / name).write_text(yaml.safe_dump(cfg))
    return name


def test_a_model_assisted_gold_sample_waits_for_its_first_pass(rundir):
    """gold.design model_assisted: the baseline (the default first pass) is trained and
    classifies the corpus before the gold sample is drawn; the training split no longer
    waits for the gold sample (no cycle), the gold sample keeps out of the split."""
    cfg = _design_config(rundir, design="model_assisted")
    res = snakemake(rundir, "-n", "--configfile", cfg, "--forceall", "-p",
                    "results/gold/sample.parquet")
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-4000:]
    counts = jobplan.parse_job_stats(out)
    assert counts["sample_gold"] == 1 and counts["train_baseline"] == 1, counts
    assert counts["predict_shard"] == 2 and "train_encoder" not in counts, counts
    # proportional without a first pass: the gold sample needs nothing but the corpus
    res = snakemake(rundir, "-n", "--configfile", _design_config(rundir, first_pass=None),
                    "--forceall", "results/gold/sample.parquet")
    counts = jobplan.parse_job_stats(res.stdout + res.stderr)
    assert set(counts) == {"ingest_corpus", "sample_gold"}, counts


@pytest.mark.parametrize(("gold", "message"), [
    ({"design": "model_assisted", "first_pass": "zeroshot"}, "has scope: gold"),
    ({"design": "model_assisted", "first_pass": "nobody"}, "not a configured model"),
    ({"design": "stratified"}, "gold.design"),
])
def test_a_first_pass_that_cannot_design_the_sample_is_refused(rundir, gold, message):
    res = snakemake(rundir, "-n", "--configfile", _design_config(rundir, **gold))
    out = res.stdout + res.stderr
    assert res.returncode != 0 and message in out, out[-3000:]
