"""Steps: the only code that reads and writes the workflow's files.

``steps/X.py`` mirrors ``workflow/rules/X.smk``. A step is a function with keyword-only
arguments named exactly as its rule's ``input``, ``output``, ``params`` and wildcards, so a
reader can go from a rule to its code (and back) by name, and a renamed option breaks loudly
(:func:`run` refuses a name the step does not take) instead of being ignored.

A rule's script is one line: ``run(step_function, snakemake, "what the step does")``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from textgauge.errors import ConfigError
from textgauge.logs import friendly_errors


def rule_arguments(smk: Any) -> dict[str, Any]:
    """A Snakemake job's named input, output, params and wildcards as one keyword dict.

    An input function that has nothing to give returns ``[]``: it arrives as ``None``, so a
    step tests optional files with ``if path:`` whatever their kind.
    """
    kwargs: dict[str, Any] = {}
    parts = (("input", smk.input), ("output", smk.output), ("params", smk.params),
             ("wildcards", smk.wildcards))
    for part, values in parts:
        for name, value in values.items():
            if name in kwargs:
                raise ConfigError(f"rule {smk.rule}: the name {name!r} is used twice ({part} "
                                  "and another section); give it one meaning.")
            if part == "input" and isinstance(value, list) and not value:
                value = None
            kwargs[name] = value
    return kwargs


def run(step: Callable[..., Any], smk: Any, doing: str) -> Any:
    """Call ``step`` with the job's arguments, logging to the rule's log file.

    ``doing`` is formatted with the wildcards ("evaluate {model}") and completes the sentence
    "textgauge could not ..." when a user error stops the step.
    """
    kwargs = rule_arguments(smk)
    log_file = smk.log[0] if smk.log else None
    with friendly_errors(doing.format(**dict(smk.wildcards.items())), log_file):
        params = inspect.signature(step).parameters
        if "threads" in params:
            kwargs["threads"] = smk.threads
        unknown = sorted(set(kwargs) - set(params))
        if unknown and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            raise TypeError(f"rule {smk.rule} passes {unknown}, which step "
                            f"{step.__module__}.{step.__name__} does not take")
        return step(**kwargs)
