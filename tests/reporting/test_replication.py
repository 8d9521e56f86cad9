"""The replication package: the tiny workflow builds it; the validation reproduces from it.

Runs `snakemake replication` with config/test.yaml on a small generated SYNTHETIC example
(~2-4 min on 2 cores), unpacks results/replication.tar.gz in another folder and recomputes
every metric from the package alone with textgauge.steps.validation: all must match exactly.
The prompt tests build a small package by hand (fast): a package whose prompt template does
not hash to the prompt hash of its predictions is refused, when built and when revalidated.
"""

from __future__ import annotations

import json
import tarfile

import pandas as pd
import pytest
import yaml

from tests.conftest import snakemake
from textgauge.cli import main as cli_main
from textgauge.inference.prompting import PromptTemplate, select_examples
from textgauge.reporting import replication, revalidation


@pytest.fixture(scope="module")
def package(tiny_run):
    """The replication package of the session's tiny workflow run (tests/conftest.py)."""
    snakemake(tiny_run, "replication", "--configfile", "config/test.yaml")
    tarball = tiny_run / "results/replication.tar.gz"
    assert tarball.exists()
    return tiny_run, tarball


@pytest.mark.slow
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
    for m in ("encoder", "zeroshot", "baseline"):
        need += [f"predictions/{m}.gold.parquet", f"metrics/{m}/metrics.json",
                 f"manifests/predictions-{m}.json"]
    missing = [n for n in need if f"replication/{n}" not in names]
    assert not missing, missing
    assert any(n.startswith("replication/gold/human_codes/") for n in names)
    folder = run / "results/replication"
    assert revalidation.verify_checksums(folder) == []
    # gold predictions only, every gold item
    gold = pd.read_parquet(folder / "gold/sample.parquet")
    for m in ("encoder", "zeroshot"):
        preds = pd.read_parquet(folder / f"predictions/{m}.gold.parquet")
        assert set(preds["id"]) == set(gold["id"])
    readme = (folder / "README.md").read_text()
    assert "revalidate" in readme and "snakemake" in readme and "SYNTHETIC" in readme


@pytest.mark.slow
def test_validation_reproduces_exactly_from_the_tarball(package, tmp_path):
    _, tarball = package
    folder = revalidation.unpack(tarball, tmp_path)
    assert revalidation.verify_checksums(folder) == []
    result = revalidation.revalidate(folder)
    assert result["human"]["match"], result["human"]["differences"]
    for m, r in result["models"].items():
        assert r["match"], (m, r["differences"][:10])
        stored = json.loads((folder / f"metrics/{m}/metrics.json").read_text())
        assert r["kappa"] == stored["kappa"]["kappa"]
        assert r["macro_f1"] == stored["macro_f1"]["estimate"]
    assert set(result["models"]) == {"encoder", "zeroshot", "baseline"}
    assert result["all_match"]


@pytest.mark.slow
def test_revalidate_detects_a_changed_prediction(package, tmp_path):
    _, tarball = package
    folder = revalidation.unpack(tarball, tmp_path)
    p = folder / "predictions/encoder.gold.parquet"
    preds = pd.read_parquet(p)
    labels = sorted(set(preds["label"].dropna()) | {"economic", "moral"})
    first = preds.loc[0, "label"]
    preds.loc[0, "label"] = next(lab for lab in labels if lab != first)
    preds.to_parquet(p, index=False)
    assert "predictions/encoder.gold.parquet" in revalidation.verify_checksums(folder)
    result = revalidation.revalidate(folder)
    assert not result["models"]["encoder"]["match"]
    assert result["models"]["zeroshot"]["match"]
    assert not result["all_match"]


@pytest.mark.slow
def test_the_archive_is_reproducible(package, tmp_path):
    run, tarball = package
    again = tmp_path / "again.tar.gz"
    replication.pack(run / "results/replication", again)
    assert again.read_bytes() == tarball.read_bytes()


@pytest.mark.slow
def test_revalidate_cli(package, capsys):
    _, tarball = package
    assert revalidation.revalidate_cli([str(tarball)]) == 0
    out = capsys.readouterr().out
    assert "encoder:" in out and "reproduced" in out and "DIFFERS" not in out


# ------------------------------------------------------------------ prompts (a package by hand)
LABELS = {"economic": "about the economy", "moral": "about values"}
TEMPLATE = ("{% block system %}Label the text: {% for l in labels %}{{ l.name }} "
            "{% endfor %}{% for e in examples %}[{{ e.text }} => {{ e.label }}]{% endfor %}"
            "{% endblock %}{% block user %}{{ text }}{% endblock %}")


