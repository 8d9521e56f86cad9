"""Rules train_encoder -> predict_shard -> gather_predictions as the workflow calls them
(steps.finetune, steps.infer), on a tiny BERT: the temperature fitted on the validation
split reaches the predictions, and truncated texts are counted in training.json, flagged in
the predictions and counted in the gathered manifest."""

from __future__ import annotations

import json
import os
import random

import numpy as np
import pandas as pd
import pytest

from tests.tiny_models import tiny_bert
from textgauge.steps import finetune, infer

os.environ.setdefault("TQDM_DISABLE", "1")
WORDS = [f"w{i}" for i in range(20)] + ["alpha"]
LABELS = {"major": "the usual case", "minor": "texts about alpha"}


def _texts(n: int, seed: int, prefix: str) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        minor = rng.random() < 0.3
        words = rng.sample(WORDS[:-1], 4) + (["alpha"] if minor else [])
        rows.append({"id": f"{prefix}{i:03d}", "text": " ".join(words),
                     "label": "minor" if minor else "major"})
    return pd.DataFrame(rows)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_calibration_and_truncation_through_the_steps(tmp_path):
    import torch

    torch.set_num_threads(1)
    base = tiny_bert(tmp_path / "tinybert", WORDS, hidden=32)
    train, val, corpus = _texts(80, 1, "t"), _texts(40, 2, "v"), _texts(30, 3, "c")
    corpus.loc[:1, "text"] = " ".join(WORDS * 2)  # 42 words: longer than max_length 16
    for name, df in (("train", train), ("val", val), ("corpus", corpus)):
        df.to_parquet(tmp_path / f"{name}.parquet")
    pd.DataFrame({"id": ["g1"]}).to_parquet(tmp_path / "sample.parquet")
    settings = {"kind": "encoder", "base_model": str(base), "epochs": 2, "learning_rate": 1e-3,
                "max_length": 16, "warmup_ratio": 0.0, "seed": 3, "class_weights": "none",
                "class_balance": "oversample"}
    summary = tmp_path / "models/enc/training.json"
    finetune.train_encoder(train=str(tmp_path / "train.parquet"),
                           val=str(tmp_path / "val.parquet"),
                           sample=str(tmp_path / "sample.parquet"),
                           model_dir=str(tmp_path / "models/enc/model"), summary=str(summary),
                           settings=settings, labels=list(LABELS), model="enc", threads=1)
    trained = json.loads(summary.read_text())
    t = trained["calibration"]["temperature"]
    assert trained["calibration"]["n"] == 40 and trained["class_balance"]["n_added"] > 0
    parts = []
    for k, rows in enumerate((corpus.iloc[:15], corpus.iloc[15:])):
        rows.to_parquet(tmp_path / f"shard{k}.parquet")
        parts.append(str(tmp_path / f"pred{k}.parquet"))
        infer.predict(texts=str(tmp_path / f"shard{k}.parquet"), predictions=parts[-1],
                      settings=settings, labels=LABELS, model="enc", trained=str(summary),
                      threads=1)
    infer.gather_predictions(parts=parts, predictions=str(tmp_path / "enc.parquet"),
                             manifest=str(tmp_path / "enc.manifest.json"), settings=settings,
                             model="enc")
    pred = pd.read_parquet(tmp_path / "enc.parquet")
    manifest = json.loads((tmp_path / "enc.manifest.json").read_text())
    assert pred["truncated"].tolist() == [True, True] + [False] * 28
    assert manifest["n_truncated"] == 2
    assert manifest["calibration"] == {"method": "temperature", "fit_on": "validation",
                                       "temperature": pytest.approx(t)}
    # the probabilities are softmax(logits / T): undo T on them and the raw confidence returns
    probs = pred[["prob_major", "prob_minor"]].to_numpy()
    logits = np.log(probs) * t
    raw = np.exp(logits - logits.max(axis=1, keepdims=True))
    raw /= raw.sum(axis=1, keepdims=True)
    assert np.allclose(raw.max(axis=1), pred["confidence_raw"], atol=1e-6)
    assert np.allclose(probs.max(axis=1), pred["confidence"])
