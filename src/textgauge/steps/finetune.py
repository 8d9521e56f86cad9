"""Rules of workflow/rules/finetune.smk: the train/validation split, encoder fine-tuning and
the TF-IDF + logistic-regression baseline."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.data import splits
from textgauge.data.sheets import read_csv as read_sheet_csv
from textgauge.errors import ConfigError
from textgauge.io import build_manifest, write_json_atomic, write_parquet_atomic
from textgauge.options import BaselineModel, EncoderModel

log = logging.getLogger("textgauge")


def _gold_ids(sample: str | None) -> list:
    """The gold ids a trainer must never see (none yet when a first pass designs the gold
    sample: it is drawn later, outside the training split)."""
    return list(pd.read_parquet(sample)["id"]) if sample else []


def split_training(*, corpus: str, rejects: str | None, sample: str | None,
                   labelled: str | None,
                   train: str, val: str, summary: str, labels: Sequence[str],
                   id_column: str = "id", label_column: str = "label",
                   label_map: Mapping[str, str] | None = None, val_fraction: float = 0.2,
                   seed: int = 1) -> None:
    """Rule split_training: labelled texts split into train and validation, gold held out.

    ``sample`` is None when a first pass designs the gold sample (gold.design
    model_assisted): the gold sample is then drawn after training, from texts outside this
    split (rule sample_gold excludes them), so there is nothing to hold out here.
    """
    if not labelled:
        raise ConfigError("Fine-tuned models need labelled training data: set training.labelled "
                          "to a file with id and label columns.")
    df = pd.read_parquet(corpus)
    gold_ids = list(pd.read_parquet(sample)["id"]) if sample else []
    rejected = set(read_sheet_csv(rejects, dtype=str)["id"]) if rejects else None
    table = splits.read_labelled(labelled, labels, df, id_column, label_column,
                                 dict(label_map or {}) or None, rejected)
    tr, va, info = splits.split_train_val(table, gold_ids, val_fraction, seed)
    write_parquet_atomic(tr, train)
    write_parquet_atomic(va, val)
    write_json_atomic(info, summary)


def train_encoder(*, train: str, val: str, sample: str | None, model_dir: str, summary: str,
                  settings: Mapping[str, Any], labels: Sequence[str], model: str,
                  threads: int | None = None) -> None:
    """Rule train_encoder: results/models/{model}/model/ and training.json."""
    from textgauge.training.encoder import train_encoder as fit

    if threads:
        import torch

        torch.set_num_threads(threads)
    opts = EncoderModel.from_dict(settings, f"models.{model}")
    info = fit(pd.read_parquet(train), pd.read_parquet(val), list(labels), opts,
               str(Path(model_dir).parent),
               forbidden_ids=_gold_ids(sample))
    for w in info["warnings"]:
        log.warning(w)
    info["manifest"] = build_manifest("train_encoder", None, model=model,
                                      model_config=dict(settings))
    write_json_atomic(info, summary)


def train_baseline(*, train: str, val: str, sample: str | None, model_dir: str, summary: str,
                   settings: Mapping[str, Any], labels: Sequence[str], model: str) -> None:
    """Rule train_baseline: results/models/{model}/model/ (JSON + .npz, no pickle) and
    training.json (sizes, class weights, validation macro-F1, vocabulary, versions)."""
    from textgauge.training.baseline import fit_baseline, save_baseline

    opts = BaselineModel.from_dict(settings, f"models.{model}")
    pipe, info = fit_baseline(pd.read_parquet(train), pd.read_parquet(val), list(labels), opts,
                              forbidden_ids=_gold_ids(sample),
                              sources=(train, val))
    info["model_sha256"] = save_baseline(pipe, list(labels), model_dir)
    for w in info["warnings"]:
        log.warning(w)
    log.info("%s: fitted on %d texts, validation macro-F1 %s, %d n-grams", model,
             info["n_train"], info["val_macro_f1"], info["vocabulary_size"])
    info["manifest"] = build_manifest("train_baseline", None, model=model,
                                      model_config=dict(settings))
    write_json_atomic(info, summary)
