"""The one interface every machine coder speaks.

Every backend (transformers, vLLM, OpenAI-compatible servers, Anthropic, batch APIs) turns
prompt requests into :class:`Prediction` records. Results are *reported* through a callback
as soon as each item finishes, so that the caller can checkpoint them (append-only JSONL)
and a killed run loses at most one batch.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

STATUS_OK = "ok"
STATUS_INVALID = "invalid"  # an answer outside the label set, after the allowed re-asks
STATUS_FAILED = "failed"  # a request that kept failing (network, 5xx, timeout ...)
STATUSES = (STATUS_OK, STATUS_INVALID, STATUS_FAILED)


@dataclass(frozen=True)
class PromptRequest:
    """One text to classify, already rendered into chat messages.

    ``messages`` is a chat list (``[{"role": "system", ...}, {"role": "user", ...}]``);
    ``labels`` is the allowed answer set in the order the prompt shows it.
    """

    id: str
    messages: list[dict[str, str]]
    labels: list[str]
    #: the text as placed in the last message (``None`` when unknown): lets a backend shorten
    #: only the text to fit its context, keeping codebook, instructions and answer cue
    text: str | None = None


@dataclass
class Prediction:
    """One machine coder's answer for one text (a row of the predictions contract)."""

    id: str
    label: str | None
    confidence: float | None = None
    probs: dict[str, float] | None = None
    status: str = STATUS_OK
    raw: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    #: the model snapshot (and system_fingerprint) an API says answered; empty for local models
    served: dict[str, str] = field(default_factory=dict)
    #: the text was shortened (with a marker) so that the prompt fits the model's context
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prediction:
        return cls(**{k: d.get(k) for k in cls.__dataclass_fields__ if k in d})


ResultCallback = Callable[[Sequence[Prediction]], None]


class PromptBackend(abc.ABC):
    """A prompted classifier. Subclasses implement :meth:`classify`.

    ``classify`` must call ``on_results`` with every finished prediction (in batches of any
    size) and must not drop any request: a request that cannot be answered is reported with
    status ``invalid`` or ``failed`` and the reason.
    """

    #: short name written to the manifest ("transformers", "vllm", "openai", ...)
    name: str = "base"
    #: True when requests leave this machine (refused in local-only mode)
    external: bool = False

    @abc.abstractmethod
    def classify(self, requests: Sequence[PromptRequest], on_results: ResultCallback) -> None:
        """Classify ``requests``, reporting predictions through ``on_results``."""

    def describe(self) -> dict[str, Any]:
        """Model id, revision and settings for the manifest (no secrets)."""
        return {"backend": self.name}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release engines, servers or sessions."""


def probs_to_prediction(item_id: str, probs: dict[str, float], raw: str = "") -> Prediction:
    """Turn per-label probabilities into a prediction: argmax label, its probability as confidence."""
    total = sum(probs.values())
    if total <= 0:
        return Prediction(id=item_id, label=None, status=STATUS_INVALID, raw=raw,
                          error="all label probabilities are zero")
    norm = {k: v / total for k, v in probs.items()}
    label = max(norm, key=norm.__getitem__)
    return Prediction(id=item_id, label=label, confidence=norm[label], probs=norm, raw=raw)
