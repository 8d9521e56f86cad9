"""Through snakemake: a tie-heavy long-format code file whose coders do not include the lead
coder stops the run with the adjudication sheet to fill; with ``gold.ties: exclude`` the counts
in results/gold/codes.json match the files."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import yaml

from tests.conftest import REPO, copy_workflow, snakemake

TARGET = "results/gold/codes.json"


def long_codes(corpus_ids: list[str]) -> pd.DataFrame:
    """Two crowd coders per text out of c0..c3; a third of the texts tie (moral vs rights)."""
    rows = []
    for k, i in enumerate(corpus_ids):
        a, b = f"c{k % 4}", f"c{(k + 1) % 4}"
        tie = int(hashlib.sha256(i.encode()).hexdigest(), 16) % 3 == 0
        rows += [(i, a, "moral"), (i, b, "rights" if tie else "moral")]
    return pd.DataFrame(rows, columns=["sentence_id", "worker", "code"])


def setup(tmp_path, ties=None):
    wd = copy_workflow(tmp_path / "wf")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    corpus = pd.read_csv(wd / cfg["corpus"]["path"], dtype=str)
    long_codes(list(corpus["id"])).to_csv(wd / "crowd.csv", index=False)
    cfg["gold"].update({"size": 40, "simulate": None, "coders": ["coder_a", "coder_b"],
                        "codes_long": {"path": "crowd.csv", "id_column": "sentence_id",
                                       "coder_column": "worker", "label_column": "code"}})
    if ties:
        cfg["gold"]["ties"] = ties
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return wd


def test_ties_stop_the_run_with_the_sheet_then_exclude_counts_match(tmp_path):
    wd = setup(tmp_path)
    proc = snakemake(wd, TARGET, check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    sheet = wd / "results/gold/to_adjudicate.csv"
    assert "results/gold/to_adjudicate.csv" in out and "gold items are tied" in out, out[-3000:]
    assert sheet.exists() and not (wd / TARGET).exists()
    todo = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    assert len(todo) > 0 and set(todo["tied_labels"]) == {"moral | rights"}

    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    cfg["gold"]["ties"] = "exclude"
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(wd, TARGET)
    info = json.loads((wd / TARGET).read_text())
    c = info["counts"]
    sample = pd.read_parquet(wd / "results/gold/sample.parquet")
    ref = pd.read_parquet(wd / "results/gold/reference.parquet")
    codes = pd.read_parquet(wd / "results/gold/codes.parquet")
    crowd = pd.read_csv(wd / "crowd.csv", dtype=str)
    crowd = crowd.loc[crowd["sentence_id"].isin(set(sample["id"]))]
    tied = crowd.groupby("sentence_id")["code"].nunique() > 1
    assert c["sample_size"] == len(sample) == 40
    assert c["evaluated"] == len(ref) == 40 - int(tied.sum())
    assert c["tied"] == c["excluded_ties"] == c["excluded"] == int(tied.sum()) == len(todo)
    assert c["codes"] == len(codes) == len(crowd) == 80
    assert sorted(info["excluded_ids"]["ties"]) == sorted(tied.index[tied])
    assert not (wd / "results/gold/to_adjudicate.csv").exists()

    # the methods sentence states exactly these counts
    from textgauge.reporting.report import reference_sentence
    text = reference_sentence(info)
    n_tied = int(tied.sum())
    assert "Of the 40 sampled texts, 40 were coded (80 codes" in text
    assert f"{n_tied} tied ({n_tied} excluded)" in text
    assert f"{n_tied} were excluded (0 without any code, {n_tied} unresolved ties)" in text
    assert f"every coder is evaluated on {40 - n_tied} texts" in text
