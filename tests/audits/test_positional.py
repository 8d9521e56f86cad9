"""Positional bias (textgauge.audits.positional) with simulated coders."""

from __future__ import annotations

import pytest

from tests.audits.simulated import gold_set, positional_runs
from textgauge.audits.positional import positional_audit
from textgauge.errors import InputDataError

LABELS = ["support", "oppose", "neutral"]


def test_positional_first_option_coder_is_flagged():
    gold = gold_set()
    biased = positional_audit(positional_runs(gold, first_bias=0.3), reference=gold)
    assert biased.expected_basis == "gold"
    assert biased.flagged
    assert biased.p_value < 0.01 and biased.effect_w >= 0.3
    assert biased.first_position_excess > 0.15
    assert biased.selection["observed_rate"].iloc[0] == biased.selection[
        "observed_rate"].max()
    assert (biased.pairs["flip_rate"] > 0.3).all()
    assert biased.dof == 2 and len(biased.pairs) == 3


def test_positional_neutral_coder_is_not_flagged():
    gold = gold_set()
    runs = positional_runs(gold, first_bias=0.0)
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
    runs = positional_runs(gold_set(30), 0.0)
    with pytest.raises(InputDataError, match="label order"):
        positional_audit(runs.drop(columns="label_order"))
    bad = runs.copy()
    bad.loc[0, "label"] = "maybe"
    with pytest.raises(InputDataError, match="g0"):
        positional_audit(bad)


def test_positional_audit_of_an_ordinal_scale_shown_reversed():
    """An ordinal codebook (scale oppose < neutral < support) shown reversed and rotated: the
    audit runs as for a nominal one (same flip rates, same position test) and its kappas
    between orders are the weighted ones of the codebook."""
    from textgauge.stats import kappa_summary

    scale = ["oppose", "neutral", "support"]
    gold = gold_set()
    runs = positional_runs(gold, first_bias=0.3)
    plain = positional_audit(runs, reference=gold, labels=scale)
    weighted = positional_audit(runs, reference=gold, labels=scale, weights="quadratic")
    assert weighted.flagged == plain.flagged and weighted.p_value == plain.p_value
    assert weighted.pairs["flip_rate"].tolist() == plain.pairs["flip_rate"].tolist()
    wide = runs.pivot(index="id", columns="order", values="label")
    k = kappa_summary(wide["fixed"], wide["reversed"], scale, weights="quadratic",
                      bootstrap=0)
    row = weighted.pairs.set_index(["order_a", "order_b"]).loc[("fixed", "reversed")]
    assert row["kappa"] == pytest.approx(k["kappa"])
    assert row["kappa"] != pytest.approx(
        plain.pairs.set_index(["order_a", "order_b"]).loc[("fixed", "reversed"), "kappa"])
