"""Paired comparisons (textgauge.stats.paired): exact estimates, and simulations with known truth.

The "must show" of issue 12: over 1,000 simulated studies the paired-difference CIs cover the
true difference in 93-97% of studies, and a simulated model with exactly a human coder's
confusion matrix is "indistinguishable from a human coder" in >= 90% of studies (2 and 3
human coders, leave-one-coder-out references); the crowd mode on a simulated crowd counts its
leave-one-out ties.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textgauge.data.example import true_kappa
from textgauge.errors import InputDataError
from textgauge.stats import (
    AVERAGE_CODER,
    INVALID_LABEL,
    human_model_comparison,
    kappa_summary,
    leave_one_out_reference,
    macro_f1_from_tables,
    macro_f1_summary,
    paired_comparison,
    verdict_vs_humans,
)
from textgauge.stats.paired import BELOW, INDISTINGUISHABLE

LABELS = ["economic", "moral", "security", "rights"]
PREVALENCE = np.array([0.4, 0.3, 0.2, 0.1])


def _confusion(accuracy: float, bias: int | None = None) -> np.ndarray:
    """A coder right with probability ``accuracy``; errors spread evenly over the other
    labels, or (``bias``) all towards one label (evenly for the items of that label)."""
    k = len(LABELS)
    m = np.full((k, k), (1 - accuracy) / (k - 1))
    if bias is not None:
        for t in range(k):
            if t != bias:
                m[t] = 0.0
                m[t, bias] = 1 - accuracy
    m[np.diag_indices(k)] = accuracy
    return m


def _draw(rng: np.random.Generator, truth: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """Codes (..., n) of a coder with confusion matrix ``conf`` given the true codes."""
    cum = np.cumsum(conf, axis=1)[truth]  # (..., n, K)
    u = rng.random(truth.shape)[..., None]
    return np.minimum((u > cum).sum(axis=-1), len(LABELS) - 1)


def _population_table(conf_ref: np.ndarray, conf: np.ndarray) -> np.ndarray:
    """P(reference = i, coder = j) of two coders who err independently given the truth."""
    return np.einsum("t,ti,tj->ij", PREVALENCE, conf_ref, conf)


# ------------------------------------------------------------------ exact
@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_difference_equals_the_difference_of_each_coders_kappa(weights):
    rng = np.random.default_rng(1)
    ref = rng.choice(LABELS, 200)
    a = np.where(rng.random(200) < 0.2, rng.choice(LABELS, 200), ref).astype(object)
    b = np.where(rng.random(200) < 0.3, rng.choice(LABELS, 200), ref).astype(object)
    a[:6] = INVALID_LABEL  # invalid answers are errors
    b[3:5] = INVALID_LABEL
    res = paired_comparison(ref, a, b, LABELS, weights=weights, n_boot=500, seed=3)
    ka = kappa_summary(ref, a, LABELS, weights=weights, bootstrap=0)["kappa"]
    kb = kappa_summary(ref, b, LABELS, weights=weights, bootstrap=0)["kappa"]
    k = res["kappa"]
    assert k["estimate_a"] == pytest.approx(ka, abs=1e-12)
    assert k["estimate_b"] == pytest.approx(kb, abs=1e-12)
    assert k["difference"] == pytest.approx(ka - kb, abs=1e-12)
    assert k["ci_low"] <= k["difference"] <= k["ci_high"]
    assert k["weights"] == (weights or "unweighted")
    assert (k["n"], k["confidence"], k["n_boot"]) == (200, 0.95, 500)
    fa = macro_f1_summary(ref, a, LABELS, bootstrap=0)["estimate"]
    fb = macro_f1_summary(ref, b, LABELS, bootstrap=0)["estimate"]
    assert res["macro_f1"]["difference"] == pytest.approx(fa - fb, abs=1e-12)


def test_a_coder_against_itself_differs_by_zero_in_every_replicate():
    rng = np.random.default_rng(2)
    ref = rng.choice(LABELS, 120)
    a = np.where(rng.random(120) < 0.3, rng.choice(LABELS, 120), ref)
    for units in (None, np.arange(120) // 3):
        res = paired_comparison(ref, a, a, LABELS, units=units, n_boot=300)
        for stat in ("kappa", "macro_f1"):
            r = res[stat]
            assert r["difference"] == 0 and r["ci_low"] == 0 and r["ci_high"] == 0
            assert r["se"] == 0


def test_two_invalid_answers_never_agree_and_bad_input_is_an_error():
    ref = np.array(["economic", "moral"] * 10, dtype=object)
    ref[0] = INVALID_LABEL  # an invalid reference code never agrees with an invalid answer
    a = ref.copy()
    res = paired_comparison(ref, a, ref, LABELS, n_boot=50)
    assert res["kappa"]["estimate_a"] < 1
    with pytest.raises(InputDataError, match="not in the codebook"):
        paired_comparison(["economic"] * 3, ["economic", "typo", "moral"], ["moral"] * 3,
                          LABELS)
    with pytest.raises(InputDataError, match="aligned"):
        paired_comparison(["economic"] * 3, ["economic"] * 2, ["moral"] * 3, LABELS)


def test_verdicts():
    assert verdict_vs_humans(-0.1, 0.05) == INDISTINGUISHABLE
    assert verdict_vs_humans(-0.3, -0.01) == BELOW
    assert verdict_vs_humans(0.01, 0.2) == "above human coders"
    assert verdict_vs_humans(float("nan"), 0.2) == "undetermined"


def test_bca_and_cluster_bootstrap_give_sensible_intervals():
    rng = np.random.default_rng(4)
    ref = rng.choice(LABELS, 300)
    a = np.where(rng.random(300) < 0.15, rng.choice(LABELS, 300), ref)
    b = np.where(rng.random(300) < 0.35, rng.choice(LABELS, 300), ref)
    pct = paired_comparison(ref, a, b, LABELS)["kappa"]
    bca = paired_comparison(ref, a, b, LABELS, method="bca")["kappa"]
    clus = paired_comparison(ref, a, b, LABELS, units=np.arange(300) // 3)["kappa"]
    for r in (pct, bca, clus):
        assert r["ci_low"] < r["difference"] < r["ci_high"]
    assert bca["ci_high"] - bca["ci_low"] == pytest.approx(pct["ci_high"] - pct["ci_low"],
                                                            rel=0.25)
    assert clus["n_units"] == 100


# ------------------------------------------------------------------ must show: coverage
N_STUDIES, N_ITEMS = 1000, 300


def _coverage_studies(n_studies: int = N_STUDIES, method: str = "percentile",
                      seed: int = 12) -> dict[str, float]:
    """Known truth: a noisy reference coder and two machine coders who err independently
    given the truth; the population kappas and macro-F1s are computed in closed form."""
    c_ref, c_a, c_b = _confusion(0.85), _confusion(0.8), _confusion(0.7, bias=0)
    true_k = true_kappa(PREVALENCE, c_ref, c_a) - true_kappa(PREVALENCE, c_ref, c_b)
    ta, tb = _population_table(c_ref, c_a), _population_table(c_ref, c_b)
    true_f1 = float(macro_f1_from_tables(ta) - macro_f1_from_tables(tb))
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(LABELS), size=(n_studies, N_ITEMS), p=PREVALENCE)
    lab = np.asarray(LABELS, dtype=object)
    ref, a, b = (lab[_draw(rng, truth, c)] for c in (c_ref, c_a, c_b))
    hits = {"kappa": 0, "macro_f1": 0}
    for s in range(n_studies):
        res = paired_comparison(ref[s], a[s], b[s], LABELS, n_boot=1000, seed=s, method=method)
        hits["kappa"] += res["kappa"]["ci_low"] <= true_k <= res["kappa"]["ci_high"]
        hits["macro_f1"] += res["macro_f1"]["ci_low"] <= true_f1 <= res["macro_f1"]["ci_high"]
    return {k: v / n_studies for k, v in hits.items()} | {"true_kappa_difference": true_k,
                                                          "true_f1_difference": true_f1}


def test_paired_difference_cis_cover_the_true_difference_in_93_to_97_percent():
    cov = _coverage_studies()
    assert cov["true_kappa_difference"] > 0.05  # a real difference, not zero
    assert 0.93 <= cov["kappa"] <= 0.97, cov
    assert 0.93 <= cov["macro_f1"] <= 0.97, cov


# ------------------------------------------------------------------ must show: equal terms
N_EQUAL = 500


@pytest.mark.parametrize("n_coders", [2, 3])
def test_a_model_with_a_human_coders_confusion_is_indistinguishable(n_coders):
    """The model has exactly coder h0's confusion matrix; h0 and the model are both scored
    against h0's leave-one-coder-out reference (the other coders' majority), on the same
    items: the verdict is "indistinguishable" in >= 90% of studies."""
    mats = [_confusion(0.8), _confusion(0.9), _confusion(0.75, bias=1)][:n_coders]
    rng = np.random.default_rng(20 + n_coders)
    truth = rng.choice(len(LABELS), size=(N_EQUAL, N_ITEMS), p=PREVALENCE)
    lab = np.asarray(LABELS, dtype=object)
    humans = [lab[_draw(rng, truth, m)] for m in mats]
    model = lab[_draw(rng, truth, mats[0])]
    ids = np.arange(N_ITEMS).astype(str)
    same, below_bad = 0, 0
    for s in range(N_EQUAL):
        codes = pd.DataFrame({"id": np.tile(ids, n_coders),
                              "coder": np.repeat([f"h{i}" for i in range(n_coders)], N_ITEMS),
                              "label": np.concatenate([h[s] for h in humans])})
        pairs, counts = leave_one_out_reference(codes, LABELS, seed=s)
        rows = pairs[pairs["coder"] == "h0"]
        answer = pd.Series(model[s], index=ids).reindex(rows["id"]).to_numpy()
        k = paired_comparison(rows["reference"], answer, rows["label"], LABELS, seed=s,
                              statistics=("kappa",))["kappa"]
        same += verdict_vs_humans(k["ci_low"], k["ci_high"]) == INDISTINGUISHABLE
        if n_coders == 3:
            assert counts["n_ties"] > 0
        if s < 50:  # a much worse model is below human coders
            bad = np.where(rng.random(N_ITEMS) < 0.5, rng.choice(LABELS, N_ITEMS), answer)
            kb = paired_comparison(rows["reference"], bad, rows["label"], LABELS, seed=s,
                                   statistics=("kappa",))["kappa"]
            below_bad += verdict_vs_humans(kb["ci_low"], kb["ci_high"]) == BELOW
    assert same / N_EQUAL >= 0.90, same / N_EQUAL
    assert below_bad >= 45


def test_human_model_comparison_pairwise_mode_reports_each_coder_and_the_average():
    rng = np.random.default_rng(5)
    truth = rng.choice(len(LABELS), N_ITEMS, p=PREVALENCE)
    lab = np.asarray(LABELS, dtype=object)
    ids = [f"t{i}" for i in range(N_ITEMS)]
    codes = pd.concat([pd.DataFrame({"id": ids, "coder": c, "label": lab[_draw(rng, truth, m)]})
                       for c, m in (("a", _confusion(0.85)), ("b", _confusion(0.8)),
                                    ("c", _confusion(0.8)))])
    codes = codes[~((codes["coder"] != "a") & codes["id"].isin(ids[:5]))]  # 5 items: one code
    answers = pd.Series(lab[_draw(rng, truth, _confusion(0.82))], index=ids)
    answers.iloc[:3] = INVALID_LABEL
    out = human_model_comparison(codes, answers.iloc[:-10], LABELS, mode="pairwise",
                                 n_boot=300, seed=1)
    assert out["mode"] == "pairwise"
    assert [c["coder"] for c in out["comparisons"]] == ["a", "b", "c", AVERAGE_CODER]
    ref = out["reference"]
    assert ref["n_units_excluded"] == 5 and ref["n_pairs_excluded"] == 5
    assert ref["n_units_without_answer"] == 10
    assert ref["n_units"] == N_ITEMS - 15
    assert sum(c["n_ties"] for c in out["comparisons"][:3]) == ref["n_ties"]
    assert out["comparisons"][-1]["n"] == ref["n_pairs"]
    assert out["verdict"] == out["comparisons"][-1]["verdict"]
    for c in out["comparisons"]:
        for stat in ("kappa", "macro_f1"):
            r = c[stat]
            assert r["difference"] == pytest.approx(r["estimate_a"] - r["estimate_b"])
            assert r["confidence"] == 0.95 and r["n_boot"] == 300
    # with two coders the leave-one-out reference is the other coder alone: no tie
    two = human_model_comparison(codes[codes["coder"] != "c"], answers, LABELS, n_boot=100)
    assert two["reference"]["n_ties"] == 0


# ------------------------------------------------------------------ crowd mode
def _crowd(rng: np.random.Generator, n_items: int = 400, n_coders: int = 300,
           per_item: int = 5, accuracy: float = 0.8) -> tuple[pd.DataFrame, np.ndarray]:
    """A binary task: ``per_item`` codes per item from a crowd of ``n_coders``."""
    truth = rng.choice(2, n_items, p=[0.6, 0.4])
    coders = np.array([rng.choice(n_coders, per_item, replace=False) for _ in range(n_items)])
    right = rng.random((n_items, per_item)) < accuracy
    codes = np.where(right, truth[:, None], 1 - truth[:, None])
    df = pd.DataFrame({"id": np.repeat(np.arange(n_items).astype(str), per_item),
                       "coder": [f"w{c}" for c in coders.ravel()],
                       "label": np.asarray(["no", "yes"])[codes.ravel()]})
    return df, truth


def test_crowd_mode_pools_every_pair_and_counts_the_ties():
    rng = np.random.default_rng(7)
    codes, truth = _crowd(rng)
    codes = codes.iloc[4:]  # item 0 keeps one code: excluded, counted
    model = pd.Series(np.where(rng.random(400) < 0.8, truth, 1 - truth), index=np.arange(400)
                      .astype(str)).map({0: "no", 1: "yes"})
    out = human_model_comparison(codes, model, ["no", "yes"], mode="crowd", n_boot=500)
    assert out["mode"] == "crowd"
    assert [c["coder"] for c in out["comparisons"]] == [AVERAGE_CODER]
    # ties counted by hand: a code whose item's other four codes split 2-2
    yes = codes.assign(y=codes["label"] == "yes").groupby("id")["y"].agg(["sum", "size"])
    yes = yes[yes["size"] == 5]
    n_ties = int((yes["sum"] == 3).sum() * 3 + (yes["sum"] == 2).sum() * 3)
    ref = out["reference"]
    assert ref["n_ties"] == n_ties > 0
    assert ref["n_units_excluded"] == 1 and ref["n_pairs_excluded"] == 1
    assert ref["n_pairs"] == 399 * 5
    c = out["comparisons"][0]
    assert c["n_ties"] == n_ties and c["kappa"]["n_units"] == 399


def test_crowd_mode_a_model_coding_like_the_crowd_is_indistinguishable():
    """Cluster bootstrap over items: a model as accurate as each crowd coder is
    indistinguishable in >= 90% of 200 simulated crowds; a much worse one is below."""
    rng = np.random.default_rng(8)
    same = below = 0
    n = 200
    for s in range(n):
        codes, truth = _crowd(rng)
        ids = np.arange(400).astype(str)
        model = pd.Series(np.where(rng.random(400) < 0.8, truth, 1 - truth), index=ids)
        bad = pd.Series(np.where(rng.random(400) < 0.6, truth, 1 - truth), index=ids)
        for answers, kind in ((model, "same"), (bad, "bad")):
            out = human_model_comparison(codes, answers.map({0: "no", 1: "yes"}),
                                         ["no", "yes"], mode="crowd", n_boot=500, seed=s)
            if kind == "same":
                same += out["verdict"] == INDISTINGUISHABLE
            else:
                below += out["verdict"] == BELOW
    assert same / n >= 0.90, same / n
    assert below / n >= 0.90, below / n


def test_design_weighted_paired_comparison_estimates_the_population_difference():
    """Design weights: each coder's estimate is the kappa of the population where every item
    is repeated by its weight; equal weights give the unweighted estimates; the bootstrap
    within cells gives an interval around the difference; crowd units keep their weight."""
    import numpy as np
    from sklearn.metrics import cohen_kappa_score

    from textgauge.stats import paired_comparison

    rng = np.random.default_rng(11)
    labs = ["x", "y", "z"]
    n = 150
    ref = rng.choice(labs, n)
    a = np.where(rng.random(n) < 0.85, ref, rng.choice(labs, n))
    b = np.where(rng.random(n) < 0.6, ref, rng.choice(labs, n))
    w = np.where(np.arange(n) % 4 == 0, 8.0, 1.0)
    cells = np.where(w > 1, "rare", "common")
    res = paired_comparison(ref, a, b, labs, design_weights=w, cells=cells, n_boot=300, seed=2)
    rep = np.repeat(np.arange(n), w.astype(int))
    k = res["kappa"]
    assert k["estimate_a"] == pytest.approx(cohen_kappa_score(ref[rep], a[rep]))
    assert k["estimate_b"] == pytest.approx(cohen_kappa_score(ref[rep], b[rep]))
    assert k["ci_low"] < k["difference"] < k["ci_high"] and k["ci_low"] > 0
    assert k["sum_weights"] == pytest.approx(w.sum()) and "Rao-Wu" in k["bootstrap"]
    plain = paired_comparison(ref, a, b, labs, n_boot=300, seed=2)
    equal = paired_comparison(ref, a, b, labs, design_weights=np.full(n, 2.0), n_boot=300,
                              seed=2)
    for stat in ("kappa", "macro_f1"):
        assert equal[stat]["difference"] == pytest.approx(plain[stat]["difference"])
    with pytest.raises(ValueError, match="percentile"):
        paired_comparison(ref, a, b, labs, design_weights=w, method="bca")
