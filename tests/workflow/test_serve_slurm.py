"""A managed server (``serve: true``) on a real single-node SLURM (tests/workflow/slurm_cluster.py):
rule serve_model and the served coder's predict jobs are submitted as ONE group job (one
sbatch, the server's GPU, the members' memory summed), the predict jobs reach the server on
the node at 127.0.0.1, and the server is stopped when they end. With the tiny fake OpenAI
server (tests/fake_openai_server.py) as ``serve_command``: no vLLM needed.

Run: pytest -m slurm tests/workflow/test_serve_slurm.py   (root; about a minute on 2 cores)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))
from test_serve_workflow import FAKE, N_CORPUS, logged_pid, pid_gone, served_workflow  # noqa: E402
from test_slurm import cluster, make_test_profile, sbatch_calls  # noqa: E402, F401

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

SHARDS = ("results/predictions/served/shard-0000.parquet",
          "results/predictions/served/shard-0001.parquet")


def test_server_and_its_predict_jobs_are_one_slurm_job(cluster, tmp_path):  # noqa: F811
    requests = tmp_path / "requests.jsonl"
    cmd = [sys.executable, str(FAKE), "--port", "{port}", "--model", "{model}",
           "--requests", str(requests)]
    wd = served_workflow(tmp_path / "wf", {"model": "fake-model", "serve_command": cmd,
                                           "limits": {"serve_timeout": 60}})
    profile = make_test_profile(tmp_path)
    prof = yaml.safe_load((profile / "config.yaml").read_text())
    # the predict jobs of a served coder are HTTP clients: small, no cores (docs/cluster.md)
    prof.pop("set-threads", None)
    for rule in ("predict_shard", "predict_gold"):
        prof["set-resources"][rule]["mem_mb"] = 500
    prof["set-resources"]["serve_model"]["mem_mb"] = 1000
    (profile / "config.yaml").write_text(yaml.safe_dump(prof, sort_keys=False))
    env = {**cluster.env, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    t0 = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "snakemake", "--workflow-profile", str(profile),
                          *SHARDS, "--verbose", "--nolock"], cwd=wd, env=env,
                         capture_output=True, text=True, timeout=600)
    log = res.stdout + res.stderr
    (tmp_path / "snakemake.log").write_text(log)
    print(f"served coder on SLURM: {time.monotonic() - t0:.0f} s")
    assert res.returncode == 0, log[-6000:] + "\n" + cluster.log_tail()

    calls = sbatch_calls(log)
    group = [c for cs in calls.values() for c in cs if "serve_model" in c]
    assert len(group) == 1, calls  # one submission: the server with its predict jobs
    assert "predict_shard" in group[0] and "--gpus=1" in group[0]
    assert "--mem 2000" in group[0]  # 1000 (server) + 2 x 500 (clients), summed
    assert not calls.get("predict_shard") and not calls.get("serve_model")

    for part in SHARDS:
        df = pd.read_parquet(wd / part)
        assert (df["status"] == "ok").all() and set(df["served_model"]) == {"fake-model"}
    assert len(requests.read_text().splitlines()) == N_CORPUS
    slog = (wd / "results/logs/serve/served.log").read_text()
    assert "the predict jobs are done; stopping the server" in slog
    assert pid_gone(logged_pid(slog, "server pid"))
