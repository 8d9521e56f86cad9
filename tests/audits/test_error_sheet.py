"""Error analysis sheet: export, coded import, validation, tabulation."""

from __future__ import annotations

import pandas as pd
import pytest

from textgauge.audits.error_sheet import (
    ERROR_CATEGORIES,
    build_error_sheet,
    read_error_sheet,
    tabulate_error_patterns,
    write_error_sheet,
)
from textgauge.data.sheets import read_csv, write_csv
from textgauge.errors import InputDataError


@pytest.fixture
def data():
    gold = pd.DataFrame({"id": ["1", "2", "3", "4", "5", "6"],
                         "reference": ["pro", "con", "pro", "con", "neutral", "pro"],
                         "text": ["great", "awful, sure", "hm", "they say it works", "ok", "yes"]})
    preds = pd.DataFrame({"id": ["1", "2", "3", "4", "5", "6"],
                          "label": ["pro", "pro", "con", "pro", "neutral", None],
                          "confidence": [0.9, 0.95, 0.55, 0.7, 0.8, None],
                          "status": ["ok", "ok", "ok", "ok", "ok", "invalid"]})
    codes = pd.DataFrame({"id": ["2", "2", "3", "3", "3", "4"],
                          "coder": ["a", "b", "a", "b", "c", "a"],
                          "label": ["con", "con", "pro", "con", "pro", "con"]})
    return gold, preds, codes


def test_build_sheet(data):
    gold, preds, codes = data
    sheet = build_error_sheet(gold, preds, human_codes=codes)
    assert sheet["id"].tolist() == ["2", "4", "3", "6"]  # most confident errors first
    assert list(sheet.columns[:8]) == ["id", "text", "gold", "predicted", "confidence",
                                       "status", "human_labels", "human_agree"]
    s = sheet.set_index("id")
    assert s.loc["2", "text"] == "awful, sure"
    assert s.loc["3", "human_labels"] == "pro; con; pro"
    assert s.loc["3", "human_agree"] == pytest.approx(2 / 3)
    assert s.loc["2", "human_agree"] == 1.0
    assert s.loc["6", "status"] == "invalid" and s.loc["6", "predicted"] == ""
    assert pd.isna(s.loc["6", "human_agree"])
    assert (sheet["category"] == "").all() and (sheet["note"] == "").all()


def test_round_trip_and_tabulation(data, tmp_path):
    gold, preds, codes = data
    sheet = build_error_sheet(gold, preds, human_codes=codes)
    path = write_error_sheet(sheet, tmp_path / "errors.csv")
    # the sheet as a spreadsheet program saves it: a typed leading apostrophe is escaped
    coded = read_csv(path, dtype=str, keep_default_na=False)
    coded["category"] = ["Sarcasm / Irony", "indirect_stance", "ambiguity", ""]
    coded.loc[0, "note"] = "'sure' is ironic"
    write_csv(coded, path)
    back = read_error_sheet(path)
    assert back["id"].tolist() == sheet["id"].tolist()
    assert back["category"].tolist() == ["sarcasm_irony", "indirect_stance", "ambiguity", ""]
    assert back.loc[0, "text"] == "awful, sure"
    assert back.loc[0, "note"] == "'sure' is ironic"
    tab = tabulate_error_patterns(path).set_index("category")
    assert tab.loc["sarcasm_irony", "n"] == 1
    assert tab.loc["sarcasm_irony", "share"] == pytest.approx(1 / 3)
    assert tab.loc["sarcasm_irony", "example_ids"] == "2"
    assert tab.loc["(uncoded)", "n"] == 1 and pd.isna(tab.loc["(uncoded)", "share"])
    by = tabulate_error_patterns(back, by=["gold"])
    assert set(by.columns) == {"gold", "category", "n", "share", "example_ids"}


def test_course_example_shares():
    ids = [str(i) for i in range(50)]
    cats = ["sarcasm_irony"] * 30 + ["indirect_stance"] * 10 + ["ambiguity"] * 10
    tab = tabulate_error_patterns(pd.DataFrame({"id": ids, "category": cats}), n_examples=2)
    assert tab["category"].tolist() == ["sarcasm_irony", "ambiguity", "indirect_stance"]
    assert tab["share"].tolist() == pytest.approx([0.6, 0.2, 0.2])
    assert tab["example_ids"].iloc[0] == "0, 1"


def test_unknown_category_names_the_row(data, tmp_path):
    gold, preds, codes = data
    sheet = build_error_sheet(gold, preds, human_codes=codes)
    sheet["category"] = ["sarcasm_irony", "sarcasm", "other", ""]
    path = write_error_sheet(sheet, tmp_path / "bad.csv")
    with pytest.raises(InputDataError) as exc:
        read_error_sheet(path)
    msg = str(exc.value)
    assert "row 3" in msg and "id 4" in msg and "'sarcasm'" in msg
    assert all(c in msg for c in ERROR_CATEGORIES)
    with pytest.raises(InputDataError, match="without a category"):
        read_error_sheet(sheet.assign(category=["other", "other", "other", ""]),
                         allow_uncoded=False)
    with pytest.raises(InputDataError, match="does not exist"):
        read_error_sheet(tmp_path / "missing.csv")
