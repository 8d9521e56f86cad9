"""gold.design: model_assisted end to end: a baseline first pass classifies the corpus, the
gold sample is drawn around its predictions, and every gold number is design-weighted, on the
bundled SYNTHETIC example made tiny (through snakemake)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake

pytestmark = pytest.mark.slow


def _config(wd: Path) -> Path:
    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    cfg["gold"].update(size=80, design="model_assisted", confidence_bands=2, strata=[])
    cfg["inference"]["shards"] = 2
    cfg["validation"]["bootstrap"] = 200
    cfg["audits"] = {"positional_orders": [], "revalidation_size": 0}
    cfg["models"] = {"baseline": {"kind": "baseline"}}
    path = wd / "config/design_tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("design") / "wf")
    _config(wd)
    snakemake(wd, "--configfile", "config/design_tiny.yaml", "--replace-workflow-config")
    return wd / "results"


def test_the_sample_is_drawn_around_the_first_pass_outside_its_training(run):
    sample = pd.read_parquet(run / "gold/sample.parquet")
    assert len(sample) == 80 and (sample["design"] == "model_assisted").all()
    assert (sample["first_pass_model"] == "baseline").all()
    train = pd.read_parquet(run / "training/train.parquet")["id"].astype(str)
    val = pd.read_parquet(run / "training/val.parquet")["id"].astype(str)
    assert not set(sample["id"]) & (set(train) | set(val))
    preds = pd.read_parquet(run / "predictions/baseline.parquet").set_index("id")
    # the recorded first-pass label is the baseline's corpus prediction
    assert (preds.loc[sample["id"], "label"].to_numpy()
            == sample["first_pass_label"].to_numpy()).all()
    info = json.loads((run / "gold/sample.json").read_text())["design"]
    assert info["design"] == "model_assisted" and info["first_pass"] == "baseline"
    assert sum(c["cell_n"] for c in info["cells"]) == 80
    assert set(info["planning"]["designs"]) == {"proportional", "model_assisted"}
    assert info["recommendation"].startswith("Drawn with the model_assisted design.")
    # blinding: the coders' sheets hold no first-pass column
    sheet = pd.read_csv(run / "gold/sheets/coder_a.csv")
    assert not {"first_pass_label", "cell", "confidence_band"} & set(sheet.columns)


def test_every_gold_number_is_design_weighted_with_the_sample_as_drawn_beside(run):
    m = json.loads((run / "validation/baseline/metrics.json").read_text())
    assert m["design"]["design"] == "model_assisted" and m["design"]["weighted"] is True
    assert m["as_drawn"] is not None
    assert m["design"]["sum_weights"] > 10 * m["n_evaluated"]  # items stand for the corpus
    assert "kappa" in m["as_drawn"] and m["kappa"]["kappa"] != m["as_drawn"]["kappa"]["kappa"]
    human = json.loads((run / "validation/human/metrics.json").read_text())
    assert human["design"]["weighted"] is True and human["as_drawn"] is not None
    methods = (run / "report/methods.md").read_text()
    assert "model-assisted" in methods.lower() or "model_assisted" in methods
    html = (run / "report/index.html").read_text()
    assert "as drawn" in html.lower()
