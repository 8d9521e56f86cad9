"""The ordinal codebook end to end: the bundled SYNTHETIC 5-point stance example
(config/examples/ordinal.yaml) on a tiny gold set, through snakemake."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake
from textgauge.data.example_ordinal import SCALE

pytestmark = pytest.mark.slow

#: the example made tiny (a whole config, run with --replace-workflow-config): 30 gold items,
#: one encoder epoch on 120 texts, scoring the gold items only. The prompted coder and its
#: positional audit (the scale shown reversed) are left out for time: the prompt and the
#: weighted kappa between orders are tested in tests/inference/test_prompting.py and
#: tests/audits/test_positional.py.
def _tiny_config(wd: Path) -> Path:
    cfg = yaml.safe_load((wd / "config/examples/ordinal.yaml").read_text())
    cfg["gold"]["size"] = 30
    cfg["gold"]["development_size"] = 20  # evaluate_development takes the same scale
    cfg["inference"]["shards"] = 1
    cfg["validation"]["bootstrap"] = 200
    cfg["audits"] = {"positional_orders": []}
    enc = cfg["models"]["encoder"]
    enc.update(epochs=1, max_train_items=120, early_stopping_patience=1, scope="gold",
               limits={"inference_batch_size": 64})
    cfg["models"] = {"encoder": enc}
    path = wd / "config/ordinal_tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def ordinal_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("ordinal") / "wf")
    _tiny_config(wd)
    snakemake(wd, "--configfile", "config/ordinal_tiny.yaml", "--replace-workflow-config")
    snakemake(wd, "development", "--configfile", "config/ordinal_tiny.yaml",
              "--replace-workflow-config")
    return wd / "results"


def test_human_agreement_is_weighted_and_ordinal(ordinal_run):
    human = json.loads((ordinal_run / "validation/human/metrics.json").read_text())
    assert human["scale"] == "ordinal" and human["kappa_weights"] == "quadratic"
    assert human["alpha"]["level"] == "ordinal"
    assert human["pairwise"][0]["weights"] == "quadratic"
    # the simulated coders' known population kappa is the weighted one, too
    pair = human["simulated_truth"]["pairs"][0]
    assert pair["weights"] == "quadratic" and pair["true_kappa"] > 0.75  # unweighted: 0.48


def test_model_metrics_have_the_ordinal_block(ordinal_run):
    for m in ("encoder",):
        metrics = json.loads((ordinal_run / f"validation/{m}/metrics.json").read_text())
        assert metrics["scale"] == "ordinal" and metrics["kappa_weights"] == "quadratic"
        assert metrics["kappa"]["weights"] == "quadratic"
        o = metrics["ordinal"]
        assert o["scale"] == list(SCALE) and o["n"] == metrics["n_evaluated"]
        for key in ("exact", "off_by_one", "within_one", "mae"):
            assert o[key]["estimate"] is not None and o[key]["n_boot"] == 200
        assert o["n_valid"] + o["n_invalid"] == o["n"]
        # the confusion matrix in scale order; per-class F1 kept
        confusion = pd.read_csv(ordinal_run / f"validation/{m}/confusion.csv", index_col=0)
        assert list(confusion.index) == list(SCALE)
        assert list(confusion.columns[:len(SCALE)]) == list(SCALE)
        assert [r["label"] for r in metrics["per_class"]] == list(SCALE)
        strata = pd.read_csv(ordinal_run / f"validation/{m}/per_stratum.csv")
        assert strata.iloc[0]["kappa"] == pytest.approx(metrics["kappa"]["kappa"])


def test_development_sample_is_scored_on_the_same_scale(ordinal_run):
    dev = json.loads((ordinal_run / "development/encoder/metrics.json").read_text())
    assert dev["evaluated_on"] == "development"
    assert (dev["scale"], dev["kappa"]["weights"]) == ("ordinal", "quadratic")
    assert dev["ordinal"]["n"] == dev["n_evaluated"]
    human = json.loads((ordinal_run / "development/human/metrics.json").read_text())
    assert human["alpha"]["level"] == "ordinal"


def test_report_names_weighted_kappa_and_ordinal_alpha(ordinal_run):
    html = (ordinal_run / "report/index.html").read_text()
    assert "weighted κ (quadratic) vs gold" in html
    assert "Krippendorff's α (ordinal)" in html
    assert "Ordinal scale" in html and "off by one step" in html
    assert "mean absolute error (scale steps)" in html
    methods = (ordinal_run / "report/methods.md").read_text()
    assert "quadratic-weighted Cohen's kappa" in methods
    assert "Krippendorff's ordinal alpha" in methods
    assert "exactly one step away" in methods
