"""Planning the gold design: expected CI half-widths under proportional vs model_assisted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textgauge.errors import InputDataError
from textgauge.planning.gold_design import (
    plan_designs,
    plan_table,
    recommendation,
    truth_probabilities,
)
from textgauge.stats.samplesize import samplesize_cli

LABELS = ["rare", "common", "other"]


def first_pass(n: int = 6000, prev=(0.03, 0.57, 0.40), signal: float = 2.5,
               seed: int = 0) -> pd.DataFrame:
    """A class-balanced first pass: softmax(N(0, 1) + signal on the true class)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(prev), size=n, p=prev)
    logit = rng.normal(0, 1, (n, len(prev)))
    logit[np.arange(n), truth] += signal
    p = np.exp(logit)
    p /= p.sum(axis=1, keepdims=True)
    df = pd.DataFrame({"id": [f"t{i:05d}" for i in range(n)],
                       "label": np.asarray(LABELS)[p.argmax(axis=1)],
                       "confidence": p.max(axis=1)})
    for j, lab in enumerate(LABELS):
        df[f"prob_{lab}"] = p[:, j]
    df["status"] = "ok"
    return df


@pytest.fixture(scope="module")
def plan() -> dict:
    return plan_designs(first_pass(), LABELS, 300, studies=60, seed=3, n_boot=200)


def test_rare_label_is_narrower_under_model_assisted(plan):
    p, m = plan["designs"]["proportional"], plan["designs"]["model_assisted"]
    assert plan["rare_label"] == "rare"
    assert m["f1"]["rare"] < 0.8 * p["f1"]["rare"]
    # the design puts far more gold items on the rare predicted label
    assert m["gold_by_predicted"]["rare"] > 2 * p["gold_by_predicted"]["rare"]
    assert sum(m["gold_by_predicted"].values()) == pytest.approx(300)
    assert sum(p["gold_by_predicted"].values()) == pytest.approx(300)
    assert plan["predicted_counts"]["rare"] == int((first_pass()["label"] == "rare").sum())
    for d in (p, m):
        assert 0 < d["kappa"] < 0.2 and 0 < d["macro_f1"] < 0.3
        # the bootstrap half-width and z x the SD over studies agree roughly
        assert d["kappa"] == pytest.approx(d["kappa_sd_half_width"], rel=0.35)
    assert "model_assisted gives the narrower" in recommendation(plan)
    assert "'rare'" in plan["recommendation"]


def test_plan_is_seeded_and_json_ready(plan):
    import json

    again = plan_designs(first_pass(), LABELS, 300, studies=60, seed=3, n_boot=200)
    assert json.dumps(plan, sort_keys=True) == json.dumps(again, sort_keys=True)


def test_truth_probabilities_fall_back_to_the_label():
    df = first_pass(20)
    df.loc[0, [f"prob_{lab}" for lab in LABELS]] = np.nan
    df.loc[1, "status"] = "error"
    df.loc[1, [f"prob_{lab}" for lab in LABELS]] = np.nan
    df.loc[1, "label"] = None
    p = truth_probabilities(df, LABELS)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    assert p[0].tolist() == [float(lab == df.loc[0, "label"]) for lab in LABELS]
    # no answer and no probabilities: the corpus's mean probabilities
    np.testing.assert_allclose(p[1], np.delete(p, 1, axis=0).mean(axis=0))


def test_strata_make_more_cells():
    df = first_pass(3000, seed=1)
    strata = pd.DataFrame({"id": df["id"], "party": np.where(np.arange(3000) % 3, "A", "B")})
    plan = plan_designs(df, LABELS, 200, strata_frame=strata, studies=5, seed=0, n_boot=50)
    assert plan["designs"]["proportional"]["n_cells"] == 2
    assert plan["designs"]["model_assisted"]["n_cells"] == 18


def test_cli_prints_the_table(tmp_path, capsys):
    path = tmp_path / "baseline.parquet"
    first_pass(4000, seed=2).to_parquet(path)
    rc = samplesize_cli(["design", "--predictions", str(path), "--size", "300",
                         "--studies", "20", "--seed", "1"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "proportional" in out and "model_assisted" in out
    assert "F1 rare" in out and "kappa" in out
    assert "gives the narrower 95% CI for the F1 of the rarest label 'rare'" in out


def test_cli_via_textgauge_command(tmp_path, capsys):
    from textgauge.cli import main

    path = tmp_path / "p.csv"
    first_pass(1500, seed=4).to_csv(path, index=False)
    assert main(["samplesize", "design", "--predictions", str(path), "--size", "120",
                 "--studies", "5", "--labels", "rare,common,other"]) == 0
    assert "model_assisted" in capsys.readouterr().out


@pytest.mark.parametrize("missing", ["label", "confidence"])
def test_cli_names_the_missing_column(tmp_path, capsys, missing):
    path = tmp_path / "bad.csv"
    first_pass(500).drop(columns=[missing]).to_csv(path, index=False)
    rc = samplesize_cli(["design", "--predictions", str(path), "--size", "100",
                         "--studies", "3"])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"no '{missing}' column" in err


def test_bad_inputs():
    df = first_pass(200)
    with pytest.raises(InputDataError, match="exceeds"):
        plan_designs(df, LABELS, 500, studies=2)
    with pytest.raises(InputDataError, match="repeat ids"):
        plan_designs(pd.concat([df, df.iloc[:1]]), LABELS, 50, studies=2)
    with pytest.raises(InputDataError, match="'id'"):
        plan_designs(df, LABELS, 50, studies=2, strata_frame=df[["label"]])


def test_table_lists_every_label(plan):
    table = plan_table(plan)
    for lab in LABELS:
        assert f"F1 {lab}" in table
