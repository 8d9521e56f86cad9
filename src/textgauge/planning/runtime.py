"""One plan for GPU time: the ``runtime`` a GPU job requests and the GPU-hours the cost plan
sizes come from the same function of the job's input size and the model's throughput.

Before, SLURM jobs asked for fixed walltimes (240 minutes per shard) while the cost plan sized
the same run from throughput: 30 GPU-hours against 0.01 for the bundled example. Now each GPU
rule's ``runtime`` resource (minutes, as Snakemake and SLURM use it) is

    max(floor, ceil(texts / throughput / 60 x margin))

with ``texts`` the texts of the job's input (the shard, the gold sample; epochs x training
texts for training) and ``throughput`` the model's ``plan.throughput_texts_per_s`` when set,
else the texts per second measured in an earlier run (its Snakemake benchmark files beside
its prediction files), else a placeholder per engine. ``textgauge plan-jobs`` (a dry run of
the workflow) sums these requests, and the cost plan (``planning.cost.plan_models``) reports
the same sums beside the estimate without margin.

Standard library only: the workflow loads this file beside Snakemake even where textgauge is
not installed there (``--sdm conda``), as it loads ``textgauge.secrets``.
"""

from __future__ import annotations

import csv
import glob
import math
import os
from collections.abc import Mapping
from typing import Any

#: requested walltime = estimate x MARGIN (model loading, a slower node, a retry inside the job)
MARGIN = 1.5
#: no GPU job asks for less than this many minutes (queue granularity, start-up of the engine)
FLOOR_MINUTES = 10

#: Texts per second of one GPU when a model sets no ``plan.throughput_texts_per_s`` and no
#: earlier run measured it. Rough placeholders for inference with a 1-8B decoder (vLLM:
#: continuous batching; transformers: one forward pass per text) or a base-size encoder.
DEFAULT_THROUGHPUT = {"transformers": 20.0, "vllm": 100.0, "local-server": 100.0,
                      "encoder": 500.0, "lora": 20.0}
#: Training texts per second (each epoch passes every training text once): placeholders.
DEFAULT_TRAIN_THROUGHPUT = {"encoder": 50.0, "lora": 5.0}
#: where an earlier run's benchmark files of a model's prediction jobs live, under results/
BENCH_PREDICT = "benchmarks/predict"


def runtime_minutes(n_texts: float, throughput: float, margin: float = MARGIN,
                    floor: float = FLOOR_MINUTES) -> int:
    """The walltime (minutes) a job over ``n_texts`` at ``throughput`` texts/s requests."""
    est = float(n_texts) / float(throughput) / 60.0
    return int(max(math.ceil(floor), math.ceil(est * margin)))


def gpu_engine(m: Mapping[str, Any]) -> str | None:
    """The local GPU engine of a model's raw config (None: no GPU job, as ``uses_gpu``)."""
    kind = m.get("kind")
    if kind in ("encoder", "lora"):
        return kind
    if kind == "prompt" and m.get("backend", "transformers") in ("transformers", "vllm"):
        return m.get("backend", "transformers")
    return None


def count_rows(path: str | os.PathLike) -> int | None:
    """Rows of a data file without loading it (parquet metadata, CSV records, JSONL lines);
    None when the file is absent or unreadable here."""
    p = os.fspath(path)
    if not os.path.exists(p):
        return None
    try:
        if p.endswith(".parquet"):
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        if p.endswith((".jsonl", ".ndjson")):
            with open(p, encoding="utf-8") as fh:
                return sum(1 for line in fh if line.strip())
        if p.endswith((".csv", ".tsv")):
            with open(p, encoding="utf-8", newline="") as fh:
                rows = csv.reader(fh, delimiter="\t" if p.endswith(".tsv") else ",")
                return max(0, sum(1 for _ in rows) - 1)
    except Exception:  # noqa: BLE001 - an estimate falls back to other sources
        return None
    return None


def read_benchmark(path: str | os.PathLike) -> dict[str, float] | None:
    """The first record of a Snakemake benchmark file: wall seconds ``s``, ``cpu_time``,
    ``max_rss`` (MB); None when absent or unreadable (``NA`` values become None)."""
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
    except OSError:
        return None
    if not rows:
        return None

    def num(v: Any) -> float | None:
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    r = rows[0]
    s = num(r.get("s"))
    if s is None:
        return None
    return {"s": s, "cpu_time": num(r.get("cpu_time")), "max_rss": num(r.get("max_rss"))}


def measured_throughput(results: str, model: str) -> tuple[float, int] | None:
    """Texts per second of a model's prediction jobs in an earlier run: the rows of each
    prediction file over the wall seconds of its benchmark file (model loading included, so
    conservative); with the number of jobs it is measured on. None without such pairs."""
    texts = seconds = 0.0
    n = 0
    for bench in sorted(glob.glob(os.path.join(results, BENCH_PREDICT, model, "*.tsv"))):
        stem = os.path.splitext(os.path.basename(bench))[0]
        rows = count_rows(os.path.join(results, "predictions", model, stem + ".parquet"))
        rec = read_benchmark(bench)
        if rows and rec and rec["s"] > 0:
            texts += rows
            seconds += rec["s"]
            n += 1
    if not n or seconds <= 0:
        return None
    return texts / seconds, n


def inference_throughput(m: Mapping[str, Any], measured: tuple[float, int] | None = None
                         ) -> tuple[float, str]:
    """(texts/s, where it comes from) for a model's inference jobs: configured, measured in
    an earlier run, or the engine's placeholder."""
    thr = (m.get("plan") or {}).get("throughput_texts_per_s")
    if thr:
        return float(thr), "config"
    if measured:
        return float(measured[0]), f"measured (earlier run, {measured[1]} job(s))"
    engine = gpu_engine(m) or "local-server"
    return DEFAULT_THROUGHPUT[engine], "default (placeholder)"


def training_throughput(m: Mapping[str, Any]) -> tuple[float, str]:
    """(training texts/s, source): ``plan.train_throughput_texts_per_s`` or a placeholder."""
    thr = (m.get("plan") or {}).get("train_throughput_texts_per_s")
    if thr:
        return float(thr), "config"
    return DEFAULT_TRAIN_THROUGHPUT.get(str(m.get("kind")), 50.0), "default (placeholder)"


def training_texts(m: Mapping[str, Any], n_train: int) -> int:
    """Texts a training job passes over: epochs x training texts (capped by max_train_items)."""
    cap = m.get("max_train_items")
    n = min(int(n_train), int(cap)) if cap else int(n_train)
    return int(m.get("epochs") or 1) * n


def shard_sizes(n_texts: int, shards: int) -> list[int]:
    """Texts per shard when ``n_texts`` are cut into ``shards`` near-equal parts."""
    shards = max(1, int(shards))
    base, extra = divmod(int(n_texts), shards)
    return [base + (1 if i < extra else 0) for i in range(shards)]
