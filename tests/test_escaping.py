"""LaTeX and Markdown outputs show user-supplied names, labels and texts literally."""

from __future__ import annotations

import re

import pytest

from textgauge.data.coding import codebook_markdown
from textgauge.escaping import LATEX_SPECIALS, latex_escape, md_escape
from textgauge.reporting.report import latex_snippet

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize(("raw", "tex"), [
    ("\\", r"\textbackslash{}"),
    ("{", r"\{"), ("}", r"\}"), ("$", r"\$"), ("&", r"\&"), ("#", r"\#"),
    ("^", r"\^{}"), ("_", r"\_"), ("~", r"\textasciitilde{}"), ("%", r"\%"),
    ("a\\b{c}", r"a\textbackslash{}b\{c\}"),  # the backslash's braces are not escaped again
    ("50% of $x^2_i$ ~ #1 & more", r"50\% of \$x\^{}2\_i\$ \textasciitilde{} \#1 \& more"),
])
def test_latex_escape_every_special_character_once(raw, tex):
    assert latex_escape(raw) == tex


def test_latex_escape_leaves_no_bare_special_character():
    text = "".join(LATEX_SPECIALS) * 3 + " plain words 0.71"
    out = latex_escape(text)
    # remove every escape form: no special character may remain
    rest = out
    for form in sorted(LATEX_SPECIALS.values(), key=len, reverse=True):
        rest = rest.replace(form, "")
    assert not set(rest) & set(LATEX_SPECIALS), rest
    assert out.endswith(" plain words 0.71")


def test_latex_snippet_escapes_the_methods_text():
    tex = latex_snippet("Coder a\\b got kappa ~ 0.7 (50%) for ^x_y")
    assert r"a\textbackslash{}b" in tex and r"\textasciitilde{}" in tex
    assert r"50\%" in tex and r"\^{}x\_y" in tex
    assert "\\textbackslash\\{\\}" not in tex  # the old double escape


@pytest.mark.parametrize(("raw", "md"), [
    (HOSTILE, "&lt;img src=x onerror=alert(1)&gt;"),
    ("*bold*", r"\*bold\*"),
    ("_em_", r"\_em\_"),
    ("coder_a", "coder_a"),  # an underscore inside a word is not emphasis: kept readable
    ("[link](http://x)", r"\[link\](http://x)"),
    ("a | b", r"a \| b"),
    ("`code`", r"\`code\`"),
    ("AT&T", "AT&amp;T"),
    ("&lt;", "&amp;lt;"),  # an entity typed by the user is shown as typed
    ("# heading", r"\# heading"),
    ("- item\n+ item\n1. item", "\\- item\n\\+ item\n1\\. item"),
    ("back\\slash", "back\\\\slash"),
])
def test_md_escape(raw, md):
    assert md_escape(raw) == md


def test_codebook_markdown_shows_hostile_labels_literally():
    md = codebook_markdown({HOSTILE: "*not bold* <b>x</b>", "plain": "fine"},
                           "Read <script>alert(1)</script> first")
    assert "<img" not in md and "<script" not in md and "<b>" not in md
    assert "## &lt;img src=x onerror=alert(1)&gt;" in md
    assert r"\*not bold\*" in md and "## plain" in md
    assert not re.search(r"<[a-z]", md)
