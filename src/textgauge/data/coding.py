"""The human coding round trip: blinded coding sheets out, validated codes in.

Sheets are per coder, in a per-coder random order (so order effects do not line up across
coders), without strata or other coders' codes (blinding). Codes come back either as the
filled sheets (one file per coder) or as one long file (unit, coder, label) such as a
crowd-coding export. Every code is checked against the codebook; a wrong label is reported
with the file, row and the allowed labels. The reference label of each gold item is the
majority code; ties go to an adjudication file when one is given, else to the lead coder (and
the report says how many items that concerned).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from textgauge.data.corpus import read_table
from textgauge.data.ids import check_spreadsheet_ids, normalise_ids
from textgauge.data.sheets import read_sheet
from textgauge.errors import ConfigError, InputDataError, format_rows

log = logging.getLogger("textgauge")

#: gold.ties: what resolves a tie that no adjudication resolves
TIES = ("adjudication", "lead_coder", "random", "exclude")
#: the method column of the reference table, per way an item got its label
METHOD_MAJORITY, METHOD_ADJUDICATED, METHOD_LEAD, METHOD_RANDOM = (
    "majority", "adjudicated", "lead coder", "random coder")

SHEET_COLUMNS = ["item", "id", "text", "label", "note"]


def coding_sheet(sample: pd.DataFrame, coder: str, seed: int) -> pd.DataFrame:
    """A blinded sheet for one coder: items in a coder-specific seeded random order."""
    rng = np.random.default_rng([seed, *coder.encode()])
    order = rng.permutation(len(sample))
    sheet = sample.iloc[order][["id", "text"]].reset_index(drop=True)
    sheet.insert(0, "item", range(1, len(sheet) + 1))
    sheet["label"] = ""
    sheet["note"] = ""
    return sheet[SHEET_COLUMNS]


def codebook_markdown(codebook: Mapping[str, str], instructions: str = "") -> str:
    """The codebook for human coders. Labels, definitions and instructions are shown
    literally (escaped): a label like ``<img ...>`` or ``*x*`` is text, not HTML or markup."""
    from textgauge.escaping import md_escape

    lines = ["# Codebook", "", md_escape(instructions), "", "Write exactly one of these labels "
             "in the `label` column of your sheet (leave it empty if you cannot decide; say why "
             "in `note`).", ""]
    for name, definition in codebook.items():
        lines += [f"## {md_escape(name)}", "", md_escape(definition), ""]
    return "\n".join(lines)


def normalise_label(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def check_codebook(labels: Sequence[str], where: str = "labels") -> None:
    """Codes are matched to labels ignoring case, so two labels that differ only in case
    would be merged: an error naming them and the option."""
    seen: dict[str, str] = {}
    clashes = []
    for lab in labels:
        key = str(lab).strip().lower()
        if key in seen:
            clashes.append(f"{seen[key]!r} and {lab!r}")
        seen.setdefault(key, str(lab))
    if clashes:
        raise ConfigError(
            f"The codebook ({where} in config.yaml) has labels that differ only in case: "
            f"{'; '.join(clashes)}. Codes are matched to labels ignoring case, so these would "
            "be merged: give them names that differ in more than case.")


def validate_codes(df: pd.DataFrame, labels: Sequence[str], source: str,
                   label_column: str = "label", id_column: str = "id",
                   label_map: Mapping[str, str] | None = None,
                   option: str = "gold.codes_long.label_map") -> pd.Series:
    """Map raw codes onto the label set; raise naming rows with unknown labels.

    Matching ignores case and surrounding spaces ("Economic " is economic). ``label_map``
    (the config option ``option``) translates a source's own codes (e.g. a crowd export's)
    into codebook labels; a target outside the codebook is an error naming the option and the
    file ('' maps a code to missing). Empty codes are kept as missing (a coder may skip an
    item) and counted, never guessed.
    """
    check_codebook(labels)
    for col in (id_column, label_column):
        if col not in df.columns:
            raise InputDataError(f"{source} has no column {col!r}; its columns are "
                                 f"{', '.join(map(repr, df.columns))}. Keep the columns of "
                                 "the sheet as they were written (id, label) and run again.")
    by_key = {lab.lower(): lab for lab in labels}
    if label_map:
        wrong = [f"{k!r} -> {v!r}" for k, v in label_map.items()
                 if normalise_label(v) and normalise_label(v).lower() not in by_key]
        if wrong:
            raise ConfigError(
                f"{option} maps code(s) to label(s) that are not in the codebook: "
                f"{', '.join(wrong)} (used for {source}). Codebook labels: "
                f"{', '.join(labels)}. Map each code to one of them, or to '' to treat it as "
                "missing.")
        by_key.update({str(k).strip().lower(): by_key.get(normalise_label(v).lower(), "")
                       for k, v in label_map.items()})
    raw = df[label_column].map(normalise_label)
    mapped = raw.map(lambda v: by_key.get(v.lower(), None) if v else "")
    bad = mapped.isna()
    if bad.any():
        rows = [f"row {i + 1} ({raw.iloc[i]!r})" for i in np.flatnonzero(bad.to_numpy())]
        raise InputDataError(
            f"{source} has {int(bad.sum())} code(s) that are not in the codebook: "
            f"{format_rows(rows)}. Allowed labels: {', '.join(labels)}. Correct those rows "
            f"(or map the source's codes with {option}).")
    return mapped


def read_sheet_codes(path: str | Path, coder: str, labels: Sequence[str],
                     sample_ids: set[str]) -> pd.DataFrame:
    """Read one coder's filled sheet into long rows (id, coder, label).

    Rows deleted from the sheet are counted (``attrs["rows_missing"]``) and warned about:
    those items are missing codes of this coder. A sheet without a single code is an error
    naming the coder, the file and the option.
    """
    df = read_sheet(path, f"coding sheet of {coder}")
    source = f"The coding sheet of {coder} ({path})"
    mapped = validate_codes(df, labels, source)
    ids = normalise_ids(df["id"], source)
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise InputDataError(f"{source} lists id(s) more than once: "
                             f"{format_rows(sorted(set(dup)))}. Keep one row per id.")
    unknown = sorted(set(ids) - sample_ids)
    if unknown:
        check_spreadsheet_ids(ids, sample_ids, source, df.attrs.get("non_text_ids", ()))
        raise InputDataError(f"{source} has id(s) that are not in the gold sample: "
                             f"{format_rows(unknown)}. Did the sheet come from another run?")
    if not (mapped != "").any():
        raise InputDataError(
            f"{source} has no codes at all ({len(df)} rows, every label empty). Coder "
            f"{coder!r} is set in gold.codes.{coder}: point it at the filled sheet, or remove "
            f"{coder!r} from gold.codes.")
    absent = sorted(sample_ids - set(ids))
    if absent:
        log.warning("%s lacks %d of the %d gold items (rows deleted?): %s. They count as "
                    "missing codes of %s.", source, len(absent), len(sample_ids),
                    format_rows(absent), coder)
    out = pd.DataFrame({"id": ids.to_numpy(), "coder": coder, "label": mapped.to_numpy()})
    out.attrs["rows_missing"] = len(absent)
    return out


def check_coder_column(coders: pd.Series, path: str | Path, column: str = "coder") -> None:
    """Every coder of a long codes file follows the name rule (:mod:`textgauge.names`): coder
    names become sheet headers and file names. An InputDataError names the file, the first
    rows (counting the header as row 1) and their values."""
    from textgauge.names import NAME_RULE, is_valid_name

    values = coders.map(normalise_label)
    bad = [(i + 2, v) for i, v in enumerate(values) if not is_valid_name(v)]
    if bad:
        shown = format_rows([f"row {r} ({v!r})" for r, v in bad], limit=5)
        raise InputDataError(
            f"The codes file {path} (gold.codes_long) has coder names that are not valid in "
            f"its {column!r} column: {shown}. {NAME_RULE[0].upper()}{NAME_RULE[1:]}. Coder "
            "names become sheet headers and file names: rename those coders in the file "
            "(e.g. worker_17) and run again.")


def read_long_codes(path: str | Path, labels: Sequence[str], sample_ids: set[str],
                    id_column: str = "id", coder_column: str = "coder",
                    label_column: str = "label",
                    label_map: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Read a long (unit, coder, label) export and keep the gold sample's rows."""
    df = read_table(path, "codes file")
    for col in (id_column, coder_column, label_column):
        if col not in df.columns:
            raise InputDataError(f"The codes file {path} has no column {col!r}; its columns "
                                 f"are {', '.join(map(repr, df.columns))}. Set "
                                 "gold.codes_long.id_column/coder_column/label_column.")
    source = f"The codes file {path} (gold.codes_long)"
    check_coder_column(df[coder_column], path, coder_column)
    df = df.assign(**{id_column: normalise_ids(df[id_column], source, id_column).to_numpy()})
    df = df.loc[df[id_column].isin(sample_ids)].reset_index(drop=True)
    mapped = validate_codes(df, labels, f"The codes file {path}", label_column, id_column,
                            label_map)
    out = pd.DataFrame({"id": df[id_column].values,
                        "coder": df[coder_column].map(normalise_label).values,
                        "label": mapped.values})
    silent = sorted(set(out["coder"]) - set(out.loc[out["label"] != "", "coder"]))
    if silent:
        raise InputDataError(
            f"{source}: coder(s) {format_rows([repr(c) for c in silent])} have no codes at "
            "all for the gold items (every label empty). Fill their codes in the file, or "
            f"drop their rows (gold.codes_long.path is {path}).")
    # A coder who saw the same unit twice (a re-run, a repeated test question) is one coder:
    # keep the first code, as agreement statistics assume one code per coder and unit.
    repeated = out.duplicated(["id", "coder"], keep="first")
    out.attrs["repeated_codes_dropped"] = int(repeated.sum())
    return out.loc[~repeated].reset_index(drop=True)


