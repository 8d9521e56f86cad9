"""textgauge.options against workflow/schemas/config.schema.yaml: the same names and defaults,
both ways, so an option keeps one name from config.yaml to the library."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import yaml

from textgauge import options as o
from textgauge.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def node(path: str) -> dict:
    """A schema object by a slash path ('properties/gold', '$defs/prompt_model', ...)."""
    n = SCHEMA
    for part in path.split("/"):
        n = n[part]
    return n.get("then", n)  # nullable objects keep their properties under if/then


SECTIONS = {
    "properties/project": o.Project, "properties/corpus": o.Corpus,
    "properties/codebook": o.Codebook, "properties/gold": o.Gold,
    "properties/gold/properties/codes_long": o.CodesLong,
    "properties/gold/properties/simulate": o.Simulate,
    "properties/training": o.Training,
    "properties/training/properties/label_noise": o.LabelNoise,
    "properties/inference": o.Inference, "properties/validation": o.Validation,
    "properties/audits": o.Audits, "properties/privacy": o.Privacy,
    "$defs/prompt_model": o.PromptModel, "$defs/encoder_model": o.EncoderModel,
    "$defs/encoder_model/properties/calibration": o.EncoderCalibration,
    "$defs/lora_model": o.LoraModel, "$defs/prompt_limits": o.PromptLimits,
    "$defs/encoder_limits": o.EncoderLimits, "$defs/lora_limits": o.LoraLimits,
    "$defs/prompt_plan": o.PromptPlan, "$defs/trained_plan": o.TrainedPlan,
    "$defs/baseline_model": o.BaselineModel, "$defs/baseline_limits": o.BaselineLimits,
    "": o.Config,
}


def defaults(cls) -> dict:
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = dataclasses.MISSING
    return out


def as_plain(v):
    return v.to_dict() if isinstance(v, o.Options) else v


@pytest.mark.parametrize("path,cls", SECTIONS.items(), ids=lambda x: getattr(x, "__name__", x))
def test_fields_and_defaults_match_the_schema(path, cls):
    schema = node(path) if path else SCHEMA
    props = schema["properties"]
    fields = defaults(cls)
    assert set(props) == set(fields), (f"schema only: {sorted(set(props) - set(fields))}; "
                                       f"dataclass only: {sorted(set(fields) - set(props))}")
    required = set(schema.get("required", []))
    for name, prop in props.items():
        got = fields[name]
        if "const" in prop:
            assert got == prop["const"], name
        elif "default" in prop:
            want = prop["default"]
            if isinstance(got, o.Options):  # a nested section: its own defaults
                want = cls.NESTED[name].from_dict(want).to_dict()
            assert as_plain(got) == want, f"{cls.__name__}.{name}: {got!r} vs schema {want!r}"
        elif name in required:
            assert got is dataclasses.MISSING, f"{cls.__name__}.{name} is required"
        else:
            assert got is None or got is dataclasses.MISSING, \
                f"{cls.__name__}.{name}: the schema has no default, the dataclass {got!r}"
    assert schema.get("additionalProperties") is False or path == "", path


#: free-form by design: passed through to an SDK/engine, or checked by textgauge.options
FREE_FORM = ("/extra_body", "/engine_args", "/label_noise/properties/encoder", "/if")


def test_every_object_in_the_schema_rejects_unknown_keys():
    def walk(n, where):
        if where.endswith(FREE_FORM):
            return
        if isinstance(n, dict):
            if n.get("type") == "object" or "object" in (n.get("type") or []) or \
                    "properties" in n:
                ok = (n.get("additionalProperties") is False
                      or isinstance(n.get("additionalProperties"), dict)
                      or "then" in n or "allOf" in n)
                assert ok, where
            for k, v in n.items():
                walk(v, f"{where}/{k}")
        elif isinstance(n, list):
            for i, v in enumerate(n):
                walk(v, f"{where}[{i}]")

    walk(SCHEMA, "")


def test_the_runnable_configs_build_typed_options():
    from snakemake.utils import update_config, validate

    for rel in ("config.yaml", "config/test.yaml", "config/examples/benoit2016.yaml"):
        cfg = yaml.safe_load((REPO / "config.yaml").read_text())
        if rel != "config.yaml":  # --configfile merges into config.yaml, as snakemake does
            update_config(cfg, yaml.safe_load((REPO / rel).read_text()))
        validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"))
        opts = o.Config.from_dict(cfg)
        for name, m in opts.models.items():
            assert m.kind == cfg["models"][name]["kind"]
            assert "limits" not in m.answer_settings() and "plan" not in m.answer_settings()


def test_unknown_and_secret_keys_are_refused_by_name():
    with pytest.raises(ConfigError, match="learning_rte.*learning_rate"):
        o.model_options({"kind": "encoder", "base_model": "x", "learning_rte": 1e-4}, "enc")
    with pytest.raises(ConfigError, match="environment.*OPENAI_API_KEY.*api_key_env"):
        o.model_options({"kind": "prompt", "model": "m", "prompt": "p", "api_key": "sk-1"})
    with pytest.raises(ConfigError, match="models.gpt.limits.*concurency"):
        o.model_options({"kind": "prompt", "model": "m", "prompt": "p",
                         "limits": {"concurency": 3}}, "gpt")


def test_limits_and_plan_are_not_answer_settings():
    m = o.run_settings({"kind": "prompt", "model": "m", "prompt": "p", "temperature": 0.0},
                       limits={"concurrency": 3}, plan={"throughput_texts_per_s": 2.0})
    assert m.limits.concurrency == 3 and m.plan.throughput_texts_per_s == 2.0
    assert m.answer_settings()["temperature"] == 0.0
    flat = m.backend_config()
    assert flat["concurrency"] == 3 and "throughput_texts_per_s" not in flat


def test_the_options_guide_documents_every_option():
    """config/README.md (the guide config.yaml points to) names every option of the schema."""
    guide = (REPO / "config/README.md").read_text()
    missing = []
    for cls in SECTIONS.values():
        for f in dataclasses.fields(cls):
            if not re.search(rf"`(?:[\w.]+\.)?{f.name}`|^##+ {f.name}$", guide, re.M):
                missing.append(f"{cls.__name__}.{f.name}")
    assert not missing, missing


def test_ordinal_codebook_options():
    """config/examples/ordinal.yaml (run with --replace-workflow-config) declares an ordinal
    scale; an ordinal scale of two labels is refused with a message naming the option."""
    from snakemake.utils import validate

    cfg = yaml.safe_load((REPO / "config/examples/ordinal.yaml").read_text())
    validate(cfg, str(REPO / "workflow/schemas/config.schema.yaml"))
    opts = o.Config.from_dict(cfg)
    assert (opts.codebook.scale, opts.codebook.kappa_weights) == ("ordinal", "quadratic")
    assert o.Codebook().scale == "nominal"
    two = {**cfg, "labels": {"low": "a", "high": "b"}}
    with pytest.raises(ConfigError, match="codebook.scale is ordinal.*at least 3 labels"):
        o.Config.from_dict(two)
    with pytest.raises(ConfigError, match="codebook.kappa_weights"):
        o.Codebook.from_dict({"scale": "ordinal", "kappa_weights": "cubic"})
