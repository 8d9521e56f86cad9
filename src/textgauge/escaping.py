"""Escaping for the LaTeX and Markdown outputs (methods.tex, methods.md, codebook.md, plan.md,
the replication README).

Names, labels, strata and free texts come from the user (or from a replication package
someone else made). Written raw, ``\\`` or ``^`` break a LaTeX document, and ``<img src=x
onerror=...>`` or ``*bold*`` in a Markdown file becomes live HTML or formatting when the file
is shown on a web page. Each function escapes in ONE pass over the characters (a table
lookup per character), so a replacement is never escaped again: the backslash's
``\\textbackslash{}`` keeps its braces.
"""

from __future__ import annotations

import re

#: LaTeX: every special character and its text-mode form
LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "^": r"\^{}",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "%": r"\%",
}
_LATEX_RE = re.compile("|".join(re.escape(c) for c in LATEX_SPECIALS))

#: Markdown: raw HTML becomes entities (any renderer shows them literally) ...
MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: ... and inline control characters get a backslash (CommonMark escapes any punctuation)
MD_INLINE = "\\`*[]|~"
_MD_RE = re.compile(r"[&<>\\`*\[\]|~]|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
#: a line that starts a heading, list, quote, rule or setext underline
_MD_LINE_START = re.compile(r"^(\s*)([#+\-=]|\d+[.)])", re.MULTILINE)


def latex_escape(text: str) -> str:
    """``text`` as LaTeX text: ``\\ { } $ & # ^ _ ~ %`` each in its text-mode form."""
    return _LATEX_RE.sub(lambda m: LATEX_SPECIALS[m.group(0)], str(text))


def _md_char(m: re.Match[str]) -> str:
    c = m.group(0)
    return MD_ENTITIES.get(c) or "\\" + c


def md_escape(text: str) -> str:
    """``text`` shown literally in Markdown: ``< > &`` as entities; ``\\ ` * [ ] | ~`` and a
    ``_`` that could open or close emphasis (not one inside a word such as ``coder_a``)
    with a backslash; a line that would start a heading, list or quote (``#``, ``-``, ``+``,
    ``=``, ``1.``) with its marker escaped."""
    out = _MD_RE.sub(_md_char, str(text))
    return _MD_LINE_START.sub(lambda m: m.group(1) + "\\" + m.group(2)
                              if not m.group(2)[0].isdigit()
                              else m.group(1) + m.group(2)[:-1] + "\\" + m.group(2)[-1], out)
