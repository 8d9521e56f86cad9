"""Secrets: what never reaches an output, and the one place that removes it.

API keys come from the environment only (``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY`` or the
variable a model names with ``limits.api_key_env``); a key-like option written into the
config is refused (:func:`find_secret_options`, :func:`secret_option_message`). What the config
may still carry is a credential inside a URL: ``http://user:pass@host/v1`` or
``...?api_key=...``. The request needs it; nothing written may hold it. So every writer of
config or URLs (prediction and report manifests, the report, the replication config, rule
params, batch state, logs) passes them through :func:`redact_url` / :func:`redact_config`,
and every text that came back from a server (errors, raw answers) through :class:`Redactor`.

Standard library only: the workflow (``workflow/rules/common.smk``) uses these functions to
redact rule params, and the Snakemake process need not have textgauge's dependencies.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

#: what a redacted URL credential or query value becomes
REDACTED = "***"
#: what a secret found in a server's text (error, raw answer) becomes
REDACTED_TEXT = "[REDACTED]"
#: option names that look like a credential (``api_key``, ``hf_token``, ``password`` ...)
SECRET_KEY = re.compile(r"(^|_)(api_?key|key|token|secret|password|passwd)$", re.IGNORECASE)
#: the environment variable each API backend reads its key from
KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s\"'<>\\`]+")
_WHOLE_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://\S+$")
#: "Basic dXNlcjpwYXNz", "Bearer abc.def" (an Authorization header's scheme and credential)
_AUTH_SCHEME = re.compile(r"\b(Basic|Bearer|Digest|Token)(\s+)(?!\[REDACTED\])"
                          r"[A-Za-z0-9._~+/=\-]{4,}", re.IGNORECASE)
#: header or JSON field carrying a credential: "x-api-key: abc", '"api_key": "abc"'
_KEY_FIELD = re.compile(
    r"((?:\b|[\"'])(?:[\w\-]*[_\-])?(?:api[_\-]?key|token|secret|password|passwd|"
    r"authorization)[\"']?\s*[:=]\s*[\"']?)"
    r"(?!(?:Basic|Bearer|Digest|Token)\s)(?!\[REDACTED\]|\*\*\*)([^\s\"',;}&]+)",
    re.IGNORECASE)
#: a query parameter outside a full URL ("/v1?api_key=abc")
_QUERY_SECRET = re.compile(r"([?&][\w\-]*(?:key|token|secret|password|passwd|pwd|sig|"
                           r"signature|auth)[\w\-]*=)(?!\*\*\*)([^&\s\"'#]+)", re.IGNORECASE)
#: a provider key pasted anywhere (OpenAI, Anthropic: sk-..., sk-ant-...)
_PROVIDER_KEY = re.compile(r"\b(sk-[A-Za-z0-9_\-]{8,})")


# ---------------------------------------------------------------------------- config options

def secret_option_message(where: str) -> str:
    """The error for a credential written into the config at ``where`` (a dotted path)."""
    return (f"{where}: API keys and other secrets are never written in the config file; "
            "they come from the environment. Put the key in an environment variable "
            f"({KEY_ENV['openai']} for backend openai, {KEY_ENV['anthropic']} for anthropic) "
            "or name your own variable with `limits: {api_key_env: MY_KEY_VARIABLE}` in the "
            "model; nothing in the config or the outputs ever holds the key itself. A server "
            "behind a password can keep it in base_url (http://user:pass@host/v1): it is "
            "used for the requests and written nowhere.")


def _resolve(schema: Mapping[str, Any] | None, defs: Mapping[str, Any]
             ) -> list[Mapping[str, Any]]:
    """The schema and every sub-schema that adds properties to it ($ref, allOf/then/else)."""
    if not isinstance(schema, Mapping):
        return []
    if "$ref" in schema:
        return _resolve(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1]), defs)
    out = [schema]
    for sub in schema.get("allOf") or []:
        out += _resolve(sub, defs)
        out += _resolve(sub.get("then"), defs) if isinstance(sub, Mapping) else []
    for key in ("then", "else"):
        out += _resolve(schema.get(key), defs)
    return out


def find_secret_options(node: Any, schema: Mapping[str, Any] | None = None,
                        defs: Mapping[str, Any] | None = None, where: str = "") -> list[str]:
    """Dotted paths of key-like option names anywhere in ``node`` (a config or part of one).

    With the config ``schema`` (and its ``$defs``), names the user chooses (labels, model and
    coder names: objects whose ``additionalProperties`` is a schema) are not options and are
    never refused, so a label called ``token`` stays legal. Without a schema (free-form
    objects such as ``extra_body`` and ``engine_args``) every key is an option name.
    """
    defs = defs if defs is not None else (schema or {}).get("$defs", {})
    found: list[str] = []
    if isinstance(node, (list, tuple)):
        items = _resolve((schema or {}).get("items"), defs) if schema else []
        for i, v in enumerate(node):
            found += find_secret_options(v, items[0] if items else None, defs, f"{where}[{i}]")
        return found
    if not isinstance(node, Mapping):
        return found
    parts = _resolve(schema, defs) if schema is not None else []
    props: dict[str, Any] = {}
    names: Mapping[str, Any] | None = None
    for p in parts:
        props.update(p.get("properties") or {})
        if isinstance(p.get("additionalProperties"), Mapping):
            names = p["additionalProperties"]
    free = not props and names is None  # extra_body, engine_args: passed on as they are
    for key, value in node.items():
        path = f"{where}.{key}" if where else str(key)
        if key in props:
            found += find_secret_options(value, props[key], defs, path)
        elif names is not None and not props:
            found += find_secret_options(value, names, defs, path)  # a name, not an option
        elif SECRET_KEY.search(str(key)):
            found.append(path)
        elif free:  # nested keys of a free-form object are option names too
            found += find_secret_options(value, None, defs, path)
    return found


# ---------------------------------------------------------------------------- URLs

def redact_url(url: str) -> str:
    """``url`` with its credentials replaced by ``***``: the user:password before the host,
    every query value and any fragment (``http://***@host:8000/v1?api_key=***``). A URL
    without any of them comes back unchanged; a value that is no URL too."""
    if not isinstance(url, str) or "://" not in url:
        return url
    try:
        p = urlsplit(url)
    except ValueError:  # unparseable (a bad port, brackets): drop everything before '@'
        return re.sub(r"(://)[^/@\s]*@", rf"\1{REDACTED}@", url)
    netloc, query, fragment = p.netloc, p.query, p.fragment
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rpartition('@')[2]}"
    if query:
        parts = []
        for part in query.split("&"):
            name, sep, value = part.partition("=")
            parts.append(f"{name}={REDACTED}" if sep else (REDACTED if name else ""))
        query = "&".join(parts)
    if fragment:
        fragment = REDACTED
    if (netloc, query, fragment) == (p.netloc, p.query, p.fragment):
        return url
    return urlunsplit((p.scheme, netloc, p.path, query, fragment))


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """``url`` without its query, and the query as a dict: SDK clients join paths onto a
    ``base_url`` and would glue ``/chat/completions`` after ``?api_key=...``; they take the
    query as ``default_query`` instead."""
    try:
        p = urlsplit(url)
    except ValueError:
        return url, {}
    if not p.query:
        return url, {}
    query = {}
    for part in p.query.split("&"):
        name, _, value = part.partition("=")
        if name:
            query[unquote(name)] = unquote(value)
    return urlunsplit((p.scheme, p.netloc, p.path, "", p.fragment)), query


def url_secrets(url: str | None) -> list[str]:
    """The credentials inside ``url`` (user, password, query values) as they may appear in a
    server's answer: raw, percent-decoded, and ``user:password`` base64-encoded (Basic)."""
    if not url or "://" not in url:
        return []
    try:
        p = urlsplit(url)
    except ValueError:
        return []
    out: list[str] = []
    if "@" in p.netloc:
        userinfo = p.netloc.rpartition("@")[0]
        user, _, password = userinfo.partition(":")
        plain = f"{unquote(user)}:{unquote(password)}"
        # the user name alone is no secret (and "user" or "admin" would blank out texts)
        out += [userinfo, plain, unquote(password), base64.b64encode(plain.encode()).decode()]
    _, query = split_url(url)
    out += list(query.values()) + [quote(v, safe="") for v in query.values()]
    if p.fragment:
        out.append(p.fragment)
    return [s for s in dict.fromkeys(out) if len(s) >= 4]


def redact_urls_in(text: str) -> str:
    """Every URL inside free text passed through :func:`redact_url`."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def redact_config(obj: Any) -> Any:
    """A copy of a config (or manifest, or settings) whose URL values hold no credentials.

    Only strings that are a URL as a whole are rewritten (``base_url``, a corpus path on a
    server): prose such as codebook instructions keeps its exact text, since it enters the
    prompt hash. Mappings come back as plain dicts, sequences as lists.
    """
    if isinstance(obj, Mapping):
        return {k: redact_config(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [redact_config(v) for v in obj]
    if isinstance(obj, str) and _WHOLE_URL.match(obj.strip()):
        return redact_url(obj)
    return obj


# ---------------------------------------------------------------------------- server texts

def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of environment variables named like a credential (``OPENAI_API_KEY``,
    ``HF_TOKEN`` ...), long enough to be one: what a log line must never show."""
    env = os.environ if environ is None else environ
    return [v for k, v in env.items() if SECRET_KEY.search(k) and v and len(v) >= 8]


class Redactor:
    """Replaces secrets in any text that might be recorded (errors, raw answers, logs).

    Known secrets (the API key, a base_url's credentials: :func:`url_secrets`) go, also
    base64- and percent-encoded; then whatever has the shape of one: an ``Authorization``
    scheme and credential (``Basic ...``, ``Bearer ...``), a key header or JSON field
    (``x-api-key: ...``, ``"api_key": "..."``), URL userinfo and query values, provider keys
    (``sk-...``).
    """

    def __init__(self, secrets: Sequence[str | None] = (), urls: Iterable[str | None] = ()):
        known = [s for s in secrets if s and len(s) >= 4]
        for u in urls:
            known += url_secrets(u)
        variants = []
        for s in known:
            variants += [s, quote(s, safe=""), base64.b64encode(s.encode()).decode().rstrip("=")]
        # longest first, so a secret inside another is not left half-replaced
        self.secrets = sorted({v for v in variants if len(v) >= 4}, key=len, reverse=True)

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        for s in self.secrets:
            text = text.replace(s, REDACTED_TEXT)
        return redact_text(text)


def redact_text(text: str) -> str:
    """Remove credential-shaped strings from free text (see :class:`Redactor`)."""
    if not text:
        return text
    text = redact_urls_in(text)
    text = _AUTH_SCHEME.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED_TEXT}", text)
    text = _KEY_FIELD.sub(lambda m: f"{m.group(1)}{REDACTED_TEXT}", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{REDACTED_TEXT}", text)
    return _PROVIDER_KEY.sub(REDACTED_TEXT, text)


__all__ = ["KEY_ENV", "REDACTED", "REDACTED_TEXT", "Redactor", "SECRET_KEY", "env_secrets",
           "find_secret_options", "redact_config", "redact_text", "redact_url",
           "redact_urls_in", "secret_option_message", "split_url", "url_secrets"]
