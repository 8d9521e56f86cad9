"""Render codebook prompts from jinja2 templates.

A template defines two blocks, ``system`` (the shared prefix: codebook, instructions,
few-shot examples) and ``user`` (the text). Keeping the prefix byte-identical across texts
and the text last is what lets vLLM, OpenAI and Anthropic cache the prefix. The label order
shown to the model can be fixed, reversed or rotated per text (seeded): the positional-bias
audit re-runs a coder under other orders.
"""

from __future__ import annotations

import functools
import hashlib
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from textgauge.errors import ConfigError
from textgauge.inference.backends.base import PromptRequest

LABEL_ORDERS = ("fixed", "reversed", "rotated", "shuffled")


#: the variables every template gets (named in the message for an undefined variable)
TEMPLATE_VARIABLES = ("labels (name, definition)", "instructions", "examples (text, label)",
                      "text", "scale (ordinal, order, lowest, highest)")


def scale_sentence(labels: Sequence[str], scale: str = "nominal") -> str:
    """The sentence that tells a coder the labels are an ordered scale ("" for nominal).

    It names the scale in codebook order whatever order the labels are listed in, so an
    ordered scale shown reversed (the positional audit) is still the same scale: the audit
    then tests the position of a label, not its meaning.
    """
    if scale != "ordinal":
        return ""
    labels = list(labels)
    return (f"The categories form an ordered scale, from {labels[0]} (lowest) to "
            f"{labels[-1]} (highest): {' < '.join(labels)}. Choose the point of the scale "
            "that fits the text best.")


@functools.lru_cache(maxsize=32)
def _compile(source: str, name: str = "prompt") -> jinja2.Template:
    """The template compiled in jinja2's immutable sandbox (StrictUndefined kept).

    A template may come from a replication package someone else posted: the sandbox keeps it
    from reaching Python internals (``''.__class__.__mro__``) and so from running code on the
    reader's machine. A syntax error becomes a ConfigError naming the file and line.
    """
    env = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined,
                                        keep_trailing_newline=False)
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(
            f"Prompt template {name} has a jinja2 syntax error on line {exc.lineno}: "
            f"{(exc.message or '').rstrip('.')}. Fix that line (every {{% block %}} needs its {{% endblock %}} "
            "and every {{ needs its }}); see prompts/zeroshot.jinja for a working template."
        ) from None


def _template_line(tpl: jinja2.Template, exc: BaseException) -> int | None:
    """The template line a rendering error happened on (from the compiled code's frames)."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tpl.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


def _render_error(name: str, tpl: jinja2.Template, exc: jinja2.TemplateError) -> ConfigError:
    """One paragraph for an error raised while rendering: sandbox refusal or undefined name."""
    line = _template_line(tpl, exc)
    where = f"Prompt template {name}" + (f", line {line}," if line else "")
    if isinstance(exc, SecurityError):
        return ConfigError(
            f"{where} was refused by the template sandbox: {str(exc).rstrip('.')}. Prompt templates may only "
            "use the variables they are given, never Python internals (attributes starting "
            "with an underscore, methods that change data). If this template came with a "
            "replication package, do not use it: it tries to run code on your machine.")
    if isinstance(exc, jinja2.UndefinedError):
        return ConfigError(
            f"{where} uses a variable that is not defined ({exc.message}). A template gets "
            f"only these variables: {', '.join(TEMPLATE_VARIABLES)}. Correct the name in the "
            "template.")
    return ConfigError(f"{where} could not be rendered: {exc}. Correct the template.")


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded template plus what it needs to render (codebook, instructions, examples)."""

    source: str
    codebook: Mapping[str, str]
    instructions: str = ""
    examples: tuple[tuple[str, str], ...] = ()
    name: str = "prompt"
    #: codebook.scale: for "ordinal" the codebook order is a scale, and the prompt says so
    scale: str = "nominal"

    @classmethod
    def from_file(cls, path: str | Path, codebook: Mapping[str, str], instructions: str = "",
                  examples: Sequence[tuple[str, str]] = (),
                  scale: str = "nominal") -> PromptTemplate:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"Prompt template {p} does not exist. Point the model's `prompt` "
                              "option at a jinja2 file with `system` and `user` blocks "
                              "(see prompts/zeroshot.jinja).")
        try:
            source = p.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"Prompt template {p} is not UTF-8 text (byte {exc.start} cannot be decoded). "
                "Save it as UTF-8 in your editor (or convert it: iconv -f latin1 -t utf-8) "
                "and run again.") from None
        return cls(source, dict(codebook), instructions, tuple(examples), str(p), scale)

    def _template(self) -> jinja2.Template:
        # compiled once per template (about 5 ms each time otherwise: minutes on 50,000 texts)
        return _compile(self.source, self.name)

    def label_order(self, order: str = "fixed", item_id: str = "", seed: int = 0) -> list[str]:
        """The label order shown for one text. ``rotated`` starts at a per-text seeded offset."""
        labels = list(self.codebook)
        if order == "fixed":
            return labels
        if order == "reversed":
            return labels[::-1]
        rng = random.Random(f"{seed}:{item_id}")
        if order == "rotated":
            k = rng.randrange(len(labels))
            return labels[k:] + labels[:k]
        if order == "shuffled":
            rng.shuffle(labels)
            return labels
        raise ConfigError(f"label_order must be one of {', '.join(LABEL_ORDERS)}, not {order!r}.")

    def render(self, text: str, labels: Sequence[str] | None = None) -> list[dict[str, str]]:
        """Chat messages for one text: the system prefix, then the text."""
        labels = list(labels or self.codebook)
        tpl = self._template()
        order = list(self.codebook)
        ctx = {
            "labels": [{"name": n, "definition": self.codebook[n]} for n in labels],
            "instructions": self.shown_instructions(),
            # the scale in codebook order, for templates that word it themselves
            "scale": {"ordinal": self.scale == "ordinal", "order": order,
                      "lowest": order[0], "highest": order[-1]},
            "examples": [{"text": t, "label": lab} for t, lab in self.examples],
            "text": text,
        }
        try:
            system = "".join(tpl.blocks["system"](tpl.new_context(ctx))).strip()
            user = "".join(tpl.blocks["user"](tpl.new_context(ctx))).strip()
        except KeyError as exc:
            raise ConfigError(f"Prompt template {self.name} needs a block named {exc} "
                              "({% block system %}...{% endblock %} and {% block user %}..."
                              "{% endblock %}, see prompts/zeroshot.jinja).") from None
        except jinja2.TemplateError as exc:
            raise _render_error(self.name, tpl, exc) from None
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]

    def shown_instructions(self) -> str:
        """The instructions the template shows: codebook.instructions, then for an ordinal
        scale :func:`scale_sentence` (so every template that shows the instructions shows
        the scale, in codebook order)."""
        extra = scale_sentence(list(self.codebook), self.scale)
        return "\n".join(s for s in (self.instructions.strip(), extra) if s) if extra \
            else self.instructions

    def requests(self, items: Sequence[tuple[str, str]], order: str = "fixed",
                 seed: int = 0) -> list[PromptRequest]:
        """Render ``(id, text)`` pairs into requests."""
        out = []
        for item_id, text in items:
            labels = self.label_order(order, str(item_id), seed)
            out.append(PromptRequest(str(item_id), self.render(text, labels), labels, text))
        return out

    def hash(self) -> str:
        """Hash of everything that shapes the prompt except the text (for the manifest)."""
        h = hashlib.sha256()
        h.update(self.source.encode())
        for k, v in self.codebook.items():
            h.update(f"\0{k}\0{v}".encode())
        h.update(self.instructions.encode())
        if self.scale != "nominal":  # nominal hashes stay what they were
            h.update(f"\0scale\0{self.scale}".encode())
        for t, lab in self.examples:
            h.update(f"\0{t}\0{lab}".encode())
        return h.hexdigest()[:16]


