"""The one id rule (textgauge.data.ids), at ingest and at every import."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from textgauge.data import coding, corpus, splits
from textgauge.data.ids import normalise_id, normalise_ids
from textgauge.errors import InputDataError

LABELS = ["economic", "moral", "security", "rights"]


@pytest.mark.parametrize("raw,want", [
    (" 12 ", "12"), ("12", "12"), (12, "12"), (np.int64(12), "12"), (12.0, "12"),
    ("12.0", "12"), ("12.00", "12"), ("-3.0", "-3"), (1.5, "1.5"), ("1.5", "1.5"),
    ("007", "007"), ("sp0001", "sp0001"), (None, ""), (float("nan"), ""), ("", ""),
    ("a b", "a b"), (b"x1", "x1"),
])
def test_the_id_rule(raw, want):
    assert normalise_id(raw) == want


def test_undecodable_ids_are_an_error_naming_the_row():
    with pytest.raises(InputDataError) as e:
        normalise_ids(pd.Series(["a", "b\ufffd", "c", b"\xff\xfe"]), "The sheet x.csv")
    msg = str(e.value)
    assert "The sheet x.csv" in msg and "row 2" in msg and "row 4" in msg
    assert "undecodable" in msg and "never renames" in msg


def test_empty_ids_are_an_error_naming_the_row():
    with pytest.raises(InputDataError, match=r"empty in row 2"):
        normalise_ids(["a", " ", "c"], "The file f.csv")


def test_ingest_applies_the_rule_spaces_floats_and_duplicates(tmp_path):
    p = tmp_path / "c.csv"
    p.write_text("id,text\n 7 ,seven\n8.0,eight\n9,nine\n9.0,nine again\nx,ok\n")
    res = corpus.ingest(p, "id", "text")
    assert list(res.corpus["id"]) == ["7", "8", "x"]
    dup = res.rejects.loc[res.rejects["reason"] == "duplicate id"]
    assert list(dup["row"]) == [3, 4] and set(dup["id"]) == {"9"}


def test_ingest_rejects_an_undecodable_id_with_its_row_never_renames_it(tmp_path):
    p = tmp_path / "c.csv"
    p.write_bytes(b"id,text\na,good\nb\xff,fine text\nc,also good\n")
    res = corpus.ingest(p, "id", "text")
    assert list(res.corpus["id"]) == ["a", "c"]  # not 'b\ufffd' under a new name
    bad = res.rejects.iloc[0]
    assert bad["row"] == 2 and "not valid UTF-8" in bad["reason"]


def test_float_and_spaced_ids_in_a_sheet_match_the_corpus_ids(tmp_path):
    # a spreadsheet turned ids 1..3 into floats and padded one with spaces
    p = tmp_path / "coder_a.csv"
    pd.DataFrame({"id": [1.0, 2.0, 3.0], "label": ["moral", "rights", "moral"]}).to_csv(
        p, index=False)
    text = p.read_text().replace("2.0,", " 2 ,")
    p.write_text(text)
    codes = coding.read_sheet_codes(p, "coder_a", LABELS, {"1", "2", "3"})
    assert list(codes["id"]) == ["1", "2", "3"]


def test_long_codes_adjudication_and_training_labels_use_the_rule(tmp_path):
    long = tmp_path / "long.csv"
    pd.DataFrame({"id": ["1.0", " 2", "3"], "coder": ["c1", "c1", "c1"],
                  "label": ["moral", "moral", "rights"]}).to_csv(long, index=False)
    got = coding.read_long_codes(long, LABELS, {"1", "2"})
    assert sorted(got["id"]) == ["1", "2"]
    adj = tmp_path / "adj.csv"
    pd.DataFrame({"id": [" 1 ", "2.0"], "label": ["moral", ""]}).to_csv(adj, index=False)
    assert list(coding.read_adjudication(adj, LABELS, {"1", "2"})["id"]) == ["1", "2"]
    lab = tmp_path / "train.csv"
    pd.DataFrame({"id": ["1.0", " 2 "], "label": ["moral", "rights"]}).to_csv(lab, index=False)
    corp = pd.DataFrame({"id": ["1", "2"], "text": ["a", "b"]})
    assert list(splits.read_labelled(str(lab), LABELS, corp)["id"]) == ["1", "2"]


def test_undecodable_id_in_a_sheet_names_file_and_row(tmp_path):
    p = tmp_path / "coder_b.csv"
    p.write_bytes(b"id,label\nx1,moral\nx\xff2,rights\n")
    with pytest.raises(InputDataError) as e:
        coding.read_sheet_codes(p, "coder_b", LABELS, {"x1"})
    assert "coder_b" in str(e.value) and str(p) in str(e.value) and "row 2" in str(e.value)
