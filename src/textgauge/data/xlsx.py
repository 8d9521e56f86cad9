"""XLSX coding sheets: the form a coder fills in a spreadsheet program, and reading it back.

Coders use spreadsheets, and a CSV opened there is fragile: the label column has no list of
allowed labels, a program that saves it again turns ids such as ``007`` into numbers (``7``,
``1.23E+15``) and a long text becomes a cell longer than Excel keeps. The workbook written
here avoids each of these:

* the ``coding`` tab holds item, id, text, label and note; item, id and text are locked
  (sheet protection without a password: it guards against slips, not against a coder who
  means to change the sheet), label and note are the only cells a coder can edit;
* the label column offers a drop-down list of the codebook's labels (a list data validation
  reading the labels from the ``codebook`` tab, so a label containing a comma stays one
  label), and refuses anything else;
* the ``codebook`` tab has each label with its definition and the coding instructions;
* every cell is stored as text, never as a formula or a number: a text that begins with
  ``=`` is shown as written, and an id keeps its leading zeros;
* a text longer than an Excel cell holds (:data:`EXCEL_CELL_LIMIT`) is cut with a visible
  marker saying how much is missing (the CSV sheet keeps the whole text) and counted.

:func:`read_xlsx_table` reads a returned workbook with every value as text; ids a
spreadsheet program stored as numbers or dates are listed in ``attrs["non_text_ids"]`` so
the import can explain an id that no longer matches (:func:`textgauge.data.ids.spreadsheet_damage`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.errors import InputDataError, format_rows

log = logging.getLogger("textgauge")

__all__ = ["EXCEL_CELL_LIMIT", "CODING_TAB", "CODEBOOK_TAB", "WorkbookInfo", "truncate_text",
           "write_coding_workbook", "read_xlsx_table"]

#: the most characters (UTF-16 code units) an Excel cell holds
EXCEL_CELL_LIMIT = 32_767
CODING_TAB = "coding"
CODEBOOK_TAB = "codebook"
#: column widths (characters) of the coding tab; id and label widths follow their contents
_WIDTHS = {"item": 7, "text": 90, "note": 40}
_MAX_ID_WIDTH = 30


@dataclass
class WorkbookInfo:
    """What writing one workbook did: how many texts were cut, which items, and by how much."""

    path: str
    rows: int
    truncated: int = 0
    truncated_items: list[str] = field(default_factory=list)
    characters_not_shown: int = 0
    control_characters_replaced: int = 0


def _units(text: str) -> int:
    """Length as Excel counts it (UTF-16 code units: a character beyond U+FFFF is two)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _marker(n: int, where: str) -> str:
    return f" [... truncated: {n} characters not shown; {where}]"


def truncate_text(text: str, limit: int = EXCEL_CELL_LIMIT,
                  where: str = "see the CSV sheet") -> tuple[str, int]:
    """``text`` cut to fit ``limit`` UTF-16 units with a visible marker, and the number of
    characters not shown (0: it fits and is returned unchanged).

    The marker ends the cell, so a coder sees that the text goes on and where to read it
    whole; the count in the marker is exact (the marker's own length is accounted for).
    """
    if _units(text) <= limit:
        return text, 0
    n = 0
    for _ in range(5):  # the marker's length depends on the count's digits: settle it
        room = limit - _units(_marker(max(n, 1), where))
        kept, used = [], 0
        for ch in text:
            w = 2 if ord(ch) > 0xFFFF else 1
            if used + w > room:
                break
            kept.append(ch)
            used += w
        head = "".join(kept)
        new_n = len(text) - len(head)
        if new_n == n:
            break
        n = new_n
    return head + _marker(n, where), n


