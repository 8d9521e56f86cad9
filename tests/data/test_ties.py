"""Ties and gaps are decisions: gold.ties, every count in the import summary, clear errors."""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest

from textgauge.data import coding
from textgauge.errors import ConfigError, InputDataError
from textgauge.steps.gold import COUNT_KEYS, import_codes

LABELS = ["economic", "moral", "security", "rights"]
IDS = [f"g{i:02d}" for i in range(12)]


def sample(tmp_path):
    p = tmp_path / "sample.parquet"
    pd.DataFrame({"id": IDS, "text": [f"text {i}" for i in IDS]}).to_parquet(p)
    return str(p)


def long_file(tmp_path, rows):
    p = tmp_path / "long.csv"
    pd.DataFrame(rows, columns=["id", "coder", "label"]).to_csv(p, index=False)
    return str(p)


def tie_heavy_rows():
    """Crowd codes, two coders per item out of four; items g00-g05 tie, g06-g11 agree."""
    rows = []
    for k, i in enumerate(IDS):
        a, b = f"c{k % 4}", f"c{(k + 1) % 4}"
        if k < 6:
            rows += [(i, a, "moral"), (i, b, "rights")]
        else:
            rows += [(i, a, "economic"), (i, b, "economic")]
    return rows


def run(tmp_path, **kw):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    args = dict(sample=sample(tmp_path), codes=str(out / "codes.parquet"),
                reference=str(out / "reference.parquet"),
                adjudication_sheet=str(out / "adjudication_sheet.csv"),
                summary=str(out / "codes.json"), labels=LABELS, sheet_files={},
                coders=["coder_a", "coder_b"], to_adjudicate=str(out / "to_adjudicate.csv"))
    args.update(kw)
    return import_codes(**args), out


def test_default_stops_naming_the_sheet_to_fill_which_lists_the_ties(tmp_path):
    path = long_file(tmp_path, tie_heavy_rows())
    with pytest.raises(InputDataError) as e:
        run(tmp_path, codes_long={"path": path})
    msg = str(e.value)
    sheet = tmp_path / "out" / "to_adjudicate.csv"
    assert str(sheet) in msg and "6 of 12 gold items are tied" in msg
    assert "gold.adjudication" in msg and "gold.ties" in msg
    todo = pd.read_csv(sheet, dtype=str, keep_default_na=False)
    assert list(todo["id"]) == IDS[:6]
    assert set(todo["tied_labels"]) == {"moral | rights"} and (todo["label"] == "").all()
    assert not (tmp_path / "out" / "reference.parquet").exists()


def test_the_filled_sheet_resolves_the_ties(tmp_path):
    path = long_file(tmp_path, tie_heavy_rows())
    with pytest.raises(InputDataError):
        run(tmp_path, codes_long={"path": path})
    todo = pd.read_csv(tmp_path / "out" / "to_adjudicate.csv", dtype=str,
                       keep_default_na=False)
    todo["label"] = "moral"
    filled = tmp_path / "adjudicated.csv"
    todo.to_csv(filled, index=False)
    info, out = run(tmp_path, codes_long={"path": path}, adjudication=str(filled))
    c = info["counts"]
    assert (c["tied"], c["adjudicated"], c["evaluated"], c["excluded"]) == (6, 6, 12, 0)
    assert not (out / "to_adjudicate.csv").exists()  # no stale sheet once resolved


def test_exclude_counts_match_the_files(tmp_path):
    path = long_file(tmp_path, tie_heavy_rows())
    info, out = run(tmp_path, codes_long={"path": path}, ties="exclude")
    c = json.loads((out / "codes.json").read_text())["counts"]
    assert c == info["counts"] and set(c) == set(COUNT_KEYS)
    ref = pd.read_parquet(out / "reference.parquet")
    codes = pd.read_parquet(out / "codes.parquet")
    assert c["sample_size"] == 12 and c["evaluated"] == len(ref) == 6
    assert c["tied"] == c["excluded_ties"] == c["excluded"] == 6
    assert c["codes"] == int((codes["label"] != "").sum()) == 24
    assert c["coded"] == codes["id"].nunique() == 12 and c["majority"] == 6
    assert sorted(info["excluded_ids"]["ties"]) == IDS[:6]
    assert not set(ref["id"]) & set(IDS[:6])


def test_random_is_seeded_and_picks_a_tied_label(tmp_path):
    path = long_file(tmp_path, tie_heavy_rows())
    _, out = run(tmp_path, codes_long={"path": path}, ties="random", seed=5)
    a = pd.read_parquet(out / "reference.parquet")
    _, out = run(tmp_path, codes_long={"path": path}, ties="random", seed=5)
    b = pd.read_parquet(out / "reference.parquet")
    pd.testing.assert_frame_equal(a, b)
    tied = a.loc[a["id"].isin(IDS[:6])]
    assert set(tied["method"]) == {"random coder"} and set(tied["reference"]) <= {"moral", "rights"}
    seeds = {tuple(pd.read_parquet(run(tmp_path, codes_long={"path": path}, ties="random",
                                       seed=s)[1] / "reference.parquet")["reference"])
             for s in range(6)}
    assert len(seeds) > 1  # the seed matters


