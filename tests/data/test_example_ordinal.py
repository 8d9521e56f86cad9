"""The bundled SYNTHETIC ordinal example: reproducible, errors mostly one step away, and
known (weighted) agreement that the sample estimates converge to."""

import filecmp

import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score

from tests.conftest import REPO
from textgauge.data.example import read_confusions, simulate_codes, true_kappa
from textgauge.data.example_ordinal import (
    CODER_CONFUSION,
    SCALE,
    OrdinalExampleSpec,
    generate_corpus,
    write_ordinal_example,
)


def test_generator_rewrites_the_bundled_files_byte_for_byte(tmp_path):
    paths = write_ordinal_example(tmp_path)
    for p in paths.values():
        assert filecmp.cmp(p, REPO / "resources" / "example_ordinal" / p.name,
                           shallow=False), p.name


def test_coders_err_mostly_by_one_step():
    for m in CODER_CONFUSION.values():
        np.testing.assert_allclose(m.sum(axis=1), 1.0)
        d = np.abs(np.subtract.outer(np.arange(5), np.arange(5)))
        off = (m * (d == 1)).sum() / (m * (d > 0)).sum()
        assert off > 0.75  # most errors are one step away
    mats = read_confusions(REPO / "resources/example_ordinal/simulated_coders.csv")
    np.testing.assert_allclose(mats["coder_b"], CODER_CONFUSION["coder_b"])


def test_weighted_agreement_matches_known_truth():
    df = generate_corpus(OrdinalExampleSpec(n_texts=20000, seed=3))
    truth = df.set_index("id")["true_label"]
    a = simulate_codes(truth, "coder_a", 1, CODER_CONFUSION, SCALE)
    b = simulate_codes(truth, "coder_b", 1, CODER_CONFUSION, SCALE)
    pi = truth.value_counts(normalize=True).reindex(SCALE).to_numpy()
    pos = {lab: i for i, lab in enumerate(SCALE)}
    for w in ("linear", "quadratic"):
        expected = true_kappa(pi, CODER_CONFUSION["coder_a"], CODER_CONFUSION["coder_b"], w)
        got = cohen_kappa_score(a.map(pos), b.map(pos), weights=w)
        assert abs(got - expected) < 0.015, w
    unweighted = true_kappa(pi, CODER_CONFUSION["coder_a"], CODER_CONFUSION["coder_b"])
    assert true_kappa(pi, CODER_CONFUSION["coder_a"], CODER_CONFUSION["coder_b"],
                      "quadratic") > unweighted + 0.15  # near misses earn partial credit
    assert set(pd.unique(df["source"])) == {"council", "press", "social"}


def test_cli_writes_the_ordinal_example(tmp_path, capsys):
    from textgauge.cli import main

    assert main(["example", "--ordinal", "--out", str(tmp_path)]) == 0
    assert filecmp.cmp(tmp_path / "truth.csv", REPO / "resources/example_ordinal/truth.csv",
                       shallow=False)
    assert "corpus:" in capsys.readouterr().out
