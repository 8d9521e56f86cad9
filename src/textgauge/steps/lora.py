"""Rules of workflow/rules/lora.smk: the label-noise check and LoRA / QLoRA fine-tuning."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.data.sheets import write_csv
from textgauge.errors import InputDataError
from textgauge.io import build_manifest, write_json_atomic
from textgauge.options import LoraModel

log = logging.getLogger("textgauge")


def label_noise(*, train: str, sheet: str, summary: str, labels: Sequence[str], seed: int,
                method: str = "tfidf_logreg", folds: int = 5,
                encoder: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Rule label_noise: results/training/label_issues.csv (ranked review sheet) + .json."""
    from textgauge.training.label_noise import find_issues, review_sheet

    df = pd.read_parquet(train)
    missing = {"id", "text", "label"} - set(df.columns)
    if missing:
        raise InputDataError(f"{train} lacks column(s) {sorted(missing)}.")
    table, info = find_issues(df, list(labels), method, folds, seed, encoder,
                              work_dir=Path(sheet).parent)
    write_csv(review_sheet(table), sheet)
    write_json_atomic(info, summary)
    log.info("label-noise check (%s): %d of %d training labels flagged for review -> %s",
             method, info["n_issues"], info["n_train"], sheet)
    return info


def train_lora(*, train: str, val: str, sample: str | None, prompt: str | None = None, adapter: str,
               summary: str, settings: Mapping[str, Any], labels: Mapping[str, str],
               instructions: str = "", model: str = "lora",
               threads: int | None = None, scale: str = "nominal") -> dict[str, Any]:
    """Rule train_lora: results/models/{model}/adapter/ and training.json."""
    from textgauge.inference.prompting import PromptTemplate
    from textgauge.training.lora import train_lora as train_adapter

    if threads:
        import torch

        torch.set_num_threads(threads)
    opts = LoraModel.from_dict(settings, f"models.{model}")
    template = PromptTemplate.from_file(prompt or opts.prompt, labels, instructions,
                                        scale=scale)
    info = train_adapter(pd.read_parquet(train), pd.read_parquet(val), list(labels), opts,
                         template, str(Path(adapter).parent),
                         forbidden_ids=(list(pd.read_parquet(sample)["id"].astype(str))
                                        if sample else []))
    for w in info["warnings"]:
        log.warning(w)
    info["manifest"] = build_manifest("train_lora", None, model=model,
                                      model_config=dict(settings))
    write_json_atomic(info, summary)
    return info
