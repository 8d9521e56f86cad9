"""End to end on a real (single-node) SLURM: the tiny workflow with the SLURM profile.

Starts munged/slurmctld/slurmd (tests/workflow/slurm_cluster.py; installs slurm-wlm + munge with apt
when sbatch is missing), runs config/test.yaml through the executor plugin with a test profile
derived from profiles/slurm (init-seconds 2, squeue status), checks that the GPU rules were
submitted with a GPU request and the CPU rules without, and stops the daemons it started.

Run: pytest -m slurm tests/workflow/test_slurm.py   (root; ~3-4 min on 2 cores)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
import slurm_cluster  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

REPO = slurm_cluster.REPO
GPU_RULES = {"train_encoder", "predict_shard", "predict_gold"}


def make_test_profile(tmp: Path) -> Path:
    """profiles/slurm, made fit for a 2-CPU test node without accounting."""
    prof = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    prof.update({
        "jobs": 4, "latency-wait": 5, "retries": 0, "keep-going": False,
        "slurm-status-command": "squeue", "slurm-init-seconds-before-status-checks": 2,
        "slurm-no-account": True, "slurm-keep-successful-logs": True,
        "set-threads": {r: 1 for r in prof.get("set-threads", {})},
    })
    # the test node has a few GiB: keep the per-rule keys, shrink memory and drop GPU models
    for res in prof.get("set-resources", {}).values():
        res["mem_mb"] = min(int(res.get("mem_mb", 1000)), 3000)
        res.pop("gpu_model", None)
        res.pop("slurm_partition", None)
    out = tmp / "slurm-test-profile"
    out.mkdir()
    (out / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    try:
        slurm_cluster.ensure_installed()
    except slurm_cluster.SlurmUnavailable as exc:
        pytest.skip(f"SLURM unavailable: {exc}")
    root = Path(os.environ.get("TEXTGAUGE_SLURM_ROOT") or tmp_path_factory.mktemp("slurm"))
    try:
        c = slurm_cluster.start(root)
    except slurm_cluster.SlurmUnavailable as exc:
        pytest.skip(f"SLURM did not start: {exc}")
    try:
        yield c
    finally:
        slurm_cluster.stop(c)


def sbatch_calls(text: str) -> dict[str, list[str]]:
    """rule -> the sbatch command lines the plugin logged for it (snakemake --verbose)."""
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.search(r"sbatch call: (sbatch .*)", line)
        if not m:
            continue
        rule = re.search(r"--comment '?rule_([A-Za-z0-9_]+?)(?:_wildcards_\S*?)?'?(?:\s|$)",
                         m.group(1))
        out.setdefault(rule.group(1) if rule else "?", []).append(m.group(1))
    return out


def test_tiny_workflow_on_slurm(cluster, tmp_path):
    run, small = slurm_cluster.workflow_dir(tmp_path)
    profile = make_test_profile(tmp_path)
    env = {**cluster.env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    cmd = [sys.executable, "-m", "snakemake", "--workflow-profile", str(profile),
           "--configfile", "config/test.yaml", str(small), "--verbose", "--nolock"]
    t0 = time.monotonic()
    res = subprocess.run(cmd, cwd=run, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - t0
    log = res.stdout + res.stderr
    (tmp_path / "snakemake.log").write_text(log)
    print(f"SLURM end-to-end: {elapsed:.0f} s (log: {tmp_path / 'snakemake.log'})")
    assert res.returncode == 0, (log[-6000:] + "\n" + cluster.log_tail())
    assert (run / "results/report/index.html").exists()

    calls = sbatch_calls(log)
    # the fine-tuned encoder trains and classifies every shard on a GPU, and the local
    # decoder (transformers backend) classifies the gold set on one
    assert calls.get("train_encoder"), f"no sbatch call for train_encoder: {calls.keys()}"
    for rule in ("train_encoder", "predict_shard", "predict_gold"):
        for c in calls[rule]:
            if "baseline" in c:  # the TF-IDF baseline's shards run on CPU
                assert "--gpus" not in c and "--gres" not in c, f"baseline asked for a GPU: {c}"
                continue
            assert re.search(r"--gpus[= ]\S*1|--gres[= ]\S*gpu", c), f"{rule} without GPU: {c}"
    # the small CPU rules ask for no GPU
    for rule in ("ingest_corpus", "evaluate", "report", "train_baseline"):
        for c in calls.get(rule, []):
            assert "--gpus" not in c and "--gres" not in c, f"{rule} asked for a GPU: {c}"
    # the plugin's per-job logs
    logs = list((run / ".snakemake/slurm_logs").rglob("*.log"))
    assert any("rule_train_encoder" in str(p) for p in logs), logs[:5]
    shutil.rmtree(run / "results/models", ignore_errors=True)  # 90 MB of weights
