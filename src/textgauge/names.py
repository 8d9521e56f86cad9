"""The one rule for the names of machine and human coders.

Model names and coder names become file names (``results/predictions/<model>/``,
``results/gold/sheets/<coder>.csv``), Snakemake wildcard values and spreadsheet headers (the
adjudication sheet has a column per coder). A name like ``../../x`` would write outside the
results folder, ``a/b`` would make a folder, and ``=HYPERLINK(...)`` would be a live formula
in a header. So every name must match :data:`NAME_PATTERN`: it starts with a letter or digit
(never a formula start, never a dot) and then has letters, digits, ``_`` and ``-`` only (no
path separator, no dot, so it never clashes with the ``.gold.parquet``-style suffixes), at
most 64 characters.

The schema (workflow/schemas/config.schema.yaml, ``$defs/name``) holds the same pattern; this
module checks names that come in another way (a long-format codes file's coder column, a
replication package's ``replication.json``) and gives the config's names a readable message.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from textgauge.errors import ConfigError, TextgaugeError

#: the name rule (the same string as ``$defs/name/pattern`` in the config schema)
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN)
#: the rule in words, for messages
NAME_RULE = ("a name starts with a letter or digit and has only letters, digits, '_' and '-' "
             "(at most 64 characters: no spaces, dots, slashes or formula signs)")


def is_valid_name(name: Any) -> bool:
    """Whether ``name`` is a string that follows the name rule."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


#: what to do about a bad name in the config
RENAME = ("Names become file names and spreadsheet headers, so rename it (e.g. coder_a, "
          "gpt4o-mini).")


def check_name(name: Any, where: str, error: type[TextgaugeError] = ConfigError,
               advice: str = RENAME) -> str:
    """``name`` if it follows the rule; else ``error`` naming ``where`` (option, file, row)
    and ending with ``advice`` (what to do)."""
    if not is_valid_name(name):
        raise error(f"{where}: {name!r} is not a valid name: {NAME_RULE}. {advice}")
    return name


def check_names(names: Iterable[Any], where: str,
                error: type[TextgaugeError] = ConfigError) -> None:
    """Every name of ``names`` (see :func:`check_name`)."""
    for n in names:
        check_name(n, where, error)


def check_config_names(config: Mapping[str, Any]) -> None:
    """The names of a config: models, gold.coders, gold.lead_coder, the keys of gold.codes
    and gold.development_codes. A ConfigError names the option and the value."""
    check_names(config.get("models") or {}, "models (a model name)")
    gold = config.get("gold") or {}
    if not isinstance(gold, Mapping):  # an options.Gold already built
        gold = {k: getattr(gold, k, None) for k in ("coders", "lead_coder", "codes",
                                                     "development_codes")}
    check_names(gold.get("coders") or [], "gold.coders")
    if gold.get("lead_coder") is not None:
        check_name(gold["lead_coder"], "gold.lead_coder")
    for option in ("codes", "development_codes"):
        check_names(gold.get(option) or {}, f"gold.{option} (a coder name)")
