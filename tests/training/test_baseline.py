"""The TF-IDF + logistic-regression baseline: fit, save without pickle, load, predict."""

from __future__ import annotations

import json
import random

import numpy as np
import pandas as pd
import pytest

from textgauge.errors import ConfigError, InputDataError
from textgauge.options import BaselineModel, model_options
from textgauge.training.baseline import (
    ARRAYS_FILE,
    BaselinePredictor,
    fit_baseline,
    make_pipeline,
    probabilities,
    save_baseline,
)

LABELS = ["economic", "security", "moral"]
WORDS = {
    "economic": ["taxes", "budget", "jobs", "prices", "growth", "wages", "deficit", "trade"],
    "security": ["crime", "border", "police", "threat", "safety", "terror", "army", "prison"],
    "moral": ["duty", "fairness", "decency", "values", "compassion", "dignity", "shame", "right"],
}
FILLER = "the we must our country about this bill people will house members today".split()


def corpus(n: int, seed: int, shares: tuple[float, ...] = (1 / 3, 1 / 3, 1 / 3),
           prefix: str = "t") -> pd.DataFrame:
    """Texts with label words and filler; about one in ten carries another label's word."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        lab = rng.choices(LABELS, weights=shares)[0]
        words = rng.sample(FILLER, 5) + rng.sample(WORDS[lab], 2)
        if rng.random() < 0.1:
            words.append(rng.choice(WORDS[rng.choice(LABELS)]))
        rng.shuffle(words)
        rows.append({"id": f"{prefix}{i:04d}", "text": " ".join(words), "label": lab})
    return pd.DataFrame(rows)


def cfg(**kw) -> BaselineModel:
    return BaselineModel.from_dict({"kind": "baseline", **kw}, "models.baseline")


def test_fit_save_load_gives_identical_probabilities(tmp_path):
    train, val, test = corpus(240, 1), corpus(60, 2, prefix="v"), corpus(50, 3, prefix="g")
    pipe, summary = fit_baseline(train, val, LABELS, cfg())
    digest = save_baseline(pipe, LABELS, tmp_path / "model")
    pred = BaselinePredictor(tmp_path / "model")
    assert pred.labels == LABELS and pred.sha256 == digest
    texts = list(test["text"]) + ["", "words never seen in training", "TAXES Taxes taxés"]
    in_memory = probabilities(pipe.named_steps["tfidf"], pipe.named_steps["logreg"], texts,
                              len(LABELS))
    loaded = pred.predict_proba(texts)
    assert np.abs(in_memory - loaded).max() <= 1e-12
    # the pipeline's own predict_proba (classes are label indices in codebook order)
    assert np.abs(pipe.predict_proba(texts) - loaded).max() <= 1e-12
    df = pred.predict([f"x{i}" for i in range(len(texts))], texts, batch_size=7)
    assert list(df.columns) == ["id", "label", "confidence", "prob_economic", "prob_security",
                                "prob_moral", "status", "raw"]
    assert np.allclose(df[[f"prob_{lab}" for lab in LABELS]].sum(axis=1), 1.0)
    assert (df["confidence"] == df[[f"prob_{lab}" for lab in LABELS]].max(axis=1)).all()
    assert (df["status"] == "ok").all() and df["label"].isin(LABELS).all()
    assert summary["n_train"] == 240 and summary["n_val"] == 60
    assert summary["val_macro_f1"] > 0.8 and summary["vocabulary_size"] > 20
    assert summary["sklearn_version"] and summary["seed"] == 13
    json.dumps(summary)  # training.json is JSON


def test_the_saved_model_needs_no_pickle(tmp_path):
    pipe, _ = fit_baseline(corpus(120, 4), corpus(30, 5, prefix="v"), LABELS, cfg())
    save_baseline(pipe, LABELS, tmp_path)
    with np.load(tmp_path / ARRAYS_FILE, allow_pickle=False) as z:
        assert {"idf", "coef", "intercept", "classes"} <= set(z.files)
        assert all(z[k].dtype != object for k in z.files)
    assert not list(tmp_path.glob("*.pkl")) and not list(tmp_path.glob("*.joblib"))


def test_fitting_is_reproducible(tmp_path):
    train, val = corpus(200, 6), corpus(50, 7, prefix="v")
    save_baseline(fit_baseline(train, val, LABELS, cfg(seed=3))[0], LABELS, tmp_path / "a")
    save_baseline(fit_baseline(train, val, LABELS, cfg(seed=3))[0], LABELS, tmp_path / "b")
    for name in ("baseline.json", "vocabulary.json", ARRAYS_FILE):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_balanced_class_weights():
    train = corpus(300, 8, shares=(0.8, 0.15, 0.05))
    _, summary = fit_baseline(train, corpus(40, 9, prefix="v"), LABELS, cfg())
    counts = train["label"].value_counts()
    for lab in LABELS:
        assert summary["class_weights"][lab] == pytest.approx(
            len(train) / (3 * counts[lab]), abs=1e-4)
    assert summary["class_weights_rule"].startswith("balanced")
    assert make_pipeline().named_steps["logreg"].class_weight == "balanced"
    _, flat = fit_baseline(train, corpus(40, 9, prefix="v"), LABELS,
                           cfg(class_weights="none"))
    assert set(flat["class_weights"].values()) == {1.0}
    with pytest.raises(ConfigError, match="balanced or none"):
        cfg(class_weights="inverse_frequency")


def test_oversampling_the_minority_labels():
    """class_balance: oversample copies minority texts (seeded) up to the majority count;
    the counts go into training.json; with balanced class weights it is refused."""
    train = corpus(300, 8, shares=(0.8, 0.15, 0.05))
    val = corpus(40, 9, prefix="v")
    _, s = fit_baseline(train, val, LABELS, cfg(class_weights="none",
                                                class_balance="oversample"))
    b = s["class_balance"]
    major = int(train["label"].value_counts().max())
    assert b["counts_after"] == {lab: major for lab in LABELS}
    assert b["counts_before"] == s["train_label_counts"] and s["n_train"] == 300
    assert b["n_after"] == 3 * major
    _, capped = fit_baseline(train, val, LABELS, cfg(class_weights="none",
                                                     class_balance="oversample",
                                                     oversample_cap=100))
    assert capped["class_balance"]["counts_after"]["moral"] == 100
    assert fit_baseline(train, val, LABELS, cfg())[1]["class_balance"] == {"method": "none"}
    with pytest.raises(ConfigError, match="class_weights: none"):
        cfg(class_balance="oversample")


def test_an_unknown_label_names_file_row_and_column():
    train = corpus(50, 10)
    train.loc[17, "label"] = "economy"
    with pytest.raises(InputDataError, match=r"train\.parquet, row 18 \(id t0017\), column "
                                             r"'label': 'economy' is not a label"):
        fit_baseline(train, corpus(10, 11, prefix="v"), LABELS, cfg(),
                     sources=("results/training/train.parquet", "val.parquet"))


def test_a_label_without_training_examples_is_an_error():
    train = corpus(60, 12)
    train = train[train["label"] != "moral"]
    with pytest.raises(InputDataError, match="no example of \\['moral'\\]"):
        fit_baseline(train, corpus(10, 13, prefix="v"), LABELS, cfg())


def test_gold_ids_in_training_are_refused():
    train = corpus(60, 14)
    with pytest.raises(InputDataError, match="gold test id"):
        fit_baseline(train, corpus(10, 15, prefix="v"), LABELS, cfg(),
                     forbidden_ids=["t0003"])


def test_empty_and_missing_texts_are_handled(tmp_path):
    train = corpus(90, 16)
    train.loc[3, "text"] = ""
    train.loc[4, "text"] = None
    pipe, summary = fit_baseline(train, corpus(20, 17, prefix="v"), LABELS, cfg())
    assert summary["n_empty_train_texts"] == 2
    save_baseline(pipe, LABELS, tmp_path)
    df = BaselinePredictor(tmp_path).predict(["a", "b", "c"], ["", None, float("nan")])
    assert (df["status"] == "ok").all()
    # no features: every empty text gets the same (intercept-only) probabilities
    probs = df[[f"prob_{lab}" for lab in LABELS]].to_numpy()
    assert np.allclose(probs, probs[0]) and np.allclose(probs.sum(axis=1), 1.0)


def test_binary_codebook(tmp_path):
    labels = ["economic", "security"]
    train = corpus(150, 18)
    train = train[train["label"].isin(labels)]
    pipe, _ = fit_baseline(train, train.head(10), labels, cfg(ngram_max=1, min_df=1))
    save_baseline(pipe, labels, tmp_path)
    texts = ["taxes and jobs", "crime at the border", ""]
    loaded = BaselinePredictor(tmp_path).predict_proba(texts)
    assert loaded.shape == (3, 2)
    assert np.abs(pipe.predict_proba(texts) - loaded).max() <= 1e-12
    assert loaded[0].argmax() == 0 and loaded[1].argmax() == 1


def test_options_and_kind_dispatch():
    m = model_options({"kind": "baseline"}, "baseline")
    assert isinstance(m, BaselineModel)
    assert m.ngram_max == 2 and m.C == 1.0 and m.class_weights == "balanced"
    assert "limits" not in m.answer_settings()
    with pytest.raises(ConfigError, match="ngram_maxx.*ngram_max"):
        model_options({"kind": "baseline", "ngram_maxx": 3}, "baseline")


def test_the_report_and_methods_describe_the_baseline_honestly():
    from textgauge.reporting.methods import coder_sentence
    from textgauge.reporting.report import _describe_model

    settings = {"kind": "baseline", "scope": "corpus", "ngram_max": 2, "min_df": 2, "C": 1.0,
                "class_weights": "balanced", "seed": 13}
    training = {"n_train": 720, "n_val": 180, "val_macro_f1": 0.6859, "vocabulary_size": 1478,
                "sklearn_version": "1.9.1"}
    what = ("TF-IDF word 1-2-grams + logistic regression (balanced class weights), fitted on "
            "the 720 training texts")
    text = coder_sentence("baseline", settings, {}, training, 4)
    assert what in text and "validation macro-F1 0.69 on 180 texts" in text
    assert "1,478 n-grams" in text and "fine-tuned" not in text
    assert _describe_model(settings, {}, training) == f"{what}; scope: corpus."
    unweighted = coder_sentence("b", {**settings, "class_weights": "none", "ngram_max": 1},
                                {}, {}, 4)
    assert "word unigrams + logistic regression (unweighted)" in unweighted
    assert "unrecorded training texts" in unweighted


def test_predict_step_writes_coder_predictions(tmp_path):
    """steps.infer.predict runs a baseline like any trained coder (its training.json beside
    the model folder), vectorised over the shard."""
    from textgauge.steps.infer import predict

    pipe, summary = fit_baseline(corpus(150, 20), corpus(30, 21, prefix="v"), LABELS, cfg())
    folder = tmp_path / "models" / "baseline"
    save_baseline(pipe, LABELS, folder / "model")
    (folder / "training.json").write_text(json.dumps(summary))
    shard = corpus(25, 22, prefix="s")
    shard.drop(columns="label").to_parquet(tmp_path / "shard.parquet")
    out = tmp_path / "pred.parquet"
    predict(texts=str(tmp_path / "shard.parquet"), predictions=str(out),
            settings={"kind": "baseline"}, labels={lab: lab for lab in LABELS},
            model="baseline", trained=str(folder / "training.json"),
            limits={"inference_batch_size": 10})
    df = pd.read_parquet(out)
    assert list(df["id"]) == list(shard["id"]) and (df["status"] == "ok").all()
    assert {"label", "confidence", "raw", "model", "backend", "model_revision", "prompt_hash",
            "run_timestamp", "error"} <= set(df.columns)
    assert df["backend"].iloc[0].startswith("scikit-learn")
    assert (df["label"] == shard["label"]).mean() > 0.8
