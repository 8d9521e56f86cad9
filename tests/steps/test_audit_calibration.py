"""Step audit_model with a calibrated coder: the review queue ranks on the calibrated
``confidence`` (not ``confidence_raw``), and audit.json has the ECE and the review-queue
subsets on gold before calibration beside the calibrated ones."""

from __future__ import annotations

import pandas as pd

from tests.steps.test_audit_prevalence import _audit, _files


def test_review_queue_uses_calibrated_confidence(tmp_path):
    _files(tmp_path)
    preds = pd.read_parquet(tmp_path / "preds.parquet")
    # the raw confidence ranks the texts in the opposite order: the queue must not follow it
    preds["confidence_raw"] = 1.5 - preds["confidence"]
    preds.to_parquet(tmp_path / "preds.parquet")
    res, _ = _audit(tmp_path)
    queue = pd.read_csv(tmp_path / "out" / "review_queue.csv", dtype={"id": str})
    gold = set(pd.read_parquet(tmp_path / "reference.parquet")["id"])
    rest = preds[~preds["id"].isin(gold)].sort_values(["confidence", "id"])
    assert list(queue["id"]) == list(rest["id"].head(len(queue)))
    assert queue["confidence"].max() <= rest["confidence"].quantile(0.11)
    cal = res["calibration"]
    assert cal["calibrated"] and cal["ece"] != cal["ece_uncalibrated"]
    assert 0 <= cal["ece_uncalibrated"] <= 1 and cal["mce_uncalibrated"] >= cal["ece_uncalibrated"]
    before = {r["subset"]: r for r in cal["review_uncalibrated"]["kappa"]}
    after = {r["subset"]: r for r in res["review"]["kappa"]}
    assert before["all_gold"]["accuracy"] == after["all_gold"]["accuracy"]
    assert before["auto_accepted"]["n"] + before["reviewed"]["n"] == before["all_gold"]["n"]
    assert cal["review_uncalibrated"]["threshold"] != res["review"]["threshold"]


def test_no_raw_confidence_no_before_figures(tmp_path):
    _files(tmp_path)
    res, _ = _audit(tmp_path)
    cal = res["calibration"]
    assert not cal["calibrated"] and cal["ece_uncalibrated"] is None
    assert cal["review_uncalibrated"] is None
