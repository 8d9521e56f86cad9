"""One id rule for every file textgauge reads.

A text's id is how a human code, a training label, an adjudication, a review and a prediction
find each other, so every reader applies the same rule (the README states it):

* surrounding whitespace is stripped (``" 12 "`` is ``"12"``);
* an integral number written as a float is that integer (``1.0`` and ``"1.0"`` are ``"1"``):
  spreadsheets and parquet/jsonl readers turn integer ids into floats when a column has a gap;
  other values keep their spelling (``"007"`` stays ``"007"``, ``"1.5"`` stays ``"1.5"``);
* an id must be valid text: undecodable bytes (a file that is not UTF-8, read with
  replacement characters) are an error naming the row, never silently renamed.

:func:`normalise_ids` applies the rule to a column and raises naming the file, column and
rows; :func:`normalise_id_values` returns the bad positions instead (corpus ingest turns them
into rejected rows with their reason).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError, format_rows

#: "12.0", "-3.00": an integer written as a float
_INTEGRAL = re.compile(r"^(-?\d+)\.0+$")
#: what a file read with errors="replace" holds where its bytes were not UTF-8
REPLACEMENT = "\ufffd"
#: the reason a row with an undecodable id is rejected / reported
UNDECODABLE = "id is not valid UTF-8 text (undecodable bytes)"
RULE = ("ids are compared after stripping surrounding spaces and writing integral numbers "
        "without a decimal part (1.0 -> 1)")


class _Undecodable(ValueError):
    pass


def normalise_id(value: object) -> str:
    """One id as text under the id rule ('' for a missing value).

    Raises ``ValueError`` for bytes that are not UTF-8 or text holding replacement
    characters or lone surrogates (both mean the file's bytes were not UTF-8).
    """
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        try:
            value = bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _Undecodable(str(exc)) from None
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return ""
        return str(int(f)) if f.is_integer() else repr(f)
    if value is pd.NA or value is pd.NaT:
        return ""
    s = str(value).strip()
    if REPLACEMENT in s:
        raise _Undecodable("replacement character")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (surrogateescape reading)
        raise _Undecodable("lone surrogate") from None
    m = _INTEGRAL.match(s)
    return m.group(1) if m else s


def normalise_id_values(values: Iterable[object]) -> tuple[list[str], list[int]]:
    """Ids under the rule, and the 0-based positions of undecodable ones (given as '')."""
    out: list[str] = []
    bad: list[int] = []
    for i, v in enumerate(values):
        try:
            out.append(normalise_id(v))
        except _Undecodable:
            out.append("")
            bad.append(i)
    return out, bad


def normalise_ids(values: Iterable[object] | pd.Series, source: str, column: str = "id",
                  allow_empty: bool = False) -> pd.Series:
    """A column of ids under the rule, as a text Series (index kept for a Series).

    ``source`` names the file in messages ("The coding sheet of coder_a (path)"). Rows are
    1-based data rows (the header is row 0). Raises :class:`InputDataError` for undecodable
    ids and, unless ``allow_empty``, for empty ones.
    """
    index = values.index if isinstance(values, pd.Series) else None
    ids, bad = normalise_id_values(values)
    if bad:
        raise InputDataError(
            f"{source}: the {column!r} column has id(s) that are not valid text (undecodable "
            f"bytes) in {format_rows([f'row {i + 1}' for i in bad])}. Ids must be UTF-8 text: "
            "save the file as UTF-8 (or fix those ids); textgauge never renames an id.")
    if not allow_empty:
        empty = [i for i, s in enumerate(ids) if s == ""]
        if empty:
            raise InputDataError(
                f"{source}: the {column!r} column is empty in "
                f"{format_rows([f'row {i + 1}' for i in empty])}. Every row needs the id of "
                "its text.")
    return pd.Series(ids, index=index, dtype=object, name=column)


# ------------------------------------------------------------------ ids a spreadsheet changed
#: '1.23E+15', '1,23e15', '7E+2': how a spreadsheet program writes a long number it converted
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:[.,]\d+)?[eE][+-]?\d+$")
#: digits a spreadsheet keeps of a number (IEEE double precision as Excel shows it)
SPREADSHEET_DIGITS = 15


def spreadsheet_damage(ids: Iterable[str], known: Iterable[str],
                       non_text: Iterable[int] = ()) -> list[str]:
    """The ids (under the rule) that are not ``known`` and that a spreadsheet program most
    likely changed, each as "row N ('7': ...)" with the reason.

    A spreadsheet that reads a sheet and saves it again turns an id that looks like a number
    into one: ``007`` loses its leading zeros, ``1230000000000000`` becomes ``1.23E+15``,
    more than 15 digits lose their tail, ``3-4`` becomes a date. Rows are 1-based data rows.
    ``non_text`` holds the 0-based rows whose id cell was a number or date in an XLSX file.
    """
    known = set(known)
    stripped: dict[str, str] = {}
    for k in known:
        if len(k) > 1 and k.startswith("0") and k.isdigit():
            stripped.setdefault(k.lstrip("0") or "0", k)
    long_digits: dict[tuple[int, str], str] = {}
    for k in known:
        if k.isdigit() and len(k) > SPREADSHEET_DIGITS:
            long_digits.setdefault((len(k), k[:SPREADSHEET_DIGITS]), k)
    numeric = set(non_text)
    out = []
    for i, s in enumerate(ids):
        if s in known or s == "":
            continue
        why = ""
        key = s.lstrip("0") or "0"
        if s.isdigit() and key in stripped:
            why = f"the gold sample has {stripped[key]!r}: leading zeros lost"
        elif _SCIENTIFIC.match(s):
            why = "scientific notation: the id was turned into a number"
        elif s.isdigit() and (len(s), s[:SPREADSHEET_DIGITS]) in long_digits:
            why = (f"the gold sample has {long_digits[(len(s), s[:SPREADSHEET_DIGITS])]!r}: "
                   f"digits after the {SPREADSHEET_DIGITS}th lost")
        elif i in numeric:
            why = "stored as a number or date, not as text"
        if why:
            out.append(f"row {i + 1} ({s!r}: {why})")
    return out


def check_spreadsheet_ids(ids: Iterable[str], known: Iterable[str], source: str,
                          non_text: Iterable[int] = ()) -> None:
    """Raise :class:`InputDataError` naming ``source`` and the rows when ids do not match
    ``known`` because a spreadsheet program changed them (see :func:`spreadsheet_damage`).

    Called where a returned sheet's ids are checked against the sample, before the plainer
    "not in the gold sample" message, so a coder learns what happened and what to send back.
    """
    damaged = spreadsheet_damage(ids, known, non_text)
    if damaged:
        raise InputDataError(
            f"{source} has id(s) that a spreadsheet program changed: {format_rows(damaged)}. "
            "The sheet was saved by a spreadsheet program that turned ids into numbers; "
            "return the .xlsx sheet textgauge wrote (its ids are stored as text), or format "
            "the id column as text and copy the ids back from the sheet as it was sent. "
            "textgauge never guesses which text a changed id meant.")
