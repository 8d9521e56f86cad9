"""What reruns a paid predict job, and what must not (issue 10).

A model's settings come in three kinds: what shapes its answers (a param of the predict rules,
so a change reruns them), `limits` (concurrency, rates, retries, batching) and `plan`
(throughput, tokenizer). The last two reach the step as a namespace that Snakemake cannot
represent as a param value, so it never records or compares them (common.smk,
model_limits): editing them must plan no predict job and keep the checkpoint.

One real run of the prompted coder on the tiny gold sample (~30 s), then dry runs only.
Config errors (unknown key, secret key) need no run at all.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import copy_workflow, snakemake

TARGET = "results/predictions/zeroshot/gold.parquet"


def variant(wd: Path, name: str, **changes) -> str:
    """config/test.yaml with some keys changed (dotted paths), as a --configfile."""
    cfg = yaml.safe_load((wd / "config/test.yaml").read_text())
    for dotted, value in changes.items():
        node = cfg
        *parents, leaf = dotted.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = value
    path = wd / "config" / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return f"config/{name}.yaml"


def planned(wd: Path, configfile: str, *targets: str) -> dict[str, int]:
    out = snakemake(wd, "-n", *targets, "--configfile", configfile)
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return {}
    table = text[text.index("Job stats"):]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M)
            if k != "total"}


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("triggers") / "wf")
    snakemake(wd, TARGET, "--configfile", "config/test.yaml")
    assert (wd / TARGET).exists()
    return wd


@pytest.mark.parametrize("changes", [
    {"models.zeroshot.plan": {"throughput_texts_per_s": 123.0}},
    {"models.zeroshot.plan": {"tokenizer": "approx:3.5"}},
    {"models.zeroshot.limits": {"inference_batch_size": 4, "concurrency": 32,
                                "requests_per_minute": 600, "max_retries": 2,
                                "timeout": 5.0, "max_fail_share": 0.2}},
], ids=["throughput", "tokenizer", "limits"])
def test_limits_and_plan_plan_no_predict_job(ran, changes):
    cfg = variant(ran, "runtime", **changes)
    assert planned(ran, "config/test.yaml", TARGET) == {}
    assert planned(ran, cfg, TARGET) == {}, "a limits/plan change must not rerun a paid job"


@pytest.mark.parametrize("changes", [
    {"models.zeroshot.temperature": 0.7},
    {"models.zeroshot.label_order": "reversed"},
    {"models.zeroshot.prompt": "prompts/zeroshot_paraphrase1.jinja"},
], ids=["temperature", "label_order", "prompt"])
def test_answer_settings_rerun_the_predict_job(ran, changes):
    assert planned(ran, variant(ran, "answers", **changes), TARGET).get("predict_gold") == 1


def test_editing_the_prompt_template_reruns_the_predict_job(ran):
    """The template file is an input of the predict rules: a new version reruns them."""
    import os

    template = ran / "prompts/zeroshot.jinja"
    text, st = template.read_text(), template.stat()
    try:
        template.write_text(text + "\n{# edited #}\n")
        assert planned(ran, "config/test.yaml", TARGET).get("predict_gold") == 1
    finally:
        template.write_text(text)
        os.utime(template, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert planned(ran, "config/test.yaml", TARGET) == {}


# ------------------------------------------------------------------ config errors, no run
@pytest.fixture(scope="module")
def blank(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("config-errors") / "wf")


def dry_run_error(wd: Path, **changes) -> str:
    out = snakemake(wd, "-n", "--configfile", variant(wd, "bad", **changes), check=False)
    assert out.returncode != 0
    return out.stdout + out.stderr


def test_a_typo_inside_a_model_is_an_error_naming_the_key(blank):
    text = dry_run_error(blank, **{"models.encoder.learning_rte": 1e-4})
    assert "models.encoder" in text and "'learning_rte'" in text
    assert "Did you mean 'learning_rate'" in text


def test_an_api_key_inside_a_model_is_refused(blank):
    text = dry_run_error(blank, **{"models.zeroshot.api_key": "sk-not-a-real-key"})
    assert "models.zeroshot.api_key" in text and "come from the environment" in text
    assert "OPENAI_API_KEY" in text and "api_key_env" in text
    assert "sk-not-a-real-key" not in text


def test_a_limit_at_the_top_of_a_model_says_where_it_belongs(blank):
    text = dry_run_error(blank, **{"models.zeroshot.concurrency": 4})
    assert "models.zeroshot.limits" in text


def test_a_coder_name_that_is_a_path_is_refused_by_the_name_rule(blank):
    text = dry_run_error(blank, **{"gold.coders": ["coder_a", "../../x"]})
    assert "gold.coders: '../../x' is not a valid name" in text and "rename it" in text


def test_the_old_batch_size_names_its_replacements(blank):
    text = dry_run_error(blank, **{"models.encoder.batch_size": 4})
    assert "train_batch_size" in text and "inference_batch_size" in text
