"""Qualitative error analysis: export misclassified gold items, import the coded sheet.

The course's step 4 of a validation plan: read the misclassified texts, categorise the error
patterns (sarcasm/irony, mixed signals, ambiguity, indirect stance, ...) and decide whether
errors are random or systematic. :func:`build_error_sheet` lists every misclassified gold item
with how the human coders labelled it (low human agreement marks genuinely ambiguous items);
a researcher fills ``category`` and ``note``; :func:`read_error_sheet` validates the coding and
:func:`tabulate_error_patterns` counts the patterns with shares and example ids.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import INVALID_LABEL, align_with_gold, require_columns
from textgauge.data.ids import normalise_ids
from textgauge.data.sheets import read_csv as read_sheet_csv
from textgauge.data.sheets import write_csv
from textgauge.errors import InputDataError, format_rows

ERROR_CATEGORIES = ("sarcasm_irony", "mixed_signals", "ambiguity", "indirect_stance",
                    "domain_mismatch", "other")
SHEET_COLUMNS = ["id", "text", "gold", "predicted", "confidence", "status", "human_labels",
                 "human_agree", "category", "note"]
UNCODED = "(uncoded)"


def build_error_sheet(
    gold: pd.DataFrame,
    predictions: pd.DataFrame,
    human_codes: pd.DataFrame | None = None,
    texts: pd.DataFrame | None = None,
    reference_col: str = "reference",
    text_col: str = "text",
) -> pd.DataFrame:
    """Misclassified gold items, ready for a researcher to code error patterns.

    Columns: id, text, gold, predicted, confidence, status (``ok`` or ``invalid``: the coder
    gave no usable answer), human_labels (every human code for the item, ``'a; a; b'``),
    human_agree (share of human codes equal to the gold label: 1.0 = unanimous, NaN = no
    codes), and empty ``category`` / ``note``. Text comes from ``gold[text_col]`` or
    ``texts`` (id, ``text_col``). Sorted by confidence, most confident errors first.
    """
    al = align_with_gold(gold, predictions, reference_col)
    wrong = al[al["label"] != al["reference"]].copy()
    sheet = pd.DataFrame({"id": wrong["id"], "gold": wrong["reference"],
                          "predicted": wrong["label"].replace(INVALID_LABEL, ""),
                          "confidence": wrong["confidence"],
                          "status": np.where(wrong["label"] == INVALID_LABEL, "invalid", "ok")})
    if text_col in wrong.columns:
        sheet["text"] = wrong[text_col].to_numpy()
    elif texts is not None:
        require_columns(texts, ["id", text_col], "texts")
        tmap = dict(zip(texts["id"].astype(str), texts[text_col], strict=False))
        sheet["text"] = sheet["id"].map(tmap)
    else:
        sheet["text"] = ""
    if human_codes is not None and len(human_codes):
        require_columns(human_codes, ["id", "label"], "human codes")
        hc = human_codes.assign(id=human_codes["id"].astype(str),
                                label=human_codes["label"].astype(str))
        hc = hc[hc["id"].isin(set(sheet["id"]))]
        if "coder" in hc.columns:
            hc = hc.sort_values(["id", "coder"])
        joined = hc.groupby("id")["label"].agg("; ".join)
        ref = dict(zip(sheet["id"], sheet["gold"], strict=True))
        agree = hc.assign(_a=hc["label"] == hc["id"].map(ref)).groupby("id")["_a"].mean()
        sheet["human_labels"] = sheet["id"].map(joined).fillna("")
        sheet["human_agree"] = sheet["id"].map(agree)
    else:
        sheet["human_labels"] = ""
        sheet["human_agree"] = np.nan
    sheet["category"] = ""
    sheet["note"] = ""
    sheet = sheet.sort_values(["confidence", "id"], ascending=[False, True], na_position="last")
    return sheet[SHEET_COLUMNS].reset_index(drop=True)


def write_error_sheet(sheet: pd.DataFrame, path: str | Path) -> Path:
    """Write the sheet as UTF-8 CSV (opens in any spreadsheet program; a text that would start
    a formula is written as text, see :mod:`textgauge.data.sheets`)."""
    return write_csv(sheet, path)


def normalise_category(value: object) -> str:
    """'Sarcasm / Irony' -> 'sarcasm_irony'; blank -> ''."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    s = str(value).strip().lower()
    for ch in (" / ", "/", "-", " ", "&"):
        s = s.replace(ch, "_")
    while "__" in s:
        s = s.replace("__", "_")
    return s.strip("_")


