"""One plan for GPU time (textgauge.planning.runtime): walltime requests from input size."""

from __future__ import annotations

import pandas as pd
import pytest

from textgauge.planning import runtime as rt


def test_runtime_request_has_a_margin_and_a_floor():
    # 90,000 texts at 10 texts/s: 150 minutes, x1.5 -> 225
    assert rt.runtime_minutes(90_000, 10.0) == 225
    # tiny jobs ask for the floor, never 0
    assert rt.runtime_minutes(40, 500.0) == rt.FLOOR_MINUTES
    assert rt.runtime_minutes(90_000, 10.0, margin=1.0, floor=0) == 150


def test_gpu_engine_matches_the_rules_gpu_resource():
    assert rt.gpu_engine({"kind": "encoder"}) == "encoder"
    assert rt.gpu_engine({"kind": "lora"}) == "lora"
    assert rt.gpu_engine({"kind": "prompt", "backend": "vllm"}) == "vllm"
    assert rt.gpu_engine({"kind": "prompt"}) == "transformers"  # the schema's default backend
    assert rt.gpu_engine({"kind": "prompt", "backend": "openai"}) is None
    assert rt.gpu_engine({"kind": "baseline"}) is None


def test_throughput_configured_then_measured_then_default(tmp_path):
    m = {"kind": "encoder"}
    assert rt.inference_throughput(m) == (rt.DEFAULT_THROUGHPUT["encoder"],
                                          "default (placeholder)")
    assert rt.inference_throughput(m, (42.0, 3))[0] == 42.0
    thr, source = rt.inference_throughput({**m, "plan": {"throughput_texts_per_s": 7}},
                                          (42.0, 3))
    assert (thr, source) == (7.0, "config")
    # measured: prediction rows over the wall seconds of the job's benchmark file
    (tmp_path / "predictions/enc").mkdir(parents=True)
    (tmp_path / "benchmarks/predict/enc").mkdir(parents=True)
    for stem, n, s in (("shard-0000", 300, 10.0), ("shard-0001", 100, 10.0)):
        pd.DataFrame({"id": range(n)}).to_parquet(tmp_path / f"predictions/enc/{stem}.parquet")
        (tmp_path / f"benchmarks/predict/enc/{stem}.tsv").write_text(
            f"s\th:m:s\tmax_rss\tcpu_time\n{s}\t0:00:10\t100.0\t9.0\n")
    assert rt.measured_throughput(str(tmp_path), "enc") == (pytest.approx(20.0), 2)
    assert rt.measured_throughput(str(tmp_path), "other") is None


def test_rows_without_loading(tmp_path):
    pd.DataFrame({"id": range(7)}).to_parquet(tmp_path / "a.parquet")
    (tmp_path / "b.csv").write_text('id,text\n1,"two\nlines"\n2,x\n')
    assert rt.count_rows(tmp_path / "a.parquet") == 7
    assert rt.count_rows(tmp_path / "b.csv") == 2  # a quoted newline is one record
    assert rt.count_rows(tmp_path / "missing.csv") is None


def test_training_texts_and_shards():
    assert rt.training_texts({"epochs": 4}, 700) == 2800
    assert rt.training_texts({"epochs": 2, "max_train_items": 100}, 700) == 200
    assert rt.shard_sizes(10, 4) == [3, 3, 2, 2]


def test_benchmark_na_is_unknown(tmp_path):
    p = tmp_path / "b.tsv"
    p.write_text("s\th:m:s\tmax_rss\tcpu_time\nNA\tNA\tNA\tNA\n")
    assert rt.read_benchmark(p) is None
    assert rt.read_benchmark(tmp_path / "none.tsv") is None
