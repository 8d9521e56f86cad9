"""Token counters for the cost plan: tiktoken (OpenAI), a Hugging Face tokenizer (open models,
exact with its chat template), or a characters-per-token approximation (Anthropic publishes no
tokenizer; a missing tiktoken BPE file offline), each saying how it counted.

Chat formatting overhead follows OpenAI's published rule of thumb: 3 tokens per message plus
the role, and 3 tokens to prime the reply. A Hugging Face tokenizer with a chat template counts
the rendered template instead (exact for local engines).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from textgauge.errors import ConfigError

TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMING = 3


class TokenCounter:
    """Counts tokens of a string; ``description`` says how (goes into the plan).

    ``chat``, when given, counts a whole chat exactly as the model sees it:
    ``chat(messages, add_generation_prompt) -> tokens`` (a Hugging Face chat template); the
    plan then uses it instead of the per-message rule of thumb.
    """

    def __init__(self, fn: Any, description: str, exact: bool = True, chat: Any = None):
        self._fn = fn
        self.description = description
        self.exact = exact
        self.chat = chat

    def __call__(self, text: str) -> int:
        return self._fn(text)


def approx_counter(chars_per_token: float, why: str) -> TokenCounter:
    return TokenCounter(lambda s: math.ceil(len(s) / chars_per_token) if s else 0,
                        f"approximation: characters / {chars_per_token:g} ({why})", exact=False)


def tiktoken_counter(model: str, fallback: str = "o200k_base") -> TokenCounter:
    """tiktoken encoding for ``model`` (``fallback`` for unknown names); characters / 4 when
    tiktoken or its BPE file is not available (offline without ``TIKTOKEN_CACHE_DIR``)."""
    try:
        import tiktoken
    except ImportError:
        return approx_counter(4.0, "tiktoken is not installed")
    try:
        name = tiktoken.encoding_name_for_model(model)
    except KeyError:
        name = fallback
    try:
        enc = tiktoken.get_encoding(name)
    except Exception as exc:  # noqa: BLE001 - offline download failure has many types
        return approx_counter(4.0, f"tiktoken could not load {name}: {type(exc).__name__}; "
                                   "set TIKTOKEN_CACHE_DIR to a folder with the BPE file")
    return encoding_counter(enc)


def encoding_counter(enc: Any) -> TokenCounter:
    """A counter from a tiktoken ``Encoding`` (or anything with ``encode``)."""
    name = getattr(enc, "name", type(enc).__name__)
    try:
        enc.encode("x", disallowed_special=())
        return TokenCounter(lambda s: len(enc.encode(s, disallowed_special=())),
                            f"tiktoken {name}")
    except TypeError:
        return TokenCounter(lambda s: len(enc.encode(s, add_special_tokens=False)),
                            f"tokenizer {name}")


def hf_counter(path: str) -> TokenCounter:
    """A Hugging Face tokenizer (folder or hub name) via ``transformers.AutoTokenizer``."""
    try:
        from transformers import AutoTokenizer
    except ImportError as exc:
        raise ConfigError("Counting tokens for an open model needs `transformers` "
                          "(pip install transformers).") from exc
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except Exception as exc:  # noqa: BLE001 - reported in plain words
        raise ConfigError(f"Could not load a tokenizer from {path!r} ({type(exc).__name__}: "
                          f"{exc}). Give a local tokenizer folder.") from exc
    def encode(s: str) -> int:
        return len(tok.encode(s, add_special_tokens=False))

    chat = None
    if getattr(tok, "chat_template", None):
        # the rendered chat template, tokenized as local engines feed it (transformers and
        # vLLM tokenize the rendered string without adding special tokens again)
        def chat(messages: list[dict[str, str]], add_generation_prompt: bool) -> int:
            return encode(tok.apply_chat_template(messages, tokenize=False,
                                                  add_generation_prompt=add_generation_prompt))

    how = " with its chat template" if chat else ""
    return TokenCounter(encode, f"Hugging Face tokenizer {path}{how}", chat=chat)


def make_counter(model: str, provider: str, tokenizer: Any = None) -> TokenCounter:
    if isinstance(tokenizer, TokenCounter):
        return tokenizer
    if tokenizer is not None and not isinstance(tokenizer, str):
        return encoding_counter(tokenizer)
    if isinstance(tokenizer, str):
        if tokenizer.startswith("approx"):
            return approx_counter(float(tokenizer.split(":")[1]) if ":" in tokenizer else 4.0,
                                  "chosen")
        if tokenizer.startswith("tiktoken:"):
            return tiktoken_counter(tokenizer.split(":", 1)[1], tokenizer.split(":", 1)[1])
        return hf_counter(tokenizer)
    if provider == "openai":
        return tiktoken_counter(model)
    if provider == "anthropic":
        return approx_counter(3.5, "Anthropic publishes no tokenizer")
    return approx_counter(4.0, "no tokenizer given: pass --tokenizer PATH for an open model")


def output_tokens(labels: Sequence[str], structured: str, count: TokenCounter) -> int:
    if structured == "json_schema":
        return max(count('{"label":"' + lab + '"}') for lab in labels) + 1
    if structured == "choice":
        return max(count(lab) for lab in labels) + 1
    return max(count(lab) for lab in labels) + 4  # free text: some slack


def message_tokens(msg: dict[str, str], count: TokenCounter) -> int:
    return TOKENS_PER_MESSAGE + count(msg.get("role", "")) + count(msg.get("content") or "")