def _hand_package(d, *, edit_prompt_before_build=False):
    """A package of one encoder and two prompted coders (one few-shot), built from files
    made here; the predictions record the hash of the prompt they were made with."""
    src = d / "src"
    (src / "prompts").mkdir(parents=True)
    cfg = {"project": {"name": "hand", "seed": 5}, "labels": LABELS,
           "codebook": {"instructions": "Code the main frame."},
           "corpus": {"strata": []},
           "models": {"enc": {"kind": "encoder", "base_model": "tiny"},
                      "zs": {"kind": "prompt", "model": "m", "prompt": str(src / "prompts/zs.jinja")},
                      "fs": {"kind": "prompt", "model": "m", "few_shot": 1,
                             "prompt": str(src / "prompts/fs.jinja")}}}
    pool = pd.DataFrame({"id": ["p1", "p2", "p3", "p4"], "text": ["w1", "w2", "w3", "w4"],
                         "label": ["economic", "moral", "economic", "moral"]})
    pool.to_parquet(src / "train.parquet")
    # the coder's own selection (steps.infer.predict)
    examples = select_examples(list(zip(pool["text"], pool["label"], strict=True)), 1, 5)
    gold = pd.DataFrame({"id": ["g1", "g2", "g3"], "text": ["a", "b", "c"]})
    gold.to_parquet(src / "sample.parquet")
    pd.DataFrame({"id": gold["id"], "coder": "a", "label": "economic"}).to_parquet(
        src / "codes.parquet")
    pd.DataFrame({"id": gold["id"], "reference": "economic"}).to_parquet(src / "reference.parquet")
    for name in ("codes.json", "sample.json", "ingest.json", "human.json", "report.json"):
        (src / name).write_text("{}")
    for name in ("codebook.md", "pairwise.csv"):
        (src / name).write_text("x\n")
    preds, manifests, vdirs = {}, {}, {}
    for m in cfg["models"]:
        h = None
        if m != "enc":
            (src / f"prompts/{m}.jinja").write_text(TEMPLATE)
            h = PromptTemplate.from_file(src / f"prompts/{m}.jinja", LABELS,
                                         "Code the main frame.",
                                         examples if m == "fs" else ()).hash()
        pd.DataFrame({"id": gold["id"], "label": "economic", "status": "ok",
                      "prompt_hash": h}).to_parquet(src / f"{m}.parquet")
        (src / f"{m}.manifest.json").write_text(json.dumps({"prompt_hash": h}))
        (src / m).mkdir()
        preds[m], manifests[m], vdirs[m] = (str(src / f"{m}.parquet"),
                                            str(src / f"{m}.manifest.json"), str(src / m))
    if edit_prompt_before_build:
        (src / "prompts/zs.jinja").write_text(TEMPLATE + "\nBe brief.")
    index = replication.build_package(
        d / "pkg", None, cfg, list(cfg["models"]), sample=str(src / "sample.parquet"),
        codes=str(src / "codes.parquet"), reference=str(src / "reference.parquet"),
        codes_summary=str(src / "codes.json"), sample_summary=str(src / "sample.json"),
        ingest_summary=str(src / "ingest.json"), codebook=str(src / "codebook.md"),
        human_metrics=str(src / "human.json"), human_pairwise=str(src / "pairwise.csv"),
        predictions=preds, prediction_manifests=manifests, validation_dirs=vdirs,
        report_files=[str(src / "report.json")],
        prompt_files=[str(src / "prompts/zs.jinja"), str(src / "prompts/fs.jinja")],
        few_shot_pool=str(src / "train.parquet"))
    return d / "pkg", index, preds


def test_each_predictions_file_is_stored_with_its_prompt_hash(tmp_path):
    pkg, index, preds = _hand_package(tmp_path)
    entries = index["predictions"]
    assert entries["enc"]["prompt_hash"] is None
    for m in ("zs", "fs"):
        recorded = pd.read_parquet(preds[m])["prompt_hash"].iloc[0]
        assert entries[m]["prompt_hash"] == recorded
        assert entries[m]["prompt_template"] == f"prompts/{m}.jinja"
        assert (pkg / entries[m]["prompt_template"]).exists()
    # the few-shot examples the coder saw are in the package: they enter the hash
    assert len(entries["fs"]["few_shot_examples"]) == 2
    assert entries["zs"]["few_shot_examples"] == []
    assert entries["zs"]["prompt_hash"] != entries["fs"]["prompt_hash"]
    stored = json.loads((pkg / "replication.json").read_text())
    cfg = yaml.safe_load((pkg / "config.yaml").read_text())
    assert revalidation.check_package_prompts(pkg, stored, cfg) == {
        m: entries[m]["prompt_hash"] for m in ("zs", "fs")}


def test_revalidate_refuses_a_package_whose_prompt_was_edited(tmp_path, capsys):
    pkg, index, _ = _hand_package(tmp_path)
    prompt = pkg / "prompts/zs.jinja"
    prompt.write_text(prompt.read_text() + "\nAnswer in one word.")
    edited = PromptTemplate.from_file(prompt, LABELS, "Code the main frame.").hash()
    recorded = index["predictions"]["zs"]["prompt_hash"]
    with pytest.raises(replication.PromptMismatchError) as err:
        revalidation.revalidate(pkg)
    msg = str(err.value)
    for part in ("zs:", "prompts/zs.jinja", "predictions/zs.gold.parquet", edited, recorded):
        assert part in msg, (part, msg)
    # the command line says the same and fails
    assert cli_main(["revalidate", str(pkg)]) == 1
    assert recorded in capsys.readouterr().err


def test_revalidate_refuses_changed_few_shot_examples(tmp_path):
    pkg, _, _ = _hand_package(tmp_path)
    index = json.loads((pkg / "replication.json").read_text())
    index["predictions"]["fs"]["few_shot_examples"][0][0] = "another example"
    (pkg / "replication.json").write_text(json.dumps(index))
    with pytest.raises(replication.PromptMismatchError, match="fs:.*prompts/fs.jinja"):
        revalidation.revalidate(pkg)


def test_the_package_is_not_built_with_a_prompt_that_did_not_make_the_predictions(tmp_path):
    with pytest.raises(replication.PromptMismatchError, match="zs:.*zs.jinja.*zs.parquet"):
        _hand_package(tmp_path, edit_prompt_before_build=True)