def read_error_sheet(
    sheet: str | Path | pd.DataFrame,
    categories: tuple[str, ...] = ERROR_CATEGORIES,
    allow_uncoded: bool = True,
) -> pd.DataFrame:
    """Read a coded error sheet (CSV path or DataFrame) and validate its ``category`` column.

    Categories are normalised (case, spaces, '/', '-'). Any value outside ``categories``
    raises :class:`InputDataError` naming the spreadsheet rows (header = row 1) and ids.
    Blank categories are allowed (reported as uncoded) unless ``allow_uncoded`` is False.
    """
    source = "the error sheet"
    if isinstance(sheet, (str, Path)):
        source = str(sheet)
        try:
            df = read_sheet_csv(sheet, dtype={"id": str}, keep_default_na=False,
                             na_values=[""], encoding="utf-8-sig")
        except FileNotFoundError as exc:
            raise InputDataError(f"The error sheet {source} does not exist.") from exc
    else:
        df = sheet.copy()
    require_columns(df, ["id", "category"], f"error sheet ({source})")
    df["id"] = normalise_ids(df["id"], f"The error sheet {source}").to_numpy()
    df["category"] = df["category"].map(normalise_category)
    if "note" not in df.columns:
        df["note"] = ""
    allowed = set(categories)
    unknown = df["category"].ne("") & ~df["category"].isin(allowed)
    if unknown.any():
        rows = [f"row {i + 2} (id {df.at[i, 'id']}: '{df.at[i, 'category']}')"
                for i in df.index[unknown]]
        raise InputDataError(
            f"{source} has unknown error categories in {format_rows(rows)}. Use one of: "
            f"{', '.join(categories)} (or leave the cell empty).")
    blank = df["category"].eq("")
    if blank.any() and not allow_uncoded:
        rows = [f"row {i + 2} (id {df.at[i, 'id']})" for i in df.index[blank]]
        raise InputDataError(f"{source} has rows without a category: {format_rows(rows)}.")
    return df


def tabulate_error_patterns(
    sheet: str | Path | pd.DataFrame,
    n_examples: int = 3,
    by: list[str] | None = None,
) -> pd.DataFrame:
    """Count the error categories of a coded sheet: n, share of coded errors, example ids.

    Shares are over coded rows; uncoded rows appear as ``(uncoded)`` with a NaN share. With
    ``by`` (e.g. ``['gold', 'predicted']``) counts are per category within each group.
    Sorted by n, descending: fix the most common pattern first.
    """
    df = read_error_sheet(sheet)
    df = df.assign(category=df["category"].replace("", UNCODED))
    keys = (by or []) + ["category"]
    require_columns(df, keys, "error sheet")
    grouped = df.groupby(keys, sort=False)
    out = grouped.agg(n=("id", "size"),
                      example_ids=("id", lambda s: ", ".join(list(s)[:n_examples]))).reset_index()
    coded = out["category"] != UNCODED
    if by:
        totals = out[coded].groupby(by)["n"].transform("sum")
        out["share"] = np.nan
        out.loc[coded, "share"] = out.loc[coded, "n"] / totals
    else:
        total = out.loc[coded, "n"].sum()
        out["share"] = np.where(coded, out["n"] / total if total else np.nan, np.nan)
    out = out.sort_values((by or []) + ["n", "category"],
                          ascending=[True] * len(by or []) + [False, True])
    return out[keys + ["n", "share", "example_ids"]].reset_index(drop=True)
