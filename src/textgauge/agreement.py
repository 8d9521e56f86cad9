"""Agreement and validation statistics for textgauge (the public face of :mod:`textgauge.stats`).

Why: validating a text classifier as a measurement instrument means reporting chance-corrected
agreement with human coders *with* its uncertainty, classification metrics against a reference,
and a decision that respects the confidence interval. ``from textgauge.agreement import ...``
gives that API; it re-exports :mod:`textgauge.stats` (see there for the modules).
The library never imports Snakemake.
"""

from __future__ import annotations

from textgauge.stats import *  # noqa: F403
from textgauge.stats import __all__  # noqa: F401
