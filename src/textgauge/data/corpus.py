"""Ingest, validate and shard a corpus.

A corpus is read once, from csv/tsv/parquet/jsonl, and checked: a missing id or text column
is a fatal error that names the column and the columns that exist; duplicate ids, empty ids,
empty texts and undecodable bytes are rows that go to a rejects file with their reason and row
number. Nothing is dropped silently: the ingest summary counts every row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from textgauge.data.ids import UNDECODABLE, normalise_id_values
from textgauge.errors import InputDataError, format_rows

READERS = {".csv": "csv", ".tsv": "tsv", ".txt": "tsv", ".parquet": "parquet",
           ".jsonl": "jsonl", ".json": "jsonl"}


def read_table(path: str | Path, what: str = "file") -> pd.DataFrame:
    """Read a csv/tsv/parquet/jsonl table with every column as text (ids stay ids)."""
    p = Path(path)
    if not p.exists():
        raise InputDataError(f"The {what} {p} does not exist. Check the path in config.yaml "
                             "(paths are relative to the directory you run snakemake in).")
    kind = READERS.get(p.suffix.lower())
    if kind is None:
        raise InputDataError(f"The {what} {p} has an unknown extension {p.suffix!r}; use one of "
                             f"{', '.join(sorted(READERS))}.")
    try:
        if kind == "parquet":
            df = pd.read_parquet(p)
        elif kind == "jsonl":
            df = pd.read_json(p, lines=True, dtype=False)
        else:
            df = pd.read_csv(p, sep="," if kind == "csv" else "\t", dtype=str,
                             keep_default_na=False, na_values=[], encoding="utf-8",
                             encoding_errors="replace")
    except pd.errors.EmptyDataError:
        raise InputDataError(f"The {what} {p} is empty (not even a header row). Check that "
                             "the path in config.yaml points at the right file, and that the "
                             "file was saved completely.") from None
    except (ValueError, pd.errors.ParserError) as exc:
        detail = " ".join(str(exc).split())  # pandas' message may span lines
        raise InputDataError(f"The {what} {p} could not be parsed as {kind}: {detail}. Open "
                             f"it in a text editor to check it is {kind} (one record per "
                             "line, the same columns in every row) and run again.") from None
    return df


@dataclass
class IngestResult:
    corpus: pd.DataFrame
    rejects: pd.DataFrame
    summary: dict = field(default_factory=dict)


def validate_corpus(df: pd.DataFrame, id_column: str, text_column: str,
                    strata: Sequence[str] = (), source: str = "corpus",
                    min_chars: int = 1) -> IngestResult:
    """Check a raw corpus table; return the clean corpus and a rejects table with reasons.

    Row numbers in messages are 1-based data rows (the header is row 0), as a spreadsheet
    shows them minus one. Ids follow the id rule of :mod:`textgauge.data.ids`; an id with
    undecodable bytes is a rejected row (never renamed).
    """
    missing = [c for c in (id_column, text_column, *strata) if c not in df.columns]
    if missing:
        raise InputDataError(
            f"The {source} has no column(s) {', '.join(repr(c) for c in missing)}. "
            f"Its columns are: {', '.join(repr(c) for c in df.columns)}. Set corpus.id_column, "
            "corpus.text_column and corpus.strata in config.yaml to the names your file uses.")
    # the id rule (data/ids.py): stripped, integral floats as integers, valid text
    ids, undecodable = normalise_id_values(df[id_column])
    work = pd.DataFrame({
        "row": range(1, len(df) + 1),
        "id": ids,
        "text": df[text_column].map(_as_text).values,
    })
    for s in strata:
        work[s] = df[s].map(_as_text).values
    reasons = pd.Series("", index=work.index)
    bad_id = pd.Series(False, index=work.index)
    bad_id.iloc[undecodable] = True
    reasons[bad_id] = UNDECODABLE
    reasons[(reasons == "") & (work["id"] == "")] = "empty id"
    text_stripped = work["text"].str.strip()
    reasons[(reasons == "") & (text_stripped.str.len() < min_chars)] = "empty text"
    reasons[(reasons == "") & work["text"].str.contains("\ufffd", regex=False)] = (
        "text is not valid UTF-8 (undecodable bytes)")
    # after the id rule: " 7", "7" and "7.0" are one id, so they are duplicates
    dup = work["id"].duplicated(keep=False) & (work["id"] != "") & ~bad_id
    reasons[(reasons == "") & dup] = "duplicate id"
    for s in strata:
        reasons[(reasons == "") & (work[s].str.strip() == "")] = f"empty stratum {s!r}"
    bad = reasons != ""
    raw_ids = df[id_column].map(_as_text).to_numpy()
    shown = work["id"].where(~bad_id, pd.Series(raw_ids, index=work.index))  # as in the file
    rejects = work.loc[bad, ["row"]].assign(id=shown[bad].values, reason=reasons[bad].values)
    clean = work.loc[~bad].drop(columns="row").reset_index(drop=True)
    clean["text"] = clean["text"].str.strip()
    summary = {"rows_read": int(len(df)), "rows_kept": int(len(clean)),
               "rows_rejected": int(bad.sum()),
               "rejected_by_reason": {str(k): int(v)
                                      for k, v in rejects["reason"].value_counts().items()}}
    return IngestResult(clean, rejects.reset_index(drop=True), summary)


def _as_text(v: object) -> str:
    if v is None or (isinstance(v, float) and pd.isna(v)):
        return ""
    return str(v)


def ingest(path: str | Path, id_column: str, text_column: str, strata: Sequence[str] = (),
           max_reject_share: float = 0.5) -> IngestResult:
    """Read and validate a corpus file. Fails if more than ``max_reject_share`` rows are bad.

    Duplicate ids are a common, dangerous mistake (two texts would share one label), so they
    are always reported in the error when a large share is rejected.
    """
    df = read_table(path, "corpus")
    if len(df) == 0:
        raise InputDataError(f"The corpus {path} has a header ({', '.join(map(repr, df.columns))})"
                             " but no rows. Point corpus.path at the file with the texts.")
    res = validate_corpus(df, id_column, text_column, strata, source=f"corpus {path}")
    if len(df) == 0 or res.summary["rows_kept"] == 0 or (
            res.summary["rows_rejected"] / max(len(df), 1) > max_reject_share):
        examples = "; ".join(f"row {r.row} (id {r.id!r}): {r.reason}"
                             for r in res.rejects.head(8).itertuples())
        raise InputDataError(
            f"The corpus {path} has {res.summary['rows_rejected']} unusable rows out of "
            f"{len(df)} ({res.summary['rejected_by_reason']}). First ones: {examples}. "
            "Fix these rows (unique non-empty ids, non-empty texts) and run again.")
    return res


def shard_of(item_id: str, n_shards: int) -> int:
    """Stable shard assignment by id hash (independent of row order and of Python's hash seed)."""
    h = hashlib.blake2b(str(item_id).encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") % n_shards


def shard_corpus(corpus: pd.DataFrame, n_shards: int) -> list[pd.DataFrame]:
    """Split the corpus into ``n_shards`` parts by id hash; every id lands in exactly one."""
    if n_shards < 1:
        raise InputDataError(f"inference.shards must be >= 1, not {n_shards}.")
    keys = corpus["id"].map(lambda i: shard_of(i, n_shards))
    return [corpus.loc[keys == k].reset_index(drop=True) for k in range(n_shards)]


def check_ids_exist(ids: Sequence[str], corpus_ids: set[str], source: str) -> None:
    """Fail with the offending ids when a labels/codes file refers to texts not in the corpus."""
    unknown = [i for i in ids if i not in corpus_ids]
    if unknown:
        raise InputDataError(f"{source} refers to {len(unknown)} id(s) that are not in the "
                             f"validated corpus: {format_rows(unknown)}. Check the id column, "
                             "or look in results/corpus/rejects.csv if those rows were rejected.")
