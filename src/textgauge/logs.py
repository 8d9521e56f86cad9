"""Logging for rules and the CLI, and the one-paragraph error a researcher sees.

A rule's log file gets everything; the terminal gets the same lines. A
:class:`~textgauge.errors.TextgaugeError` (bad input or config) ends the step with its
message, not a traceback; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from textgauge.errors import TextgaugeError
from textgauge.secrets import Redactor, env_secrets

log = logging.getLogger("textgauge")


class RedactingFormatter(logging.Formatter):
    """A formatter whose lines (tracebacks included) hold no credential: the values of
    key-like environment variables, URL userinfo and query values, Basic/Bearer tokens
    (:class:`textgauge.secrets.Redactor`)."""

    def __init__(self, fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.redact = Redactor(env_secrets())

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record)) or ""


def setup_logging(log_file: str | Path | None = None, level: int = logging.INFO) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w", encoding="utf-8"))
    formatter = RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for h in handlers:
        h.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=handlers, force=True)
    for noisy in ("httpx", "httpx2", "urllib3", "filelock", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def explain(exc: TextgaugeError, step: str = "") -> str:
    head = f"textgauge could not {step}:" if step else "textgauge stopped:"
    body = textwrap.fill(str(exc), width=96, break_long_words=False, break_on_hyphens=False)
    return f"\n{head}\n{body}\n"


@contextlib.contextmanager
def friendly_errors(step: str = "", log_file: str | Path | None = None) -> Iterator[None]:
    """Run a step; turn user errors into one paragraph (log + stderr) and exit status 1."""
    setup_logging(log_file)
    try:
        yield
    except TextgaugeError as exc:
        msg = explain(exc, step)
        log.error(msg)
        sys.exit(1)