def _clean(text: str) -> tuple[str, int]:
    """Control characters an XLSX file cannot hold (XML 1.0), replaced by U+FFFD, and how many."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    return ILLEGAL_CHARACTERS_RE.subn("\ufffd", text)


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def _put(ws: Any, row: int, col: int, value: str) -> Any:
    """Write ``value`` as a text cell: never a formula (``=...``), number or date."""
    cell = ws.cell(row=row, column=col)
    cell.value = value
    cell.data_type = "s"
    return cell


def _save_atomic(wb: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        wb.save(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_coding_workbook(sheet: pd.DataFrame, path: str | Path, codebook: Mapping[str, str],
                          instructions: str = "", *, coder: str = "",
                          full_text: str = "see the CSV sheet") -> WorkbookInfo:
    """Write one coder's blinded sheet (columns of :data:`textgauge.data.coding.SHEET_COLUMNS`)
    as an XLSX workbook with a locked, wrapped text, a drop-down label list and the codebook.

    ``full_text`` completes the truncation marker: where the coder reads a text that did not
    fit (the CSV sheet written beside, by default). Returns what was truncated; the caller
    logs and records it. Ids holding control characters cannot be stored in XLSX: that is an
    :class:`InputDataError` naming the rows and the option that writes CSV sheets only.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, Protection
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.datavalidation import DataValidation

    p = Path(path)
    columns = list(sheet.columns)
    for need in ("id", "text", "label"):
        if need not in columns:
            raise ValueError(f"a coding sheet needs a {need!r} column, not {columns}")
    labels = [str(lab) for lab in codebook]
    info = WorkbookInfo(path=str(p), rows=len(sheet))

    wb = Workbook()
    ws = wb.active
    ws.title = CODING_TAB
    bold, top = Font(bold=True), Alignment(vertical="top")
    wrap = Alignment(wrap_text=True, vertical="top")
    editable = Protection(locked=False)
    for j, name in enumerate(columns, start=1):
        _put(ws, 1, j, str(name)).font = bold
    bad_ids = []
    for i, values in enumerate(sheet.itertuples(index=False), start=2):
        for j, (name, value) in enumerate(zip(columns, values, strict=True), start=1):
            text = _as_text(value)
            text, n_ctrl = _clean(text)
            if n_ctrl and name == "id":
                bad_ids.append(f"row {i - 1} ({_as_text(value)!r})")
            info.control_characters_replaced += n_ctrl
            if name == "text":
                text, cut = truncate_text(text, where=full_text)
                if cut:
                    info.truncated += 1
                    info.truncated_items.append(_as_text(values[columns.index("id")]))
                    info.characters_not_shown += cut
            elif _units(text) > EXCEL_CELL_LIMIT:
                text, _ = truncate_text(text, where=full_text)
            cell = _put(ws, i, j, text)
            cell.alignment = wrap if name in ("text", "note") else top
            if name in ("label", "note"):
                cell.protection = editable
    if bad_ids:
        raise InputDataError(
            f"The coding sheet of {coder or p.stem} cannot be written as XLSX: id(s) hold "
            f"control characters that an XLSX file cannot store, in {format_rows(bad_ids)}. "
            "Fix those ids in the corpus, or write CSV sheets only (gold.sheet_formats: [csv]).")

    id_width = max([len(_as_text(v)) for v in sheet["id"]] + [4]) + 2
    label_width = max([len(lab) for lab in labels] + [8]) + 4
    widths = {**_WIDTHS, "id": min(id_width, _MAX_ID_WIDTH), "label": label_width}
    for j, name in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(j)].width = widths.get(name, 20)
    ws.freeze_panes = "A2"

    # the codebook tab first (the validation reads its label range)
    cb = wb.create_sheet(CODEBOOK_TAB)
    for j, name in enumerate(("label", "definition"), start=1):
        _put(cb, 1, j, name).font = bold
    for i, (lab, definition) in enumerate(codebook.items(), start=2):
        _put(cb, i, 1, _clean(str(lab))[0]).alignment = top
        _put(cb, i, 2, _clean(_as_text(definition))[0]).alignment = wrap
    row = len(labels) + 3
    _put(cb, row, 1, "instructions").font = bold
    _put(cb, row, 2, _clean(instructions or "")[0]).alignment = wrap
    _put(cb, row + 1, 1, "how to code").font = bold
    _put(cb, row + 1, 2, "Pick exactly one label per text in the label column of the "
         f"{CODING_TAB} tab (leave it empty if you cannot decide, and say why in the note "
         "column). Return this .xlsx file as it is; do not retype the ids.").alignment = wrap
    cb.column_dimensions["A"].width = label_width
    cb.column_dimensions["B"].width = 100
    cb.protection.sheet = True

    label_col = get_column_letter(columns.index("label") + 1)
    if len(sheet) and labels:
        dv = DataValidation(
            type="list", formula1=f"{CODEBOOK_TAB}!$A$2:$A${len(labels) + 1}",
            allow_blank=True, showDropDown=False, showErrorMessage=True,
            errorTitle="Not a codebook label",
            error="Choose one of the labels in the list (the codebook tab defines them), or "
                  "leave the cell empty.",
            showInputMessage=True, promptTitle="label", prompt="Pick one label from the list.")
        dv.add(f"{label_col}2:{label_col}{len(sheet) + 1}")
        ws.add_data_validation(dv)
    # locked cells stay locked; coders may still resize rows and columns to read long texts
    ws.protection.sheet = True
    ws.protection.formatColumns = False
    ws.protection.formatRows = False
    wb.active = 0
    _save_atomic(wb, p)
    return info