def read_adjudication(path: str | Path, labels: Sequence[str],
                      sample_ids: set[str]) -> pd.DataFrame:
    """The adjudication file (id, label): ids must be gold items, once each; an empty label is
    an item not decided yet."""
    df = read_sheet(path, "adjudication file")
    source = f"The adjudication file {path} (gold.adjudication)"
    mapped = validate_codes(df, labels, source)
    ids = normalise_ids(df["id"], source)
    dup = sorted(set(ids[ids.duplicated()]))
    if dup:
        raise InputDataError(f"{source} lists id(s) more than once: {format_rows(dup)}. "
                             "Keep one decision per item.")
    unknown = sorted(set(ids) - sample_ids)
    if unknown:
        check_spreadsheet_ids(ids, sample_ids, source, df.attrs.get("non_text_ids", ()))
        raise InputDataError(
            f"{source} has id(s) that are not in the gold sample: {format_rows(unknown)}. "
            "Did it come from another run or another gold.seed? Adjudicate the items listed "
            "in the adjudication sheet of this run.")
    return pd.DataFrame({"id": ids.to_numpy(), "label": mapped.to_numpy()})


@dataclass
class Reference:
    table: pd.DataFrame  # evaluated items: id, reference, n_codes, top_share, method
    ties: pd.DataFrame  # tied items: id, tied_labels, resolution ('' when unresolved)
    summary: dict

    @property
    def unresolved(self) -> list[str]:
        return [str(i) for i in self.ties.loc[self.ties["resolution"] == "", "id"]]


