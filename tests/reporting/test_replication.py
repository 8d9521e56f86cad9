"""The replication package: the tiny workflow builds it; the validation reproduces from it.

Runs `snakemake replication` with config/test.yaml on a small generated SYNTHETIC example
(~2-4 min on 2 cores), unpacks results/replication.tar.gz in another folder and recomputes
every metric from the package alone with textgauge.steps.validation: all must match exactly.
"""

from __future__ import annotations

import json
import tarfile

import pandas as pd
import pytest

from tests.conftest import snakemake
from textgauge.reporting import replication

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def package(tiny_run):
    """The replication package of the session's tiny workflow run (tests/conftest.py)."""
    snakemake(tiny_run, "replication", "--configfile", "config/test.yaml")
    tarball = tiny_run / "results/replication.tar.gz"
    assert tarball.exists()
    return tiny_run, tarball


def test_package_contents(package):
    run, tarball = package
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
        assert all(n == "replication" or n.startswith("replication/") for n in names)
        assert all(m.mtime == replication.FIXED_MTIME for m in tar.getmembers())
    need = ["README.md", "config.yaml", "codebook.md", "methods.md", "replication.json",
            "gold/sample.parquet", "gold/codes.parquet", "gold/reference.parquet",
            "metrics/human/metrics.json", "report/index.html", "manifests/report.json",
            "envs/core.yaml", "envs/train.yaml", "prompts/zeroshot.jinja"]
    for m in ("encoder", "zeroshot"):
        need += [f"predictions/{m}.gold.parquet", f"metrics/{m}/metrics.json",
                 f"manifests/predictions-{m}.json"]
    missing = [n for n in need if f"replication/{n}" not in names]
    assert not missing, missing
    assert any(n.startswith("replication/gold/human_codes/") for n in names)
    folder = run / "results/replication"
    assert replication.verify_checksums(folder) == []
    # gold predictions only, every gold item
    gold = pd.read_parquet(folder / "gold/sample.parquet")
    for m in ("encoder", "zeroshot"):
        preds = pd.read_parquet(folder / f"predictions/{m}.gold.parquet")
        assert set(preds["id"]) == set(gold["id"])
    readme = (folder / "README.md").read_text()
    assert "revalidate" in readme and "snakemake" in readme and "SYNTHETIC" in readme


def test_validation_reproduces_exactly_from_the_tarball(package, tmp_path):
    _, tarball = package
    folder = replication.unpack(tarball, tmp_path)
    assert replication.verify_checksums(folder) == []
    result = replication.revalidate(folder)
    assert result["human"]["match"], result["human"]["differences"]
    for m, r in result["models"].items():
        assert r["match"], (m, r["differences"][:10])
        stored = json.loads((folder / f"metrics/{m}/metrics.json").read_text())
        assert r["kappa"] == stored["kappa"]["kappa"]
        assert r["macro_f1"] == stored["macro_f1"]["estimate"]
    assert set(result["models"]) == {"encoder", "zeroshot"}
    assert result["all_match"]


def test_revalidate_detects_a_changed_prediction(package, tmp_path):
    _, tarball = package
    folder = replication.unpack(tarball, tmp_path)
    p = folder / "predictions/encoder.gold.parquet"
    preds = pd.read_parquet(p)
    labels = sorted(set(preds["label"].dropna()) | {"economic", "moral"})
    first = preds.loc[0, "label"]
    preds.loc[0, "label"] = next(lab for lab in labels if lab != first)
    preds.to_parquet(p, index=False)
    assert "predictions/encoder.gold.parquet" in replication.verify_checksums(folder)
    result = replication.revalidate(folder)
    assert not result["models"]["encoder"]["match"]
    assert result["models"]["zeroshot"]["match"]
    assert not result["all_match"]


def test_the_archive_is_reproducible(package, tmp_path):
    run, tarball = package
    again = tmp_path / "again.tar.gz"
    replication.pack(run / "results/replication", again)
    assert again.read_bytes() == tarball.read_bytes()


def test_revalidate_cli(package, capsys):
    _, tarball = package
    assert replication.revalidate_cli([str(tarball)]) == 0
    out = capsys.readouterr().out
    assert "encoder:" in out and "reproduced" in out and "DIFFERS" not in out
