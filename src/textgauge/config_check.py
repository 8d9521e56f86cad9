"""The config checked against workflow/schemas/config.schema.yaml, in one paragraph.

Snakemake's own ``validate`` reports a schema error with a dump of the schema node (a page
of YAML); a researcher needs the option, the value, what is allowed and what to do. The
workflow (workflow/rules/common.smk) turns a schema error into :func:`schema_problem`'s
paragraph; :func:`validate_config` is the same check for library callers and tests (names
first, :mod:`textgauge.names`, then the schema).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from textgauge.errors import ConfigError

#: the schema the workflow validates config.yaml against
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def _option(path: Any) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "the top level"


def schema_problem(config: Mapping[str, Any], schema_path: str | Path = SCHEMA_FILE) -> str | None:
    """One paragraph for the first (most relevant) schema error of ``config``, or None."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(config)))
    if error is None:
        return None
    described = error.schema.get("description") if isinstance(error.schema, Mapping) else None
    what = f" ({described.rstrip('.')})" if described else ""
    option = _option(error.absolute_path)
    if error.validator == "additionalProperties":
        return (f"config.yaml, {option}: {error.message}. Remove or correct that key "
                "(config/README.md lists every option).")
    return (f"config.yaml, option {option}: {error.message}{what}. Fix that value and run "
            "again (config/README.md explains each option).")


def validate_config(config: Mapping[str, Any], schema_path: str | Path = SCHEMA_FILE) -> None:
    """Names (:func:`textgauge.names.check_config_names`), the typed options (unknown and
    secret keys, with a did-you-mean: :meth:`textgauge.options.Config.from_dict`), then the
    schema (types, allowed values); a ConfigError with one paragraph naming the option on
    the first problem."""
    from textgauge.names import check_config_names
    from textgauge.options import Config

    check_config_names(config)
    Config.from_dict(config)
    problem = schema_problem(config, schema_path)
    if problem:
        raise ConfigError(problem)