def _pick(seed: int, item: str, n: int) -> int:
    """A seeded choice among ``n`` that depends on the item, not on the order of items."""
    h = hashlib.blake2b(f"{seed}\0{item}".encode(), digest_size=8).digest()
    return int(np.random.default_rng(int.from_bytes(h, "little")).integers(n))


def reference_labels(codes: pd.DataFrame, labels: Sequence[str], lead_coder: str | None = None,
                     adjudication: pd.DataFrame | None = None, *, ties: str = "adjudication",
                     seed: int = 0) -> Reference:
    """Majority label per item; ties resolved by adjudication, then by ``ties``.

    ``ties`` (gold.ties): ``adjudication`` leaves unresolved ties unresolved (the caller
    stops and asks for them), ``lead_coder`` takes the code of ``lead_coder`` where that
    coder coded the item, ``random`` a seeded random coder among those whose code is one of
    the tied labels, ``exclude`` leaves the item out. Unresolved items are never in the
    table; :attr:`Reference.unresolved` lists them.
    """
    if ties not in TIES:
        raise ConfigError(f"gold.ties must be one of {', '.join(TIES)}, not {ties!r}.")
    present = codes.loc[codes["label"] != ""]
    counts = pd.crosstab(present["id"], present["label"]).reindex(columns=list(labels),
                                                                   fill_value=0)
    top = counts.max(axis=1)
    is_top = counts.eq(top, axis=0)
    n_top = is_top.sum(axis=1)
    ref = counts.idxmax(axis=1).where(n_top == 1)
    method = pd.Series(np.where(n_top == 1, METHOD_MAJORITY, ""), index=counts.index,
                       dtype=object)
    adj = {}
    if adjudication is not None and len(adjudication):
        adj = {i: lab for i, lab in zip(adjudication["id"], adjudication["label"], strict=True)
               if lab}
    lead = {}
    if lead_coder is not None:
        lc = present.loc[present["coder"] == lead_coder]
        lead = dict(zip(lc["id"], lc["label"], strict=True))
    tied_rows = []
    for item in ref.index[ref.isna()]:
        tied = [lab for lab in labels if is_top.at[item, lab]]
        resolution = ""
        if item in adj:
            ref[item], resolution = adj[item], METHOD_ADJUDICATED
        elif ties == "lead_coder" and item in lead:
            ref[item], resolution = lead[item], METHOD_LEAD
        elif ties == "random":
            mine = present.loc[(present["id"] == item) & present["label"].isin(tied)]
            mine = mine.sort_values("coder", kind="stable")
            ref[item] = mine["label"].iloc[_pick(seed, str(item), len(mine))]
            resolution = METHOD_RANDOM
        elif ties == "exclude":
            resolution = "excluded"
        method[item] = resolution if resolution != "excluded" else ""
        tied_rows.append({"id": item, "tied_labels": " | ".join(tied),
                          "resolution": resolution})
    keep = method != ""
    table = pd.DataFrame({"id": counts.index[keep], "reference": ref[keep].values,
                          "n_codes": counts.sum(axis=1)[keep].values,
                          "top_share": (top / counts.sum(axis=1))[keep].values,
                          "method": method[keep].values})
    tied_df = pd.DataFrame(tied_rows, columns=["id", "tied_labels", "resolution"])
    summary = {"items": int(len(counts)), "by_method": table["method"].value_counts().to_dict(),
               "unresolved": [str(u) for u in tied_df.loc[tied_df["resolution"] == "", "id"]]}
    return Reference(table.reset_index(drop=True), tied_df, summary)


