"""textgauge.inference.prompting: an ordinal codebook's scale in the prompt, under every
label order the positional audit uses."""

from __future__ import annotations

from pathlib import Path

import pytest

from textgauge.inference.prompting import LABEL_ORDERS, PromptTemplate, scale_sentence

REPO = Path(__file__).resolve().parents[2]
SCALE = {"strongly_oppose": "Rejects the policy outright.", "oppose": "Leans against it.",
         "neutral": "Neither for nor against.", "support": "Leans in favour.",
         "strongly_support": "Wholeheartedly in favour."}


def _template(scale: str) -> PromptTemplate:
    return PromptTemplate.from_file(REPO / "prompts" / "zeroshot.jinja", SCALE,
                                    "Code the speaker's own stance.", scale=scale)


def test_ordinal_prompt_names_the_scale_in_order():
    system = _template("ordinal").render("We must do this now.")[0]["content"]
    assert ("ordered scale, from strongly_oppose (lowest) to strongly_support (highest): "
            "strongly_oppose < oppose < neutral < support < strongly_support") in system
    assert "Code the speaker's own stance." in system
    nominal = _template("nominal").render("We must do this now.")[0]["content"]
    assert "ordered scale" not in nominal
    assert scale_sentence(list(SCALE), "nominal") == ""


@pytest.mark.parametrize("order", LABEL_ORDERS)
def test_label_orders_keep_the_scale(order):
    # the positional audit shows the scale reversed/rotated: the listed order changes, the
    # sentence naming the scale does not (it tests position, not meaning)
    tpl = _template("ordinal")
    req = tpl.requests([("t1", "text one"), ("t2", "text two")], order=order, seed=3)
    for r in req:
        system = r.messages[0]["content"]
        assert "from strongly_oppose (lowest) to strongly_support (highest)" in system
        assert sorted(r.labels) == sorted(SCALE)
    if order == "reversed":
        assert list(req[0].labels) == list(SCALE)[::-1]


def test_scale_changes_the_prompt_hash_only_when_ordinal():
    nominal = _template("nominal")
    plain = PromptTemplate.from_file(REPO / "prompts" / "zeroshot.jinja", SCALE,
                                     "Code the speaker's own stance.")
    assert nominal.hash() == plain.hash()  # nominal prompts keep their hash
    assert _template("ordinal").hash() != nominal.hash()
