"""Gold sampling (seeded, stratified, disjoint from training) and the coding round trip."""

import hashlib

import pandas as pd
import pytest

from textgauge.data import coding, gold
from textgauge.errors import InputDataError

LABELS = ["economic", "moral", "security", "rights"]


@pytest.fixture
def corpus_df():
    from textgauge.data.example import ExampleSpec, generate_corpus

    return generate_corpus(ExampleSpec(n_texts=600))


def _digest(df: pd.DataFrame) -> str:
    return hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()


def test_same_seed_same_sample_bytes_and_different_seed_differs(corpus_df):
    a = gold.sample_gold(corpus_df, 120, ["party", "period"], seed=7)
    b = gold.sample_gold(corpus_df.sample(frac=1, random_state=3), 120, ["party", "period"], seed=7)
    c = gold.sample_gold(corpus_df, 120, ["party", "period"], seed=8)
    assert _digest(a) == _digest(b)  # row order of the corpus does not matter
    assert _digest(a) != _digest(c)


def test_stratified_allocation_is_proportional_and_probabilities_right(corpus_df):
    s = gold.sample_gold(corpus_df, 150, ["party"], seed=1)
    assert len(s) == 150 and s["id"].is_unique
    share = corpus_df["party"].value_counts(normalize=True)
    got = s["party"].value_counts()
    for party, p in share.items():
        assert abs(got[party] - 150 * p) <= 1
        n_h = (corpus_df["party"] == party).sum()
        assert s.loc[s["party"] == party, "inclusion_prob"].iloc[0] == pytest.approx(got[party] / n_h)


def test_gold_never_overlaps_training_ids(corpus_df):
    train_ids = list(corpus_df["id"][:400])
    s = gold.sample_gold(corpus_df, 150, ["party"], seed=1, exclude_ids=train_ids)
    assert not set(s["id"]) & set(train_ids)
    with pytest.raises(InputDataError, match="only 200 eligible"):
        gold.sample_gold(corpus_df, 250, [], seed=1, exclude_ids=train_ids)


def test_sheets_are_blinded_and_in_coder_specific_order(corpus_df):
    s = gold.sample_gold(corpus_df, 50, [], seed=1)
    a, b = coding.coding_sheet(s, "coder_a", 1), coding.coding_sheet(s, "coder_b", 1)
    assert list(a.columns) == coding.SHEET_COLUMNS  # no strata, no other coder's codes
    assert set(a["id"]) == set(b["id"]) == set(s["id"])
    assert list(a["id"]) != list(b["id"])
    assert (a["label"] == "").all()


def test_unknown_label_in_sheet_names_row_and_allowed_labels(tmp_path):
    sheet = pd.DataFrame({"item": [1, 2, 3], "id": ["x1", "x2", "x3"], "text": "t",
                          "label": ["Economic ", "securty", "rights"], "note": ""})
    p = tmp_path / "coder_a.csv"
    sheet.to_csv(p, index=False)
    with pytest.raises(InputDataError) as e:
        coding.read_sheet_codes(p, "coder_a", LABELS, {"x1", "x2", "x3"})
    msg = str(e.value)
    assert "row 2" in msg and "'securty'" in msg and "economic, moral, security, rights" in msg


def test_case_and_space_tolerant_and_empty_codes_kept_as_missing(tmp_path):
    sheet = pd.DataFrame({"id": ["x1", "x2"], "label": [" Economic", ""]})
    p = tmp_path / "s.csv"
    sheet.to_csv(p, index=False)
    codes = coding.read_sheet_codes(p, "a", LABELS, {"x1", "x2"})
    assert list(codes["label"]) == ["economic", ""]


def test_sheet_ids_outside_sample_and_duplicates_are_errors(tmp_path):
    p = tmp_path / "s.csv"
    pd.DataFrame({"id": ["x1", "zz"], "label": ["moral", "moral"]}).to_csv(p, index=False)
    with pytest.raises(InputDataError, match="not in the gold sample"):
        coding.read_sheet_codes(p, "a", LABELS, {"x1"})
    pd.DataFrame({"id": ["x1", "x1"], "label": ["moral", "moral"]}).to_csv(p, index=False)
    with pytest.raises(InputDataError, match="more than once"):
        coding.read_sheet_codes(p, "a", LABELS, {"x1"})


def test_reference_majority_then_adjudication_then_lead_coder():
    codes = pd.DataFrame({
        "id": ["1", "1", "1", "2", "2", "3", "3"],
        "coder": ["a", "b", "c", "a", "b", "a", "b"],
        "label": ["moral", "moral", "rights", "economic", "security", "rights", "moral"],
    })
    adj = pd.DataFrame({"id": ["2"], "label": ["security"]})
    ref = coding.reference_labels(codes, LABELS, "a", adj, ties="lead_coder").table.set_index("id")
    assert ref.loc["1", "reference"] == "moral" and ref.loc["1", "method"] == "majority"
    assert ref.loc["2", "reference"] == "security" and ref.loc["2", "method"] == "adjudicated"
    assert ref.loc["3", "reference"] == "rights" and ref.loc["3", "method"] == "lead coder"


def test_long_codes_with_label_map(tmp_path):
    p = tmp_path / "long.csv"
    pd.DataFrame({"sid": ["1", "1", "2", "9"], "who": ["c1", "c2", "c1", "c1"],
                  "code": ["imm", "not", "imm", "imm"]}).to_csv(p, index=False)
    codes = coding.read_long_codes(p, ["immigration", "not_immigration"], {"1", "2"}, "sid",
                                   "who", "code", {"imm": "immigration", "not": "not_immigration"})
    assert len(codes) == 3 and set(codes["label"]) == {"immigration", "not_immigration"}
