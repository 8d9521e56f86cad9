"""Bias audits with simulated coders of known behaviour (+ the audit figures)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from textgauge.audits.core import (
    OVERALL,
    class_asymmetry,
    kappa_ci,
    manifest_diff,
    positional_audit,
    prompt_stability,
    stratum_performance,
    test_retest,
    wilson_ci,
)
from textgauge.errors import InputDataError
from textgauge.reporting.plots.audits import (
    plot_positional_selection,
    plot_prevalence,
    plot_stratum_forest,
)
from textgauge.stats.prevalence import corrected_prevalence

LABELS = ["support", "oppose", "neutral"]


def _gold(n=600, seed=0, p=(0.5, 0.3, 0.2)):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"id": [f"g{i}" for i in range(n)],
                         "reference": rng.choice(LABELS, n, p=list(p))})


def _positional_runs(gold, first_bias: float, seed: int = 1, accuracy: float = 0.8):
    """Same coder, same items, label order fixed / reversed / rotated per item."""
    rng = np.random.default_rng(seed)
    rows = []
    for cond in ("fixed", "reversed", "rotated"):
        for i, (item, ref) in enumerate(zip(gold["id"], gold["reference"], strict=True)):
            if cond == "fixed":
                order = LABELS
            elif cond == "reversed":
                order = LABELS[::-1]
            else:
                order = LABELS[i % 3:] + LABELS[:i % 3]
            if rng.random() < first_bias:
                label = order[0]
            elif rng.random() < accuracy:
                label = ref
            else:
                label = rng.choice([lab for lab in LABELS if lab != ref])
            rows.append({"id": item, "order": cond, "label_order": "|".join(order),
                         "label": label, "status": "ok"})
    return pd.DataFrame(rows)


def test_positional_first_option_coder_is_flagged():
    gold = _gold()
    biased = positional_audit(_positional_runs(gold, first_bias=0.3), reference=gold)
    assert biased.expected_basis == "gold"
    assert biased.flagged
    assert biased.p_value < 0.01 and biased.effect_w >= 0.3
    assert biased.first_position_excess > 0.15
    assert biased.selection["observed_rate"].iloc[0] == biased.selection[
        "observed_rate"].max()
    assert (biased.pairs["flip_rate"] > 0.3).all()
    assert biased.dof == 2 and len(biased.pairs) == 3


def test_positional_neutral_coder_is_not_flagged():
    gold = _gold()
    runs = _positional_runs(gold, first_bias=0.0)
    for expected in ("gold", "consensus"):
        neutral = positional_audit(runs, reference=gold, expected=expected)
        assert not neutral.flagged, expected
        assert neutral.effect_w < 0.1
        assert abs(neutral.first_position_excess) < 0.05
    # the same neutral coder with position indexes only (balanced rotation: uniform basis)
    rot = runs[runs["order"] == "rotated"].copy()
    rot["position"] = [o.split("|").index(lab) + 1 for o, lab in zip(rot["label_order"],
                                                                     rot["label"], strict=True)]
    res = positional_audit(rot.drop(columns="label_order"))
    assert res.expected_basis == "uniform" and not res.flagged


def test_positional_bad_input():
    runs = _positional_runs(_gold(30), 0.0)
    with pytest.raises(InputDataError, match="label order"):
        positional_audit(runs.drop(columns="label_order"))
    bad = runs.copy()
    bad.loc[0, "label"] = "maybe"
    with pytest.raises(InputDataError, match="g0"):
        positional_audit(bad)


def test_asymmetry_flags_the_overpredicted_class():
    rng = np.random.default_rng(12)
    gold = _gold(800, seed=2)
    ref = gold["reference"].to_numpy()
    pred = np.where(rng.random(len(ref)) < 0.3, "support", ref)  # sycophantic coder
    preds = pd.DataFrame({"id": gold["id"], "label": pred, "confidence": 0.9, "status": "ok"})
    out = class_asymmetry(gold, preds).set_index("label")
    assert out.loc["support", "flag"] == "over"
    assert set(out.index[out["flag"] == "over"]) == {"support"}
    assert set(out.index[out["flag"] == "under"]) <= {"oppose", "neutral"}
    assert out.loc["support", "recall"] == 1.0
    assert out.loc["support", "recall_gap"] > 0.2
    assert out.loc["support", "predicted_ci_low"] > out.loc["support", "gold_ci_high"]
    # a noisy coder whose errors follow the class distribution (margins kept): nothing flagged
    noise = np.where(rng.random(len(ref)) < 0.1,
                     rng.choice(LABELS, len(ref), p=[0.5, 0.3, 0.2]), ref)
    fair = class_asymmetry(gold, preds.assign(label=noise))
    assert (fair["flag"] == "").all()


def test_wilson_interval_known_value():
    lo, hi = wilson_ci(8, 10)
    assert (float(lo), float(hi)) == pytest.approx((0.4902, 0.9433), abs=1e-4)


def test_stratum_shift_flags_the_degraded_stratum():
    rng = np.random.default_rng(15)
    n = 1200
    gold = _gold(n, seed=5)
    gold["party"] = rng.choice(["A", "B", "C"], n)
    gold["period"] = rng.choice(["2020", "2024"], n)
    ref = gold["reference"].to_numpy()
    err = np.where(gold["party"] == "C", 0.45, 0.08)  # party C is coded badly
    pred = np.where(rng.random(n) < err, rng.choice(LABELS, n), ref)
    preds = pd.DataFrame({"id": gold["id"], "label": pred, "status": "ok"})
    out = stratum_performance(gold, preds, strata=["party", "period"], n_boot=300)
    t = out.set_index(["stratum_col", "stratum"])
    assert t.loc[("party", "C"), "flagged"]
    assert t.loc[("party", "C"), "kappa_ci_high"] < t.loc[(OVERALL, OVERALL), "kappa"]
    assert not t.loc[("party", "A"), "flagged"] and not t.loc[("party", "B"), "flagged"]
    assert not t.loc[("period", "2020"), "below_overall"]
    ov = t.loc[(OVERALL, OVERALL)]
    assert ov["kappa_ci_low"] < ov["kappa"] < ov["kappa_ci_high"]
    assert ov["macro_f1_ci_low"] < ov["macro_f1"] < ov["macro_f1_ci_high"]
    fig = plot_stratum_forest(out)
    assert isinstance(fig, Figure)


def test_kappa_ci_matches_sklearn_and_covers():
    from sklearn.metrics import cohen_kappa_score

    rng = np.random.default_rng(0)
    a = rng.choice(LABELS, 400)
    b = np.where(rng.random(400) < 0.3, rng.choice(LABELS, 400), a)
    k = kappa_ci(a, b, n_boot=500)
    assert k.estimate == pytest.approx(cohen_kappa_score(a, b))
    assert k.ci_low < k.estimate < k.ci_high and k.ci_high - k.ci_low < 0.15


def test_test_retest_with_manifests():
    gold = _gold(200, seed=7)
    earlier = pd.DataFrame({"id": gold["id"], "label": gold["reference"], "status": "ok",
                            "confidence": 0.9})
    current = earlier.copy()
    flip_ids = gold["id"].iloc[[3, 10, 50]].tolist()
    current.loc[current["id"].isin(flip_ids), "label"] = "neutral"
    current = current[current["id"] != "g199"]
    current = pd.concat([current, pd.DataFrame({"id": ["x1"], "label": ["support"]})])
    em = {"model": "gpt-x", "revision": "2024-05-13", "provider": "openai",
          "date": "2024-06-01", "settings": {"temperature": 0}}
    cm = {"model": "gpt-x", "revision": "2024-08-06", "provider": "openai",
          "date": "2025-01-10", "settings": {"temperature": 0}, "seed": 1}
    res = test_retest(current, earlier, cm, em, gold=gold, n_boot=200)
    assert res.n_common == 199
    changed = [i for i in flip_ids if gold.set_index("id").loc[i, "reference"] != "neutral"]
    assert sorted(res.flips["id"]) == sorted(changed)
    assert res.agreement == pytest.approx(1 - len(changed) / 199)
    assert res.only_earlier == ["g199"] and res.only_current == []  # x1 is not gold
    assert res.accuracy_earlier == 1.0 and res.accuracy_current < 1.0
    diff = res.manifest_diff
    assert diff["key"].tolist()[:2] == ["date", "revision"]
    assert set(diff["key"]) == {"date", "revision", "seed"}
    assert manifest_diff(em, em).empty


def test_prompt_stability_alpha():
    gold = _gold(300, seed=9)
    ref = gold["reference"].to_numpy()
    rng = np.random.default_rng(19)
    rows = []
    for v, noise in (("p1", 0.05), ("p2", 0.05), ("p3", 0.6)):  # p3: an unstable paraphrase
        for run in (1, 2):
            lab = np.where(rng.random(300) < noise, rng.choice(LABELS, 300), ref)
            rows.append(pd.DataFrame({"id": gold["id"], "label": lab, "prompt_variant": v,
                                      "run": run}))
    df = pd.concat(rows)
    res = prompt_stability(df, gold=gold, n_boot=50)
    stable = prompt_stability(df[df["prompt_variant"] != "p3"], n_boot=0)
    assert stable.alpha_all.estimate > 0.85
    assert res.alpha_all.estimate < stable.alpha_all.estimate - 0.1
    assert res.alpha_all.ci_low < res.alpha_all.estimate < res.alpha_all.ci_high
    pv = res.per_variant.set_index("variant")
    assert pv.loc["p3", "alpha_within_runs"] < 0.7 < pv.loc["p1", "alpha_within_runs"]
    assert pv.loc["p3", "accuracy"] < pv.loc["p1", "accuracy"]
    assert pv["deviation_from_modal"].idxmax() == "p3"
    import krippendorff

    codes = {lab: i for i, lab in enumerate(LABELS)}
    two = df[(df["prompt_variant"].isin(["p1", "p2"])) & (df["run"] == 1)]
    mat = two.pivot(index="prompt_variant", columns="id", values="label").map(codes.get)
    direct = krippendorff.alpha(reliability_data=mat.to_numpy(float),
                                level_of_measurement="nominal")
    got = prompt_stability(two, run_col=None, n_boot=0).alpha_variants.estimate
    assert got == pytest.approx(direct)


def test_audit_figures(tmp_path):
    gold = _gold(150)
    res = positional_audit(_positional_runs(gold, 0.3), reference=gold)
    fig = plot_positional_selection(res.selection, p_value=res.p_value)
    fig.savefig(tmp_path / "pos.png")
    corpus = pd.DataFrame({"id": gold["id"], "label": gold["reference"],
                           "party": ["a", "b"] * 75})
    est = corrected_prevalence(corpus, gold.iloc[:60], strata=["party"])
    plot_prevalence(est).savefig(tmp_path / "prev.png")
    plot_prevalence(est, stratum_col="party").savefig(tmp_path / "prev_party.png")
    for name in ("pos", "prev", "prev_party"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000


def test_positional_plot_tolerates_rounding_at_zero():
    """A Wilson bound a rounding error above a 0 rate must not break the report's figure."""
    from textgauge.reporting.plots.audits import plot_positional_selection

    sel = pd.DataFrame({"position": [1, 2], "observed_n": [10, 0],
                        "observed_rate": [1.0, 0.0], "expected_rate": [0.5, 0.5],
                        "observed_ci_low": [0.72, 4.3e-19], "observed_ci_high": [1.0, 0.28]})
    assert plot_positional_selection(sel, 0.01) is not None
