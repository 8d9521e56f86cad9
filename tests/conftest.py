"""Shared fixtures: a copy of the workflow in a temp dir, and one tiny end-to-end run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ("Snakefile", "config.yaml", "workflow", "scripts", "prompts", "resources",
                  "config", "profiles", "envs")
SHARED_DATA = next((p for p in (REPO.parent / "shared" / "data", Path("/work/shared/data"))
                    if p.exists()), None)

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def copy_workflow(dest: Path) -> Path:
    """A runnable copy of the workflow (no results), so tests never touch the checkout's."""
    dest.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / part)
    return dest


def snakemake(workdir: Path, *args: str, check: bool = True,
              timeout: int = 1200) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "snakemake"
    cmd = [str(exe), "--cores", "2", *args]
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
    return proc


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole DAG on the tiny test config, once per session (about 1-3 minutes)."""
    wd = copy_workflow(tmp_path_factory.mktemp("tiny") / "wf")
    snakemake(wd, "--configfile", "config/test.yaml")
    return wd


@pytest.fixture
def shared_data() -> Path:
    if SHARED_DATA is None:
        pytest.skip("../shared/data is absent: the real-data test needs "
                    "benoit2016_immigration (skipped, not failed)")
    return SHARED_DATA
