"""Rules evaluate, human_agreement and compare on a model-assisted gold sample: the headline
numbers are the corpus-level (design-weighted) estimates, the sample as drawn goes beside
them, and a proportional sample is analysed exactly as before."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from textgauge.stats import kappa_summary
from textgauge.steps.validate import compare, evaluate, human_agreement

LABELS = ["economic", "moral", "rare"]
PER_CELL = 60
KW = {"labels": LABELS, "seed": 1, "kappa_threshold": 0.7, "confidence": 0.95,
      "bootstrap": 200}


def _corpus(seed: int = 5, n: int = 6000) -> pd.DataFrame:
    """A corpus whose truth is known: the model is right on 97% of its confident texts and on
    40% of its unsure ones (a fifth of each predicted label)."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(LABELS, n, p=[0.6, 0.3, 0.1])
    unsure = rng.random(n) < 0.2
    right = rng.random(n) < np.where(unsure, 0.40, 0.97)
    wrong = np.array([rng.choice([lab for lab in LABELS if lab != t]) for t in truth])
    pred = np.where(right, truth, wrong)
    noisy = np.where(rng.random(n) < 0.85, truth, rng.choice(LABELS, n))
    return pd.DataFrame({"id": [f"t{i:05d}" for i in range(n)], "truth": truth, "pred": pred,
                         "other": noisy, "band": np.where(unsure, 0, 1),
                         "party": rng.choice(["A", "B"], n)})


def _model_assisted(corpus: pd.DataFrame, seed: int = 6) -> pd.DataFrame:
    """PER_CELL texts from every (predicted label x confidence band) cell: the rare label
    and the unsure texts are over-sampled."""
    corpus = corpus.assign(cell=corpus["pred"] + " | band " + corpus["band"].astype(str))
    size = corpus["cell"].map(corpus["cell"].value_counts())
    sample = (corpus.assign(cell_size=size).groupby("cell", group_keys=False)
              .sample(PER_CELL, random_state=seed))
    return sample.assign(design="model_assisted", inclusion_prob=PER_CELL / sample["cell_size"],
                         first_pass_model="m", first_pass_label=sample["pred"],
                         confidence_band=sample["band"]).reset_index(drop=True)


def _write_inputs(tmp_path, corpus: pd.DataFrame, sample: pd.DataFrame) -> dict[str, str]:
    p = {k: str(tmp_path / f"{k}.parquet") for k in ("reference", "sample", "codes", "m",
                                                     "other")}
    sample[["id", "truth"]].rename(columns={"truth": "reference"}).to_parquet(p["reference"])
    sample.drop(columns=["truth", "pred", "other"]).to_parquet(p["sample"])
    rng = np.random.default_rng(9)
    second = np.where(rng.random(len(sample)) < 0.9, sample["truth"],
                      rng.choice(LABELS, len(sample)))
    pd.concat([pd.DataFrame({"id": sample["id"], "coder": "a", "label": sample["truth"]}),
               pd.DataFrame({"id": sample["id"], "coder": "b", "label": second})]
              ).to_parquet(p["codes"])
    for name, col in (("m", "pred"), ("other", "other")):
        pd.DataFrame({"id": corpus["id"], "label": corpus[col], "status": "ok",
                      "confidence": np.where(corpus["band"] == 0, 0.5, 0.9)}).to_parquet(p[name])
    return p


def _run(tmp_path, p: dict[str, str], tag: str) -> tuple[dict, dict, dict]:
    human = human_agreement(codes=p["codes"], sample=p["sample"], truth=None, coders=None,
                            metrics=str(tmp_path / f"human{tag}.json"),
                            pairwise=str(tmp_path / f"pairwise{tag}.csv"), **KW)
    out = {k: str(tmp_path / f"{k}{tag}.out") for k in ("metrics", "per_class", "confusion",
                                                       "per_stratum", "vs_coders")}
    evaluate(model="m", predictions=p["m"], reference=p["reference"], codes=p["codes"],
             sample=p["sample"], human=str(tmp_path / f"human{tag}.json"), **out,
             strata=["party"], **KW)
    metrics = json.loads(open(out["metrics"]).read())
    comp = compare(predictions=[p["m"], p["other"]], reference=p["reference"], codes=p["codes"],
                   sample=p["sample"], comparisons=str(tmp_path / f"comp{tag}.json"),
                   table=str(tmp_path / f"comp{tag}.csv"), models=["m", "other"],
                   labels=LABELS, seed=1, confidence=0.95, bootstrap=200)
    return human, metrics, comp