def test_lead_coder_absent_from_a_long_file_is_a_clear_error(tmp_path):
    path = long_file(tmp_path, tie_heavy_rows())
    with pytest.raises(ConfigError) as e:
        run(tmp_path, codes_long={"path": path}, ties="lead_coder")
    msg = str(e.value)
    assert "'coder_a'" in msg and "gold.lead_coder" in msg and path in msg and "'c0'" in msg


def test_lead_coder_resolves_the_ties_it_coded_and_stops_on_the_others(tmp_path):
    path = long_file(tmp_path, tie_heavy_rows())
    # c0 coded g00 (moral), g03 (rights), g04 (moral); g01, g02, g05 stay unresolved
    with pytest.raises(InputDataError, match=r"3 of 12 .* did not code them"):
        run(tmp_path, codes_long={"path": path}, ties="lead_coder", lead_coder="c0")


def sheets(tmp_path, a_rows, b_rows):
    files = {}
    for coder, rows in (("coder_a", a_rows), ("coder_b", b_rows)):
        p = tmp_path / f"{coder}.csv"
        pd.DataFrame(rows, columns=["id", "label"]).to_csv(p, index=False)
        files[coder] = str(p)
    return files


def test_rows_deleted_from_a_sheet_count_as_missing_per_coder_with_a_warning(tmp_path, caplog):
    a = [(i, "moral") for i in IDS]
    b = [(i, "moral") for i in IDS[:9]] + [(IDS[9], "")]  # 2 rows deleted, 1 left empty
    with caplog.at_level(logging.WARNING, logger="textgauge"):
        info, _ = run(tmp_path, sheet_files=sheets(tmp_path, a, b))
    c = info["counts"]
    assert c["missing_per_coder"] == {"coder_a": 0, "coder_b": 3}
    assert c["rows_missing_per_coder"] == {"coder_a": 0, "coder_b": 2}
    assert info["missing_codes"] == 3 and c["evaluated"] == 12
    assert "lacks 2 of the 12 gold items" in caplog.text and "coder_b" in caplog.text


def test_a_sheet_without_codes_names_coder_file_and_option(tmp_path):
    files = sheets(tmp_path, [(i, "moral") for i in IDS], [(i, "") for i in IDS])
    with pytest.raises(InputDataError) as e:
        run(tmp_path, sheet_files=files)
    msg = str(e.value)
    assert "coder_b" in msg and files["coder_b"] in msg and "gold.codes.coder_b" in msg


def test_a_long_file_coder_without_codes_is_named(tmp_path):
    rows = tie_heavy_rows() + [(IDS[0], "lazy", ""), (IDS[1], "lazy", "")]
    path = long_file(tmp_path, rows)
    with pytest.raises(InputDataError) as e:
        run(tmp_path, codes_long={"path": path}, ties="exclude")
    assert "'lazy'" in str(e.value) and path in str(e.value) and "gold.codes_long" in str(e.value)


def test_adjudication_ids_outside_the_sample_are_an_error(tmp_path):
    path = long_file(tmp_path, tie_heavy_rows())
    adj = tmp_path / "adj.csv"
    pd.DataFrame({"id": ["g00", "zz9"], "label": ["moral", "rights"]}).to_csv(adj, index=False)
    with pytest.raises(InputDataError) as e:
        run(tmp_path, codes_long={"path": path}, adjudication=str(adj), ties="exclude")
    msg = str(e.value)
    assert "zz9" in msg and str(adj) in msg and "gold.adjudication" in msg


def test_label_map_target_outside_the_codebook_names_option_and_file(tmp_path):
    path = long_file(tmp_path, [(i, "c1", "M") for i in IDS])
    with pytest.raises(ConfigError) as e:
        run(tmp_path, codes_long={"path": path, "label_map": {"M": "morality"}})
    msg = str(e.value)
    assert "gold.codes_long.label_map" in msg and "'morality'" in msg and path in msg


def test_codebook_labels_differing_only_in_case_are_an_error(tmp_path):
    path = long_file(tmp_path, [(i, "c1", "moral") for i in IDS])
    with pytest.raises(ConfigError) as e:
        run(tmp_path, codes_long={"path": path}, labels=["Moral", "moral", "rights"])
    assert "'Moral' and 'moral'" in str(e.value) and "labels" in str(e.value)
    with pytest.raises(ConfigError, match="differ only in case"):
        coding.check_codebook(["Economic", "ECONOMIC "])


def test_training_label_map_errors_name_training_option(tmp_path):
    from textgauge.data import splits

    lab = tmp_path / "train.csv"
    pd.DataFrame({"id": ["1"], "label": ["x"]}).to_csv(lab, index=False)
    with pytest.raises(ConfigError, match=r"training\.label_map"):
        splits.read_labelled(str(lab), LABELS, pd.DataFrame({"id": ["1"], "text": ["t"]}),
                             label_map={"x": "nonsense"})
