"""One name rule for models and coders: in the schema, the workflow and the library."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from textgauge.errors import ConfigError
from textgauge.names import NAME_PATTERN, check_config_names, is_valid_name

REPO = Path(__file__).resolve().parents[1]


def test_the_schema_and_the_workflow_use_the_library_rule():
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    assert schema["$defs"]["name"]["pattern"] == NAME_PATTERN
    gold = schema["properties"]["gold"]["properties"]
    ref = {"$ref": "#/$defs/name"}
    assert gold["coders"]["items"] == ref and gold["codes"]["propertyNames"] == ref
    assert gold["development_codes"]["propertyNames"] == ref
    assert ref in gold["lead_coder"]["anyOf"]
    assert schema["properties"]["models"]["propertyNames"] == ref


@pytest.mark.parametrize("name", ["coder_a", "gpt4o-mini", "A1", "7", "x" * 64])
def test_valid_names(name):
    assert is_valid_name(name)


@pytest.mark.parametrize("name", ["", "../x", "/abs/path", "a/b", "a\\b", "=1+1", "+x", "-x",
                                  "@x", "_x", ".hidden", "a.b", "a b", "x" * 65, "tab\tx",
                                  "é", None, 3])
def test_invalid_names(name):
    assert not is_valid_name(name)
    if isinstance(name, str):
        assert not re.fullmatch(NAME_PATTERN, name)


def test_config_names_are_checked_by_option():
    ok = {"models": {"m1": {}}, "gold": {"coders": ["a"], "lead_coder": "a",
                                         "codes": {"a": "s.csv"}}}
    check_config_names(ok)
    for where, cfg in [("models", {"models": {"../m": {}}}),
                       ("gold.coders", {"gold": {"coders": ["a", "a b"]}}),
                       ("gold.lead_coder", {"gold": {"lead_coder": "=x"}}),
                       ("gold.codes", {"gold": {"codes": {"../../x": "s.csv"}}}),
                       ("gold.development_codes",
                        {"gold": {"development_codes": {"a/b": "s.csv"}}})]:
        with pytest.raises(ConfigError, match=re.escape(where)):
            check_config_names(cfg)