def ties_sheet(codes: pd.DataFrame, sample: pd.DataFrame, ids: Sequence[str],
               tied_labels: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The sheet an adjudicator fills: the tied items with their text, the tied labels and
    every code (``label``: the decision; ``note``: why)."""
    present = codes.loc[codes["label"] != ""]
    summary = (present.loc[present["id"].isin(set(ids))].groupby("id")
               .apply(lambda g: "; ".join(f"{c}: {lab}" for c, lab in
                                         zip(g["coder"], g["label"], strict=True)),
                      include_groups=False))
    out = sample.set_index("id").loc[list(ids), ["text"]].reset_index()
    out["tied_labels"] = out["id"].map(dict(tied_labels or {})).fillna("")
    out["codes"] = out["id"].map(summary).fillna("")
    out["label"] = ""
    out["note"] = ""
    return out


def disagreements(codes: pd.DataFrame, sample: pd.DataFrame) -> pd.DataFrame:
    """An adjudication sheet: items whose codes are not unanimous, with every coder's code."""
    present = codes.loc[codes["label"] != ""]
    wide = present.pivot_table(index="id", columns="coder", values="label", aggfunc="first")
    n_distinct = present.groupby("id")["label"].nunique()
    ids = n_distinct.index[n_distinct > 1]
    out = sample.set_index("id").loc[ids, ["text"]].join(wide).reset_index()
    out["label"] = ""
    return out