#: what replaces the end of a text shortened to fit a model's context (issue 14.5)
TRUNCATION_MARKER = " […]"


def text_span(request: PromptRequest) -> tuple[int, int] | None:
    """Where the text sits in the last message's content (start, end), or None when the
    request does not say its text or the text is not found there as rendered."""
    if not request.text or not request.messages:
        return None
    content = request.messages[-1]["content"]
    start = content.find(request.text)
    return None if start < 0 else (start, start + len(request.text))


def with_text(request: PromptRequest, text: str) -> PromptRequest:
    """The same request with its text replaced (in the last message only: codebook,
    instructions, examples and the answer cue after the text stay as they are)."""
    span = text_span(request)
    if span is None:
        raise ValueError(f"request {request.id}: its text is not in the last message")
    content = request.messages[-1]["content"]
    last = {**request.messages[-1], "content": content[:span[0]] + text + content[span[1]:]}
    return PromptRequest(request.id, [*request.messages[:-1], last], list(request.labels), text)


def shorten_to_fit(request: PromptRequest, count: Callable[[PromptRequest], int], budget: int,
                   encode: Callable[[str], list[int]], decode: Callable[[list[int]], str],
                   marker: str = TRUNCATION_MARKER) -> tuple[PromptRequest, bool]:
    """The request, its text shortened from the end (with ``marker``) until the whole
    prompt is at most ``budget`` tokens; ``(request, False)`` when it already fits.

    Cutting the prompt itself at the context limit drops the answer cue ("Category:") that
    comes after the text, and the model then answers another question; cutting only the
    text keeps the codebook, the instructions and the cue, and the marker tells the model
    (and a reader of the prompt) that the text goes on. ``count`` gives a request's prompt
    tokens as the model sees them (chat template included). Raises ValueError when even an
    empty text does not fit, or when the request's text cannot be located.
    """
    n = count(request)
    if n <= budget:
        return request, False
    if text_span(request) is None:
        raise ValueError(f"the prompt has {n} tokens, more than the {budget} allowed, and "
                         "its text cannot be located to shorten it")
    ids = encode(request.text or "")
    keep = max(0, len(ids) - (n - budget) - len(encode(marker)) - 1)
    for _ in range(12):  # each round removes at least the measured excess
        short = decode(ids[:keep]).rstrip("\ufffd").rstrip() + marker
        cand = with_text(request, short)
        n = count(cand)
        if n <= budget:
            return cand, True
        if keep == 0:
            break
        keep = max(0, keep - (n - budget) - 1)
    raise ValueError(f"the prompt does not fit in {budget} tokens even with its text "
                     f"shortened to {keep} tokens (codebook, instructions and examples alone "
                     "are too long): raise max_length or shorten the codebook")


def select_examples(pool: Sequence[tuple[str, str]], per_label: int, seed: int) -> list[tuple[str, str]]:
    """Pick ``per_label`` few-shot examples per label from ``(text, label)`` pairs, seeded."""
    rng = random.Random(seed)
    by_label: dict[str, list[tuple[str, str]]] = {}
    for t, lab in pool:
        by_label.setdefault(lab, []).append((t, lab))
    chosen: list[tuple[str, str]] = []
    for lab in sorted(by_label):
        items = by_label[lab]
        chosen.extend(rng.sample(items, min(per_label, len(items))))
    rng.shuffle(chosen)
    return chosen
