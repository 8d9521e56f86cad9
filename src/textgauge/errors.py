"""User-facing errors.

A researcher who feeds a bad corpus, codebook or coding sheet must read one paragraph that
says which file, row or column is wrong and what to do, not a traceback. Library code
raises these; scripts and the CLI turn them into that paragraph (see ``textgauge.logs``).
"""

from __future__ import annotations


class TextgaugeError(Exception):
    """An error caused by the user's input or configuration, explained in plain words."""


class InputDataError(TextgaugeError):
    """A corpus, coding sheet or labels file that cannot be used as it is."""


class ConfigError(TextgaugeError):
    """A configuration value that is missing, inconsistent or unsupported."""


class BackendError(TextgaugeError):
    """A model backend that cannot run (missing package, refused by local-only mode, ...)."""


def format_rows(rows: list[int] | list[str], limit: int = 10) -> str:
    """Render row numbers/ids for a message: the first ``limit`` and a count of the rest."""
    shown = ", ".join(str(r) for r in rows[:limit])
    rest = len(rows) - limit
    return shown + (f" and {rest} more" if rest > 0 else "")
