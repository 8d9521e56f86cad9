"""Steps of workflow/rules/lora.smk (textgauge.steps.lora)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

pytest.importorskip("cleanlab")

from tests.training.test_label_noise import LABELS, synthetic  # noqa: E402
from textgauge.steps import lora  # noqa: E402


def test_stage_writes_review_sheet(tmp_path):
    df, flipped = synthetic(seed=3)
    train = tmp_path / "train.parquet"
    df.to_parquet(train)
    out_csv, out_json = tmp_path / "label_issues.csv", tmp_path / "label_issues.json"
    summary = lora.label_noise(train=str(train), sheet=str(out_csv), summary=str(out_json),
                               labels=LABELS, seed=3)
    sheet = pd.read_csv(out_csv, dtype={"id": str}, keep_default_na=False)
    for col in ("rank", "id", "text", "given_label", "suggested_label", "self_confidence",
                "reviewed_label", "note"):
        assert col in sheet.columns
    assert len(sheet) == summary["n_issues"] > 0
    assert sheet["self_confidence"].is_monotonic_increasing
    assert len(set(sheet["id"]) & flipped) > len(flipped) / 2
    assert json.loads(out_json.read_text())["method"] == "tfidf_logreg"
