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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from textgauge.data.corpus import read_table
from textgauge.errors import InputDataError, format_rows

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
    lines = ["# Codebook", "", instructions, "", "Write exactly one of these labels in the "
             "`label` column of your sheet (leave it empty if you cannot decide; say why in "
             "`note`).", ""]
    for name, definition in codebook.items():
        lines += [f"## {name}", "", definition, ""]
    return "\n".join(lines)


def normalise_label(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def validate_codes(df: pd.DataFrame, labels: Sequence[str], source: str,
                   label_column: str = "label", id_column: str = "id",
                   label_map: Mapping[str, str] | None = None) -> pd.Series:
    """Map raw codes onto the label set; raise naming rows with unknown labels.

    Matching ignores case and surrounding spaces ("Economic " is economic). ``label_map``
    translates a source's own codes (e.g. a crowd export's) into codebook labels. Empty codes
    are kept as missing (a coder may skip an item) and counted, never guessed.
    """
    for col in (id_column, label_column):
        if col not in df.columns:
            raise InputDataError(f"{source} has no column {col!r}; its columns are "
                                 f"{', '.join(map(repr, df.columns))}.")
    by_key = {lab.lower(): lab for lab in labels}
    if label_map:
        by_key.update({str(k).strip().lower(): v for k, v in label_map.items()})
    raw = df[label_column].map(normalise_label)
    mapped = raw.map(lambda v: by_key.get(v.lower(), None) if v else "")
    bad = mapped.isna()
    if bad.any():
        rows = [f"row {i + 1} ({raw.iloc[i]!r})" for i in np.flatnonzero(bad.to_numpy())]
        raise InputDataError(
            f"{source} has {int(bad.sum())} code(s) that are not in the codebook: "
            f"{format_rows(rows)}. Allowed labels: {', '.join(labels)}. Correct those rows "
            "(or map the source's codes with gold.codes_long.label_map).")
    return mapped


def read_sheet_codes(path: str | Path, coder: str, labels: Sequence[str],
                     sample_ids: set[str]) -> pd.DataFrame:
    """Read one coder's filled sheet into long rows (id, coder, label)."""
    df = read_table(path, f"coding sheet of {coder}")
    source = f"The coding sheet of {coder} ({path})"
    mapped = validate_codes(df, labels, source)
    ids = df["id"].astype(str).str.strip()
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise InputDataError(f"{source} lists id(s) more than once: "
                             f"{format_rows(sorted(set(dup)))}. Keep one row per id.")
    unknown = sorted(set(ids) - sample_ids)
    if unknown:
        raise InputDataError(f"{source} has id(s) that are not in the gold sample: "
                             f"{format_rows(unknown)}. Did the sheet come from another run?")
    return pd.DataFrame({"id": ids, "coder": coder, "label": mapped})


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
    df = df.assign(**{id_column: df[id_column].astype(str).str.strip()})
    df = df.loc[df[id_column].isin(sample_ids)].reset_index(drop=True)
    mapped = validate_codes(df, labels, f"The codes file {path}", label_column, id_column,
                            label_map)
    out = pd.DataFrame({"id": df[id_column].values, "coder": df[coder_column].astype(str).values,
                        "label": mapped.values})
    # A coder who saw the same unit twice (a re-run, a repeated test question) is one coder:
    # keep the first code, as agreement statistics assume one code per coder and unit.
    repeated = out.duplicated(["id", "coder"], keep="first")
    out.attrs["repeated_codes_dropped"] = int(repeated.sum())
    return out.loc[~repeated].reset_index(drop=True)


@dataclass
class Reference:
    table: pd.DataFrame  # id, reference, n_codes, top_share, method
    summary: dict


def reference_labels(codes: pd.DataFrame, labels: Sequence[str], lead_coder: str | None,
                     adjudication: pd.DataFrame | None = None) -> Reference:
    """Majority label per item; ties resolved by adjudication, else by the lead coder."""
    present = codes.loc[codes["label"] != ""]
    counts = pd.crosstab(present["id"], present["label"]).reindex(columns=list(labels),
                                                                   fill_value=0)
    top = counts.max(axis=1)
    n_top = counts.eq(top, axis=0).sum(axis=1)
    ref = counts.idxmax(axis=1).where(n_top == 1)
    method = pd.Series(np.where(n_top == 1, "majority", ""), index=counts.index)
    adj = {}
    if adjudication is not None and len(adjudication):
        adj = dict(zip(adjudication["id"], adjudication["label"], strict=True))
    lead = {}
    if lead_coder is not None:
        lc = present.loc[present["coder"] == lead_coder]
        lead = dict(zip(lc["id"], lc["label"], strict=True))
    for item in ref.index[ref.isna()]:
        if item in adj and adj[item]:
            ref[item], method[item] = adj[item], "adjudicated"
        elif item in lead:
            ref[item], method[item] = lead[item], "lead coder"
    unresolved = ref.index[ref.isna()]
    table = pd.DataFrame({"id": counts.index, "reference": ref.values,
                          "n_codes": counts.sum(axis=1).values,
                          "top_share": (top / counts.sum(axis=1)).values,
                          "method": method.values}).dropna(subset=["reference"])
    summary = {"items": int(len(counts)), "by_method": table["method"].value_counts().to_dict(),
               "unresolved": [str(u) for u in unresolved]}
    return Reference(table.reset_index(drop=True), summary)


def disagreements(codes: pd.DataFrame, sample: pd.DataFrame) -> pd.DataFrame:
    """An adjudication sheet: items whose codes are not unanimous, with every coder's code."""
    present = codes.loc[codes["label"] != ""]
    wide = present.pivot_table(index="id", columns="coder", values="label", aggfunc="first")
    n_distinct = present.groupby("id")["label"].nunique()
    ids = n_distinct.index[n_distinct > 1]
    out = sample.set_index("id").loc[ids, ["text"]].join(wide).reset_index()
    out["label"] = ""
    return out
