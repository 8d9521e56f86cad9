"""The model-assisted gold design (textgauge.data.design): cells, allocation, inclusion
probabilities, reproducibility, texts without an answer, and blinding."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textgauge.data.coding import coding_sheet
from textgauge.data.design import (
    FIRST_PASS_COLUMNS,
    NO_ANSWER,
    confidence_bands,
    sample_model_assisted,
    water_fill,
)
from textgauge.errors import ConfigError, InputDataError
from textgauge.stats.design import gold_design


def _corpus(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n, p=[0.03, 0.57, 0.40])
    logits = rng.normal(0, 1, (n, 3))
    logits[np.arange(n), truth] += 2.5
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    labels = np.array(["rare", "a", "b"])
    corpus = pd.DataFrame({"id": [f"t{i:05d}" for i in range(n)], "text": "some text",
                           "party": rng.choice(["L", "R"], n)})
    fp = pd.DataFrame({"id": corpus["id"], "label": labels[p.argmax(1)],
                       "confidence": p.max(1), "status": "ok",
                       **{f"prob_{lab}": p[:, j] for j, lab in enumerate(labels)}})
    return corpus, fp, labels[truth]


def test_bands_are_quantiles_within_each_predicted_label():
    labels = pd.Series(["a"] * 6 + ["b"] * 3)
    conf = pd.Series([0.9, 0.5, 0.6, 0.99, 0.7, 0.8, 0.4, np.nan, 0.95])
    bands = confidence_bands(labels, conf, 3)
    assert bands.tolist()[:6] == [2, 0, 0, 2, 1, 1]
    assert bands.tolist()[6:] == [1, 0, 2]  # no confidence: the lowest band
    with pytest.raises(ConfigError, match="confidence_bands"):
        confidence_bands(labels, conf, 0)


def test_water_fill_is_proportional_and_capped():
    alloc = water_fill(np.array([5, 100, 100]), 60, np.array([10.0, 1.0, 1.0]))
    assert alloc.tolist() == [5, 28, 27] or alloc.tolist() == [5, 27, 28]
    assert water_fill(np.array([3, 3]), 10, np.array([1.0, 0.0])).tolist() == [3, 3]


def test_model_assisted_sample_oversamples_rare_labels_and_edge_cases():
    corpus, fp, _ = _corpus()
    sample, design = sample_model_assisted(corpus, fp, 300, ["party"], seed=4, n_bands=3)
    assert len(sample) == 300 and sample["id"].is_unique
    assert set(FIRST_PASS_COLUMNS) <= set(sample.columns)
    assert (sample["design"] == "model_assisted").all()
    assert design["cell_n"].sum() == 300 and (design["cell_n"] >= 2).all()
    # every predicted label gets at least size // (2 x labels) = 50 items
    per_label = design.groupby("predicted")["cell_n"].sum()
    assert (per_label >= 50).all()
    # the rare predicted label is sampled at a much higher rate than the corpus share
    rate = design.groupby("predicted").apply(lambda d: d["cell_n"].sum() / d["cell_size"].sum(),
                                             include_groups=False)
    assert rate["rare"] > 3 * rate["a"]
    # within a label the least confident band is sampled at the highest rate (edge cases)
    a = design[design["predicted"] == "a"].groupby("band")["inclusion_prob"].mean()
    assert a[0] > a[2]
    # the inclusion probability of each item is its cell's n / N
    merged = sample.merge(design[["cell", "cell_n", "cell_size"]], on="cell",
                          suffixes=("", "_d"))
    assert np.allclose(merged["inclusion_prob"], merged["cell_n"] / merged["cell_size_d"])
    # the same inputs and seed: the same sample
    again, _ = sample_model_assisted(corpus, fp, 300, ["party"], seed=4, n_bands=3)
    pd.testing.assert_frame_equal(sample, again)
    other, _ = sample_model_assisted(corpus, fp, 300, ["party"], seed=5, n_bands=3)
    assert set(other["id"]) != set(sample["id"])


def test_design_weights_recover_the_corpus_total_and_the_truth_share():
    corpus, fp, truth = _corpus()
    sample, _ = sample_model_assisted(corpus, fp, 300, [], seed=1)
    d = gold_design(sample, sample)
    assert d.weighted and d.weights is not None
    assert d.weights.sum() == pytest.approx(len(corpus))
    # the weighted share of true 'rare' texts estimates the corpus share (3%) without the
    # over-sampling's bias; unweighted it is far higher
    is_rare = pd.Series(truth, index=corpus["id"]).loc[sample["id"]].eq("rare").to_numpy()
    weighted = float((d.weights * is_rare).sum() / d.weights.sum())
    assert abs(weighted - 0.03) < 0.02
    assert is_rare.mean() > 2 * weighted
    # an item without a reference moves its share to its cell (nonresponse adjustment)
    d2 = gold_design(sample.iloc[1:], sample)
    assert d2.weights.sum() == pytest.approx(len(corpus))
    with pytest.raises(InputDataError, match="not in the gold sample"):
        gold_design(pd.DataFrame({"id": ["nope"]}), sample)


def test_texts_without_a_first_pass_answer_are_sampled_never_dropped():
    corpus, fp, _ = _corpus(1000)
    fp.loc[:19, "status"] = "failed"
    fp = fp.iloc[10:]  # ten eligible texts the first pass never saw
    sample, design = sample_model_assisted(corpus, fp, 200, [], seed=2)
    none = design[design["predicted"] == NO_ANSWER]
    assert int(none["cell_size"].sum()) == 20
    assert (sample["first_pass_label"] == NO_ANSWER).sum() == int(none["cell_n"].sum()) >= 2


def test_impossible_designs_say_what_to_change():
    corpus, fp, _ = _corpus(500)
    with pytest.raises(ConfigError, match="confidence_bands"):
        sample_model_assisted(corpus, fp, 20, ["party"], seed=1, n_bands=5)
    with pytest.raises(ConfigError, match="min_per_label"):
        sample_model_assisted(corpus, fp, 100, [], seed=1, min_per_label=60)
    with pytest.raises(InputDataError, match="only 500 eligible"):
        sample_model_assisted(corpus, fp, 600, [], seed=1)
    with pytest.raises(InputDataError, match="'label'"):
        sample_model_assisted(corpus, fp.drop(columns="label"), 100, [], seed=1)


def test_coding_sheets_never_show_the_first_pass():
    corpus, fp, _ = _corpus(1000)
    sample, _ = sample_model_assisted(corpus, fp, 100, [], seed=3)
    sheet = coding_sheet(sample, "coder_a", seed=1)
    assert not set(sheet.columns) & {*FIRST_PASS_COLUMNS, "cell", "inclusion_prob"}
    assert not sheet.astype(str).apply(lambda c: c.str.contains("band")).any().any()


def test_a_proportional_sample_is_weighted_only_when_strata_were_topped_up():
    """Rounding never makes a proportional sample unequal by a whole item; gold.min_per_stratum
    does, and then the strata are weighted (the topped-up small stratum counts less)."""
    from textgauge.data.gold import sample_gold
    from textgauge.stats.design import beyond_rounding

    rng = np.random.default_rng(0)
    corpus = pd.DataFrame({"id": [f"t{i:04d}" for i in range(2000)], "text": "x",
                           "party": rng.choice(["big", "mid", "small"], 2000,
                                               p=[0.6, 0.38, 0.02])})
    plain = sample_gold(corpus, 100, ["party"], seed=1)
    assert beyond_rounding(plain) < 1
    d = gold_design(plain, plain)
    assert not d.weighted and d.weights is None
    topped = sample_gold(corpus, 100, ["party"], seed=1, min_per_stratum=20)
    assert beyond_rounding(topped) >= 10
    d = gold_design(topped, topped)
    assert d.weighted and d.weights.sum() == pytest.approx(2000)
    small = (topped["party"] == "small").to_numpy()
    assert d.weights[small].max() < d.weights[~small].min()
    assert "min_per_stratum" in d.info["reason"]


def test_the_gold_step_records_the_minimum_applied_and_refuses_min_per_stratum(tmp_path):
    """sample.json states the minimum per predicted label the allocation used (the default
    counts the labels the first pass predicts); gold.min_per_stratum, a proportional option,
    is refused with a model_assisted design instead of being ignored."""
    import json

    from textgauge.steps.gold import sample_gold as step

    corpus, fp, _ = _corpus(2000)
    fp.loc[fp["label"] == "b", "label"] = "a"  # a codebook label the first pass never gives
    corpus.to_parquet(tmp_path / "corpus.parquet")
    fp.to_parquet(tmp_path / "fp.parquet")
    kw = {"corpus": str(tmp_path / "corpus.parquet"), "labelled": None, "size": 120,
          "strata": [], "seed": 1, "labels": ["rare", "a", "b"], "design": "model_assisted",
          "first_pass": "baseline", "first_pass_predictions": str(tmp_path / "fp.parquet"),
          "sample": str(tmp_path / "s.parquet"), "summary": str(tmp_path / "s.json")}
    step(**kw)
    block = json.loads((tmp_path / "s.json").read_text())["design"]
    assert block["min_per_label"] == 120 // (2 * 2)
    assert block["predicted_counts"]["b"] == 0
    with pytest.raises(ConfigError, match="min_per_stratum"):
        step(**kw, min_per_stratum=5)
