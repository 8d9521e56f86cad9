"""textgauge: validated measurement instruments for social-science text classification.

The library is pure Python (no Snakemake imports); the workflow's scripts call into it.
"""

__version__ = "0.1.0"