def test_model_assisted_headline_is_the_corpus_kappa_and_as_drawn_is_beside_it(tmp_path):
    corpus = _corpus()
    sample = _model_assisted(corpus)
    p = _write_inputs(tmp_path, corpus, sample)
    human, m, comp = _run(tmp_path, p, "")
    corpus_kappa = cohen_kappa_score(corpus["truth"], corpus["pred"])
    drawn_kappa = cohen_kappa_score(sample["truth"], sample["pred"])
    k = m["kappa"]
    assert k["kappa"] == pytest.approx(corpus_kappa, abs=0.05)
    assert k["ci_low"] < corpus_kappa < k["ci_high"]
    assert m["as_drawn"]["kappa"]["kappa"] == pytest.approx(drawn_kappa)
    assert m["as_drawn"]["kappa"]["kappa"] < k["kappa"] - 0.1  # unsure texts over-sampled
    assert set(m["as_drawn"]) == {"kappa", "macro_f1", "per_class"}
    assert {"kappa", "se", "ci_low", "ci_high", "n", "p_observed", "p_expected", "confidence",
            "n_boot", "weights", "ci_method", "boot_ci_low", "boot_ci_high"} <= set(k)
    assert k["ci_method"] == "percentile bootstrap within design cells (Rao-Wu)"
    assert (k["boot_ci_low"], k["boot_ci_high"]) == (k["ci_low"], k["ci_high"])
    assert k["n"] == len(sample) and k["sum_weights"] == pytest.approx(len(corpus))
    design = m["design"]
    assert design["design"] == "model_assisted" and design["weighted"] is True
    assert design["n_cells"] == 6 and design["population"] == pytest.approx(len(corpus))
    assert "within design cells" in design["bootstrap"]
    # per class: support is the estimated corpus count; classification's accuracy weighted
    support = {r["label"]: r["support"] for r in m["per_class"]}
    truth_counts = corpus["truth"].value_counts()
    for lab in LABELS:
        assert support[lab] == pytest.approx(truth_counts[lab], rel=0.15)
    assert m["classification"]["accuracy"] == pytest.approx(
        (corpus["truth"] == corpus["pred"]).mean(), abs=0.03)
    assert m["macro_f1"]["estimate"] > m["as_drawn"]["macro_f1"]["estimate"]
    cm = pd.read_csv(tmp_path / "confusion.out", index_col=0)
    assert cm.to_numpy().sum() == pytest.approx(len(corpus))
    # per stratum: the overall row is the headline kappa; vs coders weighted too
    assert m["per_stratum"][0]["kappa"] == pytest.approx(k["kappa"])
    assert {r["stratum"] for r in m["per_stratum"]} == {"(overall)", "A", "B"}
    assert m["vs_coders"][0]["ci_method"] == k["ci_method"]
    assert m["vs_coders"][0]["kappa"] == pytest.approx(k["kappa"])  # coder a is the truth
    assert m["decision"] in ("pass", "fail", "inconclusive")
    # human agreement: weighted alpha and pairs, the plain ones as drawn
    assert human["design"]["weighted"] is True
    assert "within design cells" in human["alpha"]["method"]
    assert human["as_drawn"]["alpha"]["method"] == "percentile"
    assert human["ceiling_kappa"] == pytest.approx(human["pairwise"][0]["kappa"])
    assert human["as_drawn"]["ceiling_kappa"] == pytest.approx(cohen_kappa_score(
        pd.read_parquet(p["codes"]).query("coder == 'a'")["label"],
        pd.read_parquet(p["codes"]).query("coder == 'b'")["label"]))
    # compare: weighted differences, each side the weighted estimate
    assert comp["design"]["weighted"] is True and "design-weighted" in comp["method"]
    pair = comp["machine_pairs"][0]["kappa"]
    assert pair["estimate_a"] == pytest.approx(k["kappa"])
    assert pair["sum_weights"] == pytest.approx(len(corpus))
    assert pair["ci_low"] < pair["difference"] < pair["ci_high"]
    assert comp["vs_humans"]["m"]["comparisons"]


def test_a_proportional_sample_is_analysed_exactly_as_before(tmp_path):
    """The same items, once without design columns (an old sample) and once with the
    proportional design columns: identical metrics, human agreement and comparisons."""
    corpus = _corpus()
    sample = _model_assisted(corpus)
    old = tmp_path / "old"
    new = tmp_path / "new"
    old.mkdir()
    new.mkdir()
    p_old = _write_inputs(old, corpus, sample.drop(columns=[
        "design", "cell", "cell_size", "inclusion_prob", "first_pass_model",
        "first_pass_label", "confidence_band"]))
    p_new = _write_inputs(new, corpus, sample.assign(design="proportional", cell="(all)",
                                                     cell_size=len(corpus)))
    h_old, m_old, c_old = _run(old, p_old, "")
    h_new, m_new, c_new = _run(new, p_new, "")
    assert m_new == m_old and h_new == h_old and c_new == c_old
    assert m_new["as_drawn"] is None and m_new["design"]["weighted"] is False
    assert h_new["as_drawn"] is None and c_new["design"]["weighted"] is False
    plain = kappa_summary(sample["truth"], sample["pred"], LABELS, confidence=0.95,
                          bootstrap=200, seed=1)
    assert m_new["kappa"] == pytest.approx(plain)
    assert "ci_method" not in m_new["kappa"]
    for name in ("per_class", "confusion", "per_stratum", "vs_coders"):
        assert (old / f"{name}.out").read_bytes() == (new / f"{name}.out").read_bytes()


def test_model_assisted_ordinal_codebook_weights_the_ordinal_block(tmp_path):
    corpus = _corpus()
    sample = _model_assisted(corpus)
    p = _write_inputs(tmp_path, corpus, sample)
    kw = {**KW, "scale": "ordinal", "kappa_weights": "quadratic"}
    human_agreement(codes=p["codes"], sample=p["sample"], truth=None, coders=None,
                    metrics=str(tmp_path / "human.json"), pairwise=str(tmp_path / "pw.csv"),
                    **kw)
    out = {k: str(tmp_path / f"{k}.out") for k in ("metrics", "per_class", "confusion",
                                                  "per_stratum", "vs_coders")}
    m = evaluate(model="m", predictions=p["m"], reference=p["reference"], codes=p["codes"],
                 sample=p["sample"], human=str(tmp_path / "human.json"), **out,
                 strata=["party"], **kw)
    assert m["kappa"]["weights"] == "quadratic"
    assert m["ordinal"]["exact"]["estimate"] == pytest.approx(
        (corpus["truth"] == corpus["pred"]).mean(), abs=0.03)
    assert m["as_drawn"]["ordinal"]["exact"]["estimate"] == pytest.approx(
        (sample["truth"] == sample["pred"]).mean())
    assert m["ordinal"]["ci_method"] == m["kappa"]["ci_method"]
