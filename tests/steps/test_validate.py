"""Steps of workflow/rules/validate.smk (textgauge.steps.validate), called directly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from textgauge.steps.validate import evaluate, human_agreement

LABELS = ["economic", "moral", "security", "rights"]


def test_evaluate_counts_invalid_and_unanswered_items_as_errors(tmp_path):
    rng = np.random.default_rng(3)
    n = 120
    ids = [f"g{i:03d}" for i in range(n)]
    truth = rng.choice(LABELS, n)
    pd.DataFrame({"id": ids, "reference": truth}).to_parquet(tmp_path / "reference.parquet")
    pd.DataFrame({"id": ids, "party": rng.choice(["A", "B"], n)}).to_parquet(
        tmp_path / "sample.parquet")
    codes = pd.concat([pd.DataFrame({"id": ids, "coder": c, "label": truth})
                       for c in ("a", "b")])
    codes.to_parquet(tmp_path / "codes.parquet")
    pred = np.where(rng.random(n) < 0.8, truth, rng.choice(LABELS, n))
    preds = pd.DataFrame({"id": ids, "label": pred, "status": "ok", "confidence": 0.8})
    preds.loc[:4, ["label", "status"]] = [None, "invalid"]
    preds = preds.iloc[:-3]  # three gold items never answered
    preds.to_parquet(tmp_path / "preds.parquet")
    kw = {"labels": LABELS, "seed": 1, "kappa_threshold": 0.7, "confidence": 0.95,
          "bootstrap": 300}
    human_agreement(codes=str(tmp_path / "codes.parquet"), sample=str(tmp_path / "sample.parquet"),
                    truth=None, coders=None, metrics=str(tmp_path / "human.json"),
                    pairwise=str(tmp_path / "pairwise.csv"), **kw)
    out = {k: str(tmp_path / f"{k}.out") for k in ("metrics", "per_class", "confusion",
                                                  "per_stratum", "vs_coders")}
    m = evaluate(model="m", predictions=str(tmp_path / "preds.parquet"),
                 reference=str(tmp_path / "reference.parquet"), codes=str(tmp_path / "codes.parquet"),
                 sample=str(tmp_path / "sample.parquet"), human=str(tmp_path / "human.json"),
                 **out, strata=["party"], **kw)
    assert m["n_gold"] == m["n_evaluated"] == n and m["n_valid"] == n - 8
    assert m["coverage"] == pytest.approx((n - 8) / n)
    assert m["status_counts"] == {"ok": n - 8, "invalid": 5, "missing": 3}
    answered = np.array(list(preds.set_index("id").reindex(ids)["label"].fillna("x")))
    answered[:5] = "x"
    assert m["kappa"]["kappa"] == pytest.approx(cohen_kappa_score(truth, answered))
    table = pd.read_csv(out["per_stratum"])
    assert table.loc[0, "n"] == n and table.loc[0, "kappa"] == pytest.approx(m["kappa"]["kappa"])
    assert json.loads(open(out["metrics"]).read())["per_stratum"][0]["coverage"] == pytest.approx(
        (n - 8) / n)


def test_compare_uses_the_average_coder_for_crowd_codes_and_weights_kappa(tmp_path):
    """Crowd codes (30 coders, 3 codes per item, few shared items): the models are compared
    with the average coder (mode "crowd", said in the output); an ordinal codebook weights
    every kappa; the machine-machine difference is the difference of the two weighted kappas."""
    from textgauge.stats import kappa_summary
    from textgauge.steps.validate import compare

    rng = np.random.default_rng(9)
    n = 80
    ids = [f"g{i:03d}" for i in range(n)]
    truth = rng.choice(LABELS, n)
    rows = [{"id": i, "coder": f"w{c}", "label": t if rng.random() < 0.8 else rng.choice(LABELS)}
            for i, t in zip(ids, truth, strict=True) for c in rng.choice(30, 3, replace=False)]
    pd.DataFrame(rows + [{"id": "extra", "coder": "w1", "label": LABELS[0]}]).to_parquet(
        tmp_path / "codes.parquet")
    pd.DataFrame({"id": ids, "reference": truth}).to_parquet(tmp_path / "reference.parquet")
    pd.DataFrame({"id": ids}).to_parquet(tmp_path / "sample.parquet")
    paths = []
    for m, err in (("good", 0.1), ("poor", 0.6)):
        pred = np.where(rng.random(n) < err, rng.choice(LABELS, n), truth)
        pd.DataFrame({"id": ids, "label": pred, "status": "ok"}).to_parquet(tmp_path / f"{m}.pq")
        paths.append(str(tmp_path / f"{m}.pq"))
    out = compare(predictions=paths, reference=str(tmp_path / "reference.parquet"),
                  codes=str(tmp_path / "codes.parquet"), sample=str(tmp_path / "sample.parquet"),
                  comparisons=str(tmp_path / "c.json"), table=str(tmp_path / "c.csv"),
                  models=["good", "poor"], labels=LABELS, seed=2, confidence=0.9,
                  bootstrap=400, scale="ordinal", kappa_weights="linear")
    assert out["mode"] == "crowd" and "30 coders" in out["mode_reason"]
    assert out["codes_outside_gold"] == 1 and out["weights"] == "linear"
    for m in ("good", "poor"):
        v = out["vs_humans"][m]
        assert [c["coder"] for c in v["comparisons"]] == ["average coder"]
        assert v["reference"]["n_pairs"] == 3 * n
        assert v["comparisons"][0]["n_ties"] == v["reference"]["n_ties"] > 0
    assert out["vs_humans"]["poor"]["verdict"] == "below human coders"
    pair = out["machine_pairs"][0]
    k = {m: kappa_summary(truth, pd.read_parquet(p)["label"], LABELS, weights="linear",
                          bootstrap=0)["kappa"] for m, p in zip(("good", "poor"), paths,
                                                                strict=True)}
    assert pair["kappa"]["difference"] == pytest.approx(k["good"] - k["poor"])
    assert pair["kappa"]["weights"] == "linear" and pair["kappa"]["confidence"] == 0.9
    assert pair["finding"] == "good above poor"
    table = pd.read_csv(tmp_path / "c.csv")
    assert set(table["kind"]) == {"machine-machine", "machine-human"} and len(table) == 6
    assert json.loads((tmp_path / "c.json").read_text())["n_boot"] == 400
    # the methods sentence says how, with the counted ties and exclusions
    from textgauge.reporting.methods import comparison_sentence

    text = comparison_sentence(json.loads((tmp_path / "c.json").read_text()))
    ties = out["vs_humans"]["good"]["reference"]["n_ties"]
    assert "crowd" in text and "linear-weighted" in text and f"{ties} had a tied" in text
    assert "poor: below human coders" in text
    # the crowd's ceiling in the forest plot: each model and, last, the average human coder
    # against the same leave-one-out majority, each with its own CI around its estimate
    from textgauge.reporting.report import average_coder_rows

    rows = average_coder_rows(out)
    assert [r["name"] for r in rows] == ["good vs leave-one-out majority",
                                         "poor vs leave-one-out majority",
                                         "human: average coder vs leave-one-out majority"]
    assert rows[-1]["human"] and rows[-1]["n"] == 3 * n
    for r in rows:
        assert r["ci_low"] <= r["kappa"] <= r["ci_high"]
    k = out["vs_humans"]["good"]["comparisons"][0]["kappa"]
    assert rows[0]["kappa"] == k["estimate_a"] and rows[-1]["kappa"] == k["estimate_b"]
    assert rows[1]["ci_high"] < rows[-1]["ci_low"]  # the poor coder is below the crowd


def test_compare_with_a_single_human_coder_claims_no_human_comparison(tmp_path):
    """One human coder: no leave-one-out reference exists; the output, the methods and the
    forest plot say so instead of calling one coder a crowd."""
    from textgauge.reporting.methods import comparison_sentence
    from textgauge.reporting.report import average_coder_rows, comparison_view
    from textgauge.steps.validate import compare

    rng = np.random.default_rng(4)
    n = 40
    ids = [f"s{i}" for i in range(n)]
    truth = rng.choice(LABELS, n)
    pd.DataFrame({"id": ids, "coder": "only", "label": truth}).to_parquet(tmp_path / "c.parquet")
    pd.DataFrame({"id": ids, "reference": truth}).to_parquet(tmp_path / "r.parquet")
    pd.DataFrame({"id": ids}).to_parquet(tmp_path / "s.parquet")
    pd.DataFrame({"id": ids, "label": truth, "status": "ok"}).to_parquet(tmp_path / "m.parquet")
    out = compare(predictions=str(tmp_path / "m.parquet"), reference=str(tmp_path / "r.parquet"),
                  codes=str(tmp_path / "c.parquet"), sample=str(tmp_path / "s.parquet"),
                  comparisons=str(tmp_path / "c.json"), table=str(tmp_path / "c.csv"),
                  models=["m"], labels=LABELS, seed=1, confidence=0.95, bootstrap=100)
    assert out["mode"] == "pairwise" and "single human coder" in out["mode_reason"]
    v = out["vs_humans"]["m"]
    assert v["comparisons"] == [] and v["verdict"] == "undetermined"
    assert v["reference"]["n_pairs_excluded"] == n  # every code counted, none compared
    assert "single human coder" in comparison_sentence(out)
    assert "crowd" not in comparison_sentence(out)
    assert comparison_view(out)["rows"] == [] and average_coder_rows(out) == []
