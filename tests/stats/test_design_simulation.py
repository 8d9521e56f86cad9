"""The must-show simulation of issue 16: a model-assisted gold design with design weights.

Known truth: 20,000 texts, the rare label at 3%; the first pass is a class-balanced
classifier (softmax of N(0, 1) logits + 2.5 on the true class, no prior term: it
over-predicts the rare label, as encoders trained with inverse-frequency class weights do)
and is itself the coder evaluated, the hardest case (the design depends on its answers).
1,000 studies of 300 gold items under proportional (a simple random sample) and
model_assisted (3 confidence bands, default min_per_label), the latter analysed with the
design weights and, to show that they matter, unweighted. ``pytest -s`` prints the table.
"""

from __future__ import annotations

import pytest

from textgauge.planning.gold_design import (
    simulate_known_truth,
    simulated_corpus,
    simulation_table,
)


@pytest.mark.slow
def test_model_assisted_design_with_weights_covers_and_is_narrower():
    corpus = simulated_corpus(20_000, (0.03, 0.57, 0.40), signal=2.5, seed=0)
    sim = simulate_known_truth(corpus, ["rare", "a", "b"], size=300, studies=1000,
                               n_bands=3, n_boot=500, seed=1000)
    print("\n" + simulation_table(sim))
    prop = sim["analyses"]["proportional"]
    ma = sim["analyses"]["model_assisted"]
    raw = sim["analyses"]["model_assisted_unweighted"]
    # the weighted estimates' 95% CIs cover the corpus values
    for stat in ("kappa", "macro_f1", "rare_f1"):
        assert 0.93 <= ma[stat]["coverage"] <= 0.97, (stat, ma[stat])
    # the rare label's F1 CI is at least 2x narrower than under proportional sampling
    assert prop["rare_f1"]["median_width"] >= 2 * ma["rare_f1"]["median_width"]
    # the weighted estimates are (nearly) unbiased; the unweighted ones are not
    assert abs(ma["kappa"]["bias_in_se"]) < 3
    assert abs(raw["kappa"]["bias_in_se"]) > 5
    assert raw["kappa"]["coverage"] < 0.5
    assert raw["kappa"]["mean_estimate"] < sim["corpus"]["kappa"] - 0.05
