"""textgauge.secrets: key-like options refused anywhere in the config, URL credentials redacted
wherever config or URLs are written, credentials removed from what servers send back."""

from __future__ import annotations

import base64
import logging
from pathlib import Path

import pytest
import yaml

from textgauge import options as o
from textgauge.errors import ConfigError
from textgauge.io import build_manifest
from textgauge.secrets import (
    REDACTED,
    Redactor,
    env_secrets,
    find_secret_options,
    redact_config,
    redact_text,
    redact_url,
    secret_option_message,
    split_url,
    url_secrets,
)

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())


def test_redact_url_hides_userinfo_query_values_and_fragment():
    assert redact_url("http://user:pass@host:8000/v1") == "http://***@host:8000/v1"
    assert redact_url("http://tok@host/v1") == "http://***@host/v1"
    assert redact_url("https://h/v1?api_key=abc&token=x%20y") == \
        "https://h/v1?api_key=***&token=***"
    assert redact_url("https://u:p@h/v1?k=1#frag") == "https://***@h/v1?k=***#***"
    # nothing to hide: the very same string
    for url in ("https://api.openai.com/v1", "http://localhost:8000/v1", "not a url", ""):
        assert redact_url(url) == url
    assert redact_url(None) is None  # type: ignore[arg-type]
    # a password holding '@' or ':' (percent-encoded or not)
    assert redact_url("http://u:p%40ss@h/v1") == "http://***@h/v1"
    assert redact_url("http://u:p@ss@h/v1") == "http://***@h/v1"


def test_split_url_moves_the_query_out_of_the_base_url():
    assert split_url("http://u:p@h:1/v1?api_key=a%20b&t=2") == \
        ("http://u:p@h:1/v1", {"api_key": "a b", "t": "2"})
    assert split_url("http://h/v1") == ("http://h/v1", {})


def test_url_secrets_lists_what_a_server_may_echo():
    got = url_secrets("http://alice:pa%40ss-word@h/v1?api_key=QUERYKEY")
    assert "pa@ss-word" in got and "alice:pa@ss-word" in got and "QUERYKEY" in got
    assert base64.b64encode(b"alice:pa@ss-word").decode() in got
    assert "alice" not in got  # a user name alone is no secret
    assert url_secrets("http://h/v1") == [] and url_secrets(None) == []


def test_redact_config_rewrites_whole_url_values_only():
    cfg = {"models": {"m": {"base_url": "http://u:secretpw@h/v1", "temperature": 0.0,
                            "engine_args": {"urls": ["s3://b/k?sig=abc"]}}},
           "codebook": {"instructions": "See https://example.org/book?page=2 first."},
           "labels": {"token": "a label called token"}}
    out = redact_config(cfg)
    assert out["models"]["m"]["base_url"] == "http://***@h/v1"
    assert out["models"]["m"]["engine_args"]["urls"] == ["s3://b/k?sig=***"]
    # prose keeps its exact text (it enters the prompt hash); names are not options
    assert out["codebook"] == cfg["codebook"] and out["labels"] == cfg["labels"]
    assert cfg["models"]["m"]["base_url"] == "http://u:secretpw@h/v1"  # a copy


def test_manifests_hold_no_url_credential_and_hash_the_redacted_config():
    cfg = {"models": {"m": {"base_url": "http://u:pw-one@h/v1"}}}
    m1 = build_manifest("x", cfg, model_config=cfg["models"]["m"],
                        decoding={"base_url": "http://h/v1?api_key=k-one"})
    assert "pw-one" not in str(m1) and "k-one" not in str(m1)
    assert m1["model_config"]["base_url"] == "http://***@h/v1"
    m2 = build_manifest("x", {"models": {"m": {"base_url": "http://u:pw-two@h/v1"}}})
    assert m1["config_hash"] == m2["config_hash"]  # a new password: the same config


@pytest.mark.parametrize("text,secret", [
    ('{"error": "Authorization: Basic dXNlcjpwYXNzd29yZA== is not valid"}',
     "dXNlcjpwYXNzd29yZA=="),
    ("invalid token: Bearer eyJhbGciOi.J9.eyJzdWIi", "eyJhbGciOi.J9.eyJzdWIi"),
    ("headers: {'x-api-key': 'abcd-efgh-1234'}", "abcd-efgh-1234"),
    ("x-api-key: abcd-efgh-1234", "abcd-efgh-1234"),
    ('{"api_key": "zz-top-secret", "max_tokens": 5}', "zz-top-secret"),
    ("POST /v1/chat/completions?api_key=QK-9999 HTTP/1.1", "QK-9999"),
    ("cannot reach http://bob:hunter2@proxy.internal:8000/v1", "hunter2"),
    ("auth failed for https://h/v1?token=tk-77777", "tk-77777"),
    ("Incorrect API key provided: sk-proj-abcdef123456", "sk-proj-abcdef123456"),
    ("Authorization: rawcredential42", "rawcredential42"),
])
def test_redact_text_removes_credential_shapes(text, secret):
    out = redact_text(text)
    assert secret not in out, out


def test_redact_text_keeps_ordinary_answers_and_usage():
    for text in ('{"label": "economic"}', "economic", '{"prompt_tokens": 200, '
                 '"completion_tokens": 6, "max_tokens": 32}',
                 "You can find your API key at https://platform.example/account/api-keys."):
        assert redact_text(text) == text