def _cell_text(value: Any) -> str:
    """A returned cell as text: numbers as the spreadsheet shows them (integral floats
    without the decimal part), dates in ISO form, empty cells as ''."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def read_xlsx_table(path: str | Path, what: str = "sheet", id_column: str = "id") -> pd.DataFrame:
    """Read a returned workbook's coding tab (else its first tab) with every value as text.

    Values are read, not formulas (a formula a coder typed counts as the value a spreadsheet
    program last computed). Rows with no value at all (formatted but empty rows at the end)
    are dropped. 0-based positions of ``id_column`` cells that are not text (numbers or
    dates: the id was retyped or the sheet converted) are in ``attrs["non_text_ids"]``.
    """
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    p = Path(path)
    if not p.exists():
        raise InputDataError(f"The {what} {p} does not exist. Check the path in config.yaml "
                             "(paths are relative to the directory you run snakemake in).")
    try:
        wb = load_workbook(p, read_only=True, data_only=True)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise InputDataError(
            f"The {what} {p} could not be read as an .xlsx workbook ({type(exc).__name__}: "
            f"{exc}). Return the workbook as saved by the spreadsheet program (Excel, "
            "LibreOffice: 'Excel 2007-365 (.xlsx)'), or the CSV sheet.") from exc
    try:
        ws = wb[CODING_TAB] if CODING_TAB in wb.sheetnames else wb.worksheets[0]
        rows = list(ws.iter_rows(values_only=True))
    finally:
        wb.close()
    if not rows:
        raise InputDataError(f"The {what} {p} is empty (its {ws.title!r} tab has no rows); "
                             "return the filled sheet.")
    header = [_cell_text(h).strip() for h in rows[0]]
    while header and header[-1] == "":
        header.pop()
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        raise InputDataError(
            f"The {what} {p} has the column(s) {', '.join(map(repr, twice))} more than once in "
            f"its {ws.title!r} tab; keep one of each (the sheet as sent has item, id, text, "
            "label and note).")
    width = len(header)
    body = [tuple(r[:width]) + (None,) * (width - len(r[:width])) for r in rows[1:]]
    body = [r for r in body if any(v is not None and _cell_text(v) != "" for v in r)]
    df = pd.DataFrame([[_cell_text(v) for v in r] for r in body], columns=header, dtype=object)
    if df.empty:
        df = pd.DataFrame({h: pd.Series(dtype=object) for h in header})
    non_text: list[int] = []
    if id_column in header:
        k = header.index(id_column)
        non_text = [i for i, r in enumerate(body)
                    if r[k] is not None and not isinstance(r[k], str)]
    df.attrs["non_text_ids"] = non_text
    return df
