"""`snakemake cost_plan` for real, and one plan: the job plan and the cost plan agree.

The bundled example with the SLURM profile once asked for 30 GPU-hours in its job plan
(fixed walltimes: 240 minutes per shard) while the cost plan sized the same run at 0.01.
Now every GPU job's ``runtime`` comes from its texts and the model's throughput
(workflow/rules/runtime.smk, textgauge.planning.runtime) and the cost plan sums the same
requests. The cost plan also counts few-shot examples (in every prompt) and prompt-variant
re-runs.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import copy_workflow, snakemake
from textgauge.planning import jobs as jobplan
from textgauge.planning import runtime as rt

SLURM = ["--workflow-profile", "profiles/slurm", "--forceall"]


def _plan(wd):
    return json.loads((wd / "results/plan/plan.json").read_text())


def _agree(wd, plan, extra=()):
    jp = jobplan.plan_jobs([*SLURM, *extra], cwd=str(wd), timeout=120)
    assert jp.resources_known, jp.notes
    t = plan["totals"]
    # the same requests: the GPU jobs' walltimes sum to the cost plan's requested GPU-hours
    assert jp.gpu_hours == pytest.approx(t["gpu_hours_requested"], rel=0.02)
    # and those are the estimate (texts / throughput) with the margin, or the floor per job
    assert t["gpu_hours"] <= jp.gpu_hours
    assert jp.gpu_hours <= t["gpu_hours"] * rt.MARGIN + jp.gpu_jobs * rt.FLOOR_MINUTES / 60
    return jp


@pytest.mark.slow
def test_cost_plan_runs_and_agrees_with_the_job_plan(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    snakemake(wd, "cost_plan")  # the bundled example (config.yaml)
    plan = _plan(wd)
    assert (wd / "results/plan/plan.md").read_text().startswith("# Cost and job plan")
    m = plan["models"]
    n_gold = m["zeroshot"]["texts"]
    audits = yaml.safe_load((wd / "config.yaml").read_text())["audits"]
    n_orders = len(audits.get("positional_orders") or [])
    n_variants = len((audits.get("prompt_variants") or {}).get("zeroshot") or [])
    # the gold sample, each label order and each paraphrased prompt
    assert m["zeroshot"]["requests"] == (1 + n_orders + n_variants) * n_gold
    # the encoder's training is planned from the training split (epochs x texts)
    assert m["encoder"]["training"]["texts_x_epochs"] > 0
    assert plan["jobs"]["train_encoder"] == 1
    jp = _agree(wd, plan)
    assert jp.gpu_hours < 3, jobplan.format_plan(jp)  # not the 30 of fixed walltimes
    assert (wd / "results/benchmarks/cost_plan.tsv").exists()

    # few-shot examples and a paraphrased prompt: only cost_plan reruns, and it counts them
    over = {"models": {"zeroshot": {"few_shot": 2}},
            "audits": {"prompt_variants": {"zeroshot": ["prompts/zeroshot_paraphrase1.jinja"]}}}
    (wd / "more.yaml").write_text(yaml.safe_dump(over))
    more = ["--configfile", "config.yaml", "more.yaml"]
    snakemake(wd, "cost_plan", *more)
    plan2 = _plan(wd)
    z1, z2 = m["zeroshot"], plan2["models"]["zeroshot"]
    assert z2["few_shot_examples"] == 2 * 4  # two per label, in every prompt
    assert z2["run"]["prefix_tokens_per_request"] > z1["run"]["prefix_tokens_per_request"] + 50
    assert z2["requests"] == (2 + n_orders) * n_gold
    assert plan2["jobs"]["predict_gold_variant"] == 1
    assert z2["prompt_variants"]["n_requests"] == n_gold
    assert (z2["input_tokens"] / z2["requests"]) > (z1["input_tokens"] / z1["requests"]) + 50
    _agree(wd, plan2, more)