def test_redactor_removes_known_secrets_in_every_encoding():
    r = Redactor(["ENV-KEY-1234567"], urls=["http://alice:pw-9f8e7d@h/v1?token=QTOK-555"])
    planted = ["ENV-KEY-1234567", "pw-9f8e7d", "QTOK-555", "alice:pw-9f8e7d",
               base64.b64encode(b"alice:pw-9f8e7d").decode(),
               base64.b64encode(b"ENV-KEY-1234567").decode().rstrip("=")]
    for s in planted:
        out = r(f"the server said: {s}!")
        assert s not in out and "[REDACTED]" in out, (s, out)
    assert r(None) is None
    assert r("key my-very-secret here") == "key my-very-secret here"  # unknown, plain word


def test_env_secrets_are_the_key_like_variables():
    env = {"OPENAI_API_KEY": "sk-1234567890", "HF_TOKEN": "hf_abcdefgh", "HOME": "/home/x",
           "TOKENIZERS_PARALLELISM": "false", "MY_KEY": "short"}
    assert sorted(env_secrets(env)) == ["hf_abcdefgh", "sk-1234567890"]


def test_log_lines_hold_no_credential(tmp_path, monkeypatch):
    from textgauge.logs import setup_logging

    monkeypatch.setenv("TEXTGAUGE_UNIT_TEST_KEY", "unit-key-abcdef-123")
    log_file = tmp_path / "x.log"
    setup_logging(log_file)
    log = logging.getLogger("textgauge")
    log.info("calling http://u:pw-xyz-789@h/v1 with key unit-key-abcdef-123")
    try:
        raise RuntimeError("Bearer bearer-token-456 refused")
    except RuntimeError:
        log.exception("failed")
    text = log_file.read_text()
    for s in ("pw-xyz-789", "unit-key-abcdef-123", "bearer-token-456"):
        assert s not in text
    assert "http://***@h/v1" in text and "Traceback" in text
    logging.getLogger().handlers.clear()


def test_key_like_options_are_found_anywhere_but_names_are_not_options():
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    assert find_secret_options(cfg, SCHEMA) == []
    cfg["api_key"] = "x"
    cfg["inference"]["token"] = "x"
    cfg["labels"]["token"] = "a label may be called token"
    cfg["gold"]["codes"] = {"secret": "sheet.csv"}  # a coder name
    model = next(iter(cfg["models"].values()))
    model.setdefault("limits", {})["hf_token"] = "x"
    cfg["models"]["api"] = {"kind": "prompt", "model": "m", "prompt": "p",
                            "extra_body": {"nested": {"password": "x"}}}
    found = find_secret_options(cfg, SCHEMA)
    assert sorted(found) == sorted(["api_key", "inference.token",
                                    f"models.{next(iter(cfg['models']))}.limits.hf_token",
                                    "models.api.extra_body.nested.password"])
    # without a schema every key is an option name
    assert find_secret_options({"a": {"Authorization_token": 1}}) == ["a.Authorization_token"]


def test_the_message_says_keys_come_from_the_environment():
    msg = secret_option_message("inference.api_key")
    assert msg.startswith("inference.api_key:") and "come from the environment" in msg
    assert "OPENAI_API_KEY" in msg and "api_key_env" in msg


def test_typed_options_refuse_keys_in_sections_and_free_form_settings():
    with pytest.raises(ConfigError, match=r"^inference\.api_key: .*environment"):
        o.Inference.from_dict({"api_key": "x"})
    with pytest.raises(ConfigError, match=r"models\.gpt\.extra_body\.headers\.x_api_key"):
        o.model_options({"kind": "prompt", "model": "m", "prompt": "p",
                         "extra_body": {"headers": {"x_api_key": "k"}}}, "gpt")
    with pytest.raises(ConfigError, match=r"models\.v\.engine_args\.hf_token"):
        o.model_options({"kind": "prompt", "model": "m", "prompt": "p",
                         "engine_args": {"hf_token": "k"}}, "v")
    # a base_url with credentials is a legal setting (used for requests, written nowhere)
    m = o.model_options({"kind": "prompt", "model": "m", "prompt": "p", "backend": "openai",
                         "base_url": "http://u:p@h/v1"}, "ok")
    assert m.base_url == "http://u:p@h/v1"


def test_the_predict_step_puts_the_real_url_back_and_checks_it():
    from types import SimpleNamespace

    from textgauge.steps.infer import with_endpoint

    real = "http://u:pw@h/v1?api_key=k"
    shown = {"base_url": redact_url(real), "temperature": 0.0}
    assert shown["base_url"] == f"http://{REDACTED}@h/v1?api_key={REDACTED}"
    assert with_endpoint(shown, SimpleNamespace(base_url=real), "m")["base_url"] == real
    assert with_endpoint(shown, SimpleNamespace(), "m") == shown
    assert with_endpoint(shown, None, "m") == shown
    with pytest.raises(ConfigError, match="models.m.base_url"):
        with_endpoint(shown, SimpleNamespace(base_url="http://u:pw@other/v1"), "m")


def test_the_module_needs_the_standard_library_only():
    """common.smk loads src/textgauge/secrets.py by path when Snakemake's environment has no
    textgauge (--sdm conda): it may import nothing else."""
    import ast
    import sys

    tree = ast.parse((REPO / "src/textgauge/secrets.py").read_text())
    imported = {n.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for n in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported
