"""Machine-coder backends behind one interface (see :mod:`textgauge.inference.backends.base`)."""

from textgauge.inference.backends.base import (
    STATUS_FAILED,
    STATUS_INVALID,
    STATUS_OK,
    Prediction,
    PromptBackend,
    PromptRequest,
)

__all__ = [
    "STATUS_FAILED",
    "STATUS_INVALID",
    "STATUS_OK",
    "Prediction",
    "PromptBackend",
    "PromptRequest",
]
