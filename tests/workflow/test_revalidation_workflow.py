"""Stage 5 completed through snakemake (issue 12, item 3).

On the tiny run (config/test.yaml, the synthetic example: gold.simulate is set) the simulated
coders fill the stage-5 sheets like the gold sheets; rule import_revalidation_codes builds
the reference as for gold (ties and missing codes counted) and rule revalidation_metrics
scores the corpus-scope coder on the fresh sample with its design weights, beside the sample
as drawn and the gold set, with the differences and CIs, overall and per stratum; the report
shows it. Dry runs check that the stage-5 rules join the DAG only when configured.
"""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake

STAGE5_RULES = {"simulate_revalidation_coding", "import_revalidation_codes",
                "revalidation_metrics"}


def planned(proc) -> dict[str, int]:
    """rule -> job count from a dry run's job table."""
    out = proc.stdout + proc.stderr
    if "Job stats:" not in out:
        return {}
    table = out.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


@pytest.mark.slow
def test_stage5_round_trip_through_snakemake(tiny_run):
    r = tiny_run / "results"
    m = json.loads((r / "revalidation/metrics.json").read_text())
    drawn = pd.read_parquet(r / "revalidation/sample.parquet")
    codes = json.loads((r / "revalidation/codes.json").read_text())
    assert m["model"] == "encoder" and m["n_sample"] == len(drawn) == 30
    # the import counted everything, the way gold's does
    c = m["counts"]
    assert c == codes["counts"] and c["sample_size"] == 30
    assert c["evaluated"] + c["excluded"] == c["sample_size"] == m["n_evaluated"] + m["n_excluded"]
    assert c["tied"] == c["adjudicated"] + c["resolved_by_lead_coder"] + \
        c["resolved_at_random"] + c["excluded_ties"]
    ov = m["overall"]
    for part in ("weighted", "drawn", "gold"):
        assert ov[part]["n"] == (m["n_gold"] if part == "gold" else m["n_evaluated"])
        for stat in ("kappa", "macro_f1"):
            assert ov[part][stat]["estimate"] is not None
    assert ov["weighted"]["weighted"] and not ov["drawn"]["weighted"]
    # the weights stand for the sampling frame: the corpus less gold (and training) items
    design = drawn.groupby("cell")["cell_size"].first()
    assert ov["weighted"]["sum_weights"] == pytest.approx(design.sum())
    for stat in ("kappa", "macro_f1"):
        d = ov["difference"][stat]
        assert d["estimate"] == pytest.approx(ov["weighted"][stat]["estimate"]
                                              - ov["gold"][stat]["estimate"], abs=1e-9)
        assert d["ci_low"] <= d["estimate"] <= d["ci_high"]
        assert d["n_boot"] == m["n_boot"] == 200 and d["confidence"] == 0.95
    # per stratum: every value of every corpus.strata column
    assert m["strata_columns"] == ["party", "period", "chamber"]  # corpus.strata
    assert {s["stratum_col"] for s in m["strata"]} == set(m["strata_columns"])
    assert sum(s["n"] for s in m["strata"] if s["stratum_col"] == "party") == m["n_evaluated"]
    table = pd.read_csv(r / "revalidation/metrics.csv")
    assert set(table["sample"]) == {"weighted", "drawn", "gold", "difference"}
    html = (r / "report/index.html").read_text()
    section = html[html.index("Stage 5: validate again"):]
    assert "Coder re-validated: <b>encoder</b>" in section
    assert "κ weighted" in section and "κ as drawn" in section and "κ difference" in section
    assert f"{ov['difference']['kappa']['estimate']:+.3f}" in section
    assert f"Of the {c['sample_size']} sampled texts, {c['coded']} were coded" in section
    methods = (r / "report/methods.md").read_text()
    assert "fresh sample of 30 classified texts" in methods


@pytest.fixture(scope="module")
def wd(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("stage5") / "wf")


def _variant(wd, name: str, **sections) -> str:
    cfg = yaml.safe_load((wd / "config/test.yaml").read_text())
    for key, value in sections.items():
        cfg.setdefault(key, {}).update(value)
    path = wd / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return f"config/{name}.yaml"


@pytest.mark.slow
def test_stage5_rules_join_the_dag_only_when_configured(wd):
    jobs = planned(snakemake(wd, "-n", "--configfile", "config/test.yaml"))
    assert STAGE5_RULES <= set(jobs)  # the synthetic example simulates the coders
    off = _variant(wd, "off", audits={"revalidation_size": 0})
    assert not STAGE5_RULES & set(planned(snakemake(wd, "-n", "--configfile", off)))
    # real data without filled stage-5 sheets: the sample and sheets only
    real = _variant(wd, "real", gold={"simulate": None, "codes_long": None,
                                      "codes": {"coder_a": "resources/example/corpus.csv"}})
    jobs = planned(snakemake(wd, "-n", "results/revalidation/sample.parquet",
                             "--configfile", real))
    assert "revalidation_sample" in jobs and not STAGE5_RULES & set(jobs)
    # real data with filled stage-5 sheets (audits.revalidation_codes): imported and scored
    coded = _variant(wd, "coded", gold={"simulate": None, "codes_long": None,
                                        "codes": {"coder_a": "resources/example/corpus.csv"}},
                     audits={"revalidation_codes": {"coder_a": "resources/example/corpus.csv"}})
    jobs = planned(snakemake(wd, "-n", "results/revalidation/metrics.json",
                             "--configfile", coded))
    assert {"import_revalidation_codes", "revalidation_metrics"} <= set(jobs)
    assert "simulate_revalidation_coding" not in jobs
