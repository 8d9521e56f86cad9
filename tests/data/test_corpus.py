"""Corpus ingest: bad input gives clear messages naming rows and columns; sharding is stable."""

import pandas as pd
import pytest

from textgauge.data import corpus
from textgauge.errors import InputDataError


def _write(tmp_path, rows, name="c.csv"):
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def test_rejects_duplicates_and_empty_texts_with_row_numbers(tmp_path):
    p = _write(tmp_path, [
        {"id": "a", "text": "fine text", "party": "X"},
        {"id": "b", "text": "", "party": "X"},
        {"id": "c", "text": "dup one", "party": "Y"},
        {"id": "c", "text": "dup two", "party": "Y"},
        {"id": "d", "text": "ok again", "party": "Y"},
        {"id": "e", "text": "   ", "party": "Y"},
        *({"id": f"k{i}", "text": "kept", "party": "Z"} for i in range(3)),
    ])
    res = corpus.ingest(p, "id", "text", ["party"])
    assert list(res.corpus["id"]) == ["a", "d", "k0", "k1", "k2"]
    rej = res.rejects.set_index("row")["reason"].to_dict()
    assert rej == {2: "empty text", 3: "duplicate id", 4: "duplicate id", 6: "empty text"}
    assert res.summary["rows_read"] == 9 and res.summary["rows_rejected"] == 4
    assert res.summary["rows_kept"] + res.summary["rows_rejected"] == res.summary["rows_read"]


def test_missing_text_column_names_column_and_alternatives(tmp_path):
    p = _write(tmp_path, [{"id": "a", "body": "x"}])
    with pytest.raises(InputDataError) as e:
        corpus.ingest(p, "id", "text")
    msg = str(e.value)
    assert "'text'" in msg and "'body'" in msg and "corpus.text_column" in msg


def test_mostly_duplicate_ids_fail_loudly_with_examples(tmp_path):
    p = _write(tmp_path, [{"id": "same", "text": f"t{i}"} for i in range(5)])
    with pytest.raises(InputDataError) as e:
        corpus.ingest(p, "id", "text")
    assert "duplicate id" in str(e.value) and "row 1" in str(e.value)


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        corpus.ingest(tmp_path / "nope.csv", "id", "text")
    bad = tmp_path / "c.xlsx"
    bad.write_text("x")
    with pytest.raises(InputDataError, match="unknown extension"):
        corpus.ingest(bad, "id", "text")


def test_reads_parquet_jsonl_tsv_alike(tmp_path):
    df = pd.DataFrame({"id": ["1", "2"], "text": ["a b", "c d"]})
    df.to_parquet(tmp_path / "c.parquet")
    df.to_json(tmp_path / "c.jsonl", orient="records", lines=True)
    df.to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    for name in ("c.parquet", "c.jsonl", "c.tsv"):
        assert list(corpus.ingest(tmp_path / name, "id", "text").corpus["id"]) == ["1", "2"]


def test_undecodable_bytes_are_rejected(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes(b"id,text\na,good\nb,bad \xff\xfe bytes\n")
    res = corpus.ingest(p, "id", "text")
    assert list(res.corpus["id"]) == ["a"]
    assert "UTF-8" in res.rejects.iloc[0]["reason"]


def test_shards_are_stable_and_complete():
    df = pd.DataFrame({"id": [f"x{i}" for i in range(500)], "text": "t"})
    parts = corpus.shard_corpus(df, 7)
    assert sum(len(p) for p in parts) == 500
    assert set().union(*(set(p["id"]) for p in parts)) == set(df["id"])
    shuffled = corpus.shard_corpus(df.sample(frac=1, random_state=1), 7)
    assert [set(p["id"]) for p in parts] == [set(p["id"]) for p in shuffled]
