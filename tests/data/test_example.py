"""The bundled SYNTHETIC example: reproducible from its seeded generator, with known truth."""

import filecmp

import numpy as np

from tests.conftest import REPO
from textgauge.data.example import (
    CODER_CONFUSION,
    FRAMES,
    ExampleSpec,
    generate_corpus,
    simulate_codes,
    true_kappa,
    write_example,
)


def test_generator_rewrites_the_bundled_files_byte_for_byte(tmp_path):
    paths = write_example(tmp_path)
    for p in paths.values():
        assert filecmp.cmp(p, REPO / "resources" / "example" / p.name, shallow=False), p.name


def test_example_is_hard_and_unbalanced():
    df = generate_corpus(ExampleSpec(n_texts=1500))
    shares = df["true_label"].value_counts(normalize=True)
    assert shares.max() / shares.min() > 1.5  # unequal classes
    assert {"reported", "negation", "irony", "short", "mixed"} <= set(df["kind"])
    assert df.groupby("party")["true_label"].agg(lambda s: s.value_counts(normalize=True).max()).std() > 0


def test_simulated_coder_agreement_matches_known_truth():
    """Over many items the sample kappa of the simulated coders converges to the true kappa."""
    from sklearn.metrics import cohen_kappa_score

    df = generate_corpus(ExampleSpec(n_texts=20000, seed=3))
    truth = df.set_index("id")["true_label"]
    a = simulate_codes(truth, "coder_a", 1)
    b = simulate_codes(truth, "coder_b", 1)
    pi = truth.value_counts(normalize=True).reindex(FRAMES).to_numpy()
    expected = true_kappa(pi, CODER_CONFUSION["coder_a"], CODER_CONFUSION["coder_b"])
    assert abs(cohen_kappa_score(a, b) - expected) < 0.015
    # a coder's code of an item does not depend on which sample it appears in
    assert (simulate_codes(truth.iloc[::7], "coder_a", 1) == a.iloc[::7]).all()


def test_true_kappa_identity_confusions_is_one():
    pi = np.array([0.5, 0.2, 0.2, 0.1])
    assert true_kappa(pi, np.eye(4), np.eye(4)) == 1.0
    # a coder who codes at random (every row the prevalence) agrees only by chance
    chance = np.tile(pi, (4, 1))
    assert abs(true_kappa(pi, np.eye(4), chance)) < 1e-12
