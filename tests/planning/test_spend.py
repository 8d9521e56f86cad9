"""Spend after the run (textgauge.planning.spend): usage summed, reuse apart, priced."""

from __future__ import annotations

import pandas as pd
import pytest

from textgauge.planning import spend as sp
from textgauge.planning.prices import load_prices


def _preds(n: int, reused: int = 0, cached: int = 0) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"t{i}" for i in range(n)], "status": "ok",
                         "usage_prompt_tokens": 1000, "usage_completion_tokens": 5,
                         "usage_cached_tokens": cached,
                         "answer_reused": [i < reused for i in range(n)]})


def test_usage_is_summed_and_reused_answers_are_apart():
    u = sp.usage_totals(_preds(10, reused=4, cached=600))
    assert u["recorded"]
    assert u["asked"] == {"answers": 6, "input_tokens": 6000, "output_tokens": 30,
                          "cached_tokens": 3600, "cache_write_tokens": 0}
    assert u["reused"]["answers"] == 4 and u["reused"]["input_tokens"] == 4000
    both = sp.add_usage(u, sp.usage_totals(_preds(2)))
    assert both["asked"]["answers"] == 8 and both["asked"]["input_tokens"] == 8000
    # a file without usage columns (an encoder): recorded False, zeros
    none = sp.usage_totals(pd.DataFrame({"id": ["a"], "status": ["ok"]}))
    assert not none["recorded"] and none["asked"]["answers"] == 1


def test_priced_with_the_dated_table_cached_and_batch():
    prices = load_prices()
    tokens = {"input_tokens": 1_000_000, "output_tokens": 1_000_000, "cached_tokens": 500_000}
    p = sp.price_usage(tokens, "gpt-4o-mini", prices=prices)
    price = prices["models"]["gpt-4o-mini"]
    want = (0.5 * price["input"] + 0.5 * price["cached_input"] + price["output"])
    assert p["cost_usd"] == pytest.approx(want) and p["price_as_of"] == "2025-11-01"
    assert sp.price_usage(tokens, "gpt-4o-mini", prices=prices, batch=True)["cost_usd"] \
        == pytest.approx(want / 2)
    assert sp.price_usage(tokens, "my-local-llm", "local", prices)["cost_usd"] is None


def test_model_spend_against_the_plan():
    usage = sp.add_usage(sp.usage_totals(_preds(10, reused=2)), sp.usage_totals(_preds(5)))
    planned = {"input_tokens": 15_100, "output_tokens": 60, "cost_expected_usd": 0.01}
    e = sp.model_spend("api", usage, {"predict_gold": 1, "predict_gold_order": 1}, planned,
                       "gpt-4o-mini", "openai")
    assert e["actual"]["answers"] == 13 and e["reused"]["answers"] == 2
    assert e["actual"]["cost_usd"] > 0 and e["reused"]["cost_usd"] > 0
    # the plan covers every answer: reused ones included in the comparison
    assert e["input_tokens_vs_plan"] == pytest.approx(15_000 / 15_100 - 1)
    assert e["planned"]["cost_expected_usd"] == 0.01


def test_benchmarks_per_rule_and_model_and_missing_ones_said():
    recs = [{"path": "r/benchmarks/predict/enc/shard-0000.tsv", "s": 3600.0, "cpu_time": 10},
            {"path": "r/benchmarks/predict/enc/shard-0001.tsv", "s": 1800.0, "cpu_time": 10},
            {"path": "r/benchmarks/predict/api/gold.tsv", "s": 360.0, "cpu_time": 1},
            {"path": "r/benchmarks/train_encoder/enc.tsv", "s": 7200.0, "cpu_time": 1},
            {"path": "r/benchmarks/ingest_corpus.tsv", "s": 36.0, "cpu_time": 1}]
    expected = [r["path"] for r in recs[:4]] + ["r/benchmarks/predict/api/gold-order-x.tsv"]
    b = sp.benchmark_summary(recs, {"enc": 1, "api": 0}, expected)
    assert b["rules"]["predict_shard"]["gpu_hours"] == pytest.approx(1.5)
    assert b["rules"]["predict_gold"]["gpu_hours"] == 0  # an API coder: no GPU
    assert b["rules"]["predict_gold"]["wall_hours"] == pytest.approx(0.1)
    assert b["models"]["enc"]["gpu_hours"] == pytest.approx(3.5)
    assert b["rules"]["ingest_corpus"]["jobs"] == 1 and "ingest_corpus" not in b["models"]
    assert b["missing"] == ["r/benchmarks/predict/api/gold-order-x.tsv"]
    assert "1 of 5" in b["notes"][0]
    empty = sp.benchmark_summary([], {"enc": 1})
    assert empty["files"] == 0 and "unknown" in empty["notes"][0]
    assert empty["total"]["gpu_hours"] == 0


def test_rule_of_a_file():
    assert sp.part_of("x/gold-variant-2.parquet") == ("predict_gold_variant", "gold-variant-2")
    assert sp.part_of("x/gold-order-reversed.tsv")[0] == "predict_gold_order"
    assert sp.part_of("x/shard-0003.parquet")[0] == "predict_shard"
    assert sp.benchmark_rule("res/benchmarks/evaluate/enc.tsv") == ("evaluate", "enc")
    assert sp.benchmark_rule("res/benchmarks/cost_plan.tsv") == ("cost_plan", None)
