"""How a model runs (``limits``) and what the cost plan needs of it (``plan``): never a
rerun trigger, never part of the checkpoint fingerprint (DESIGN.md; textgauge.options holds
the settings that shape the answers). Re-exported by textgauge.options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from textgauge.options_base import Options


@dataclass(kw_only=True)
class PromptLimits(Options):
    """How a prompted coder runs; never a rerun trigger, never in the checkpoint fingerprint."""

    REMOVED: ClassVar[dict[str, str]] = {
        "batch_state": "is no longer used: every predict job (each shard, label order and "
                       "prompt variant) keeps its own batch state beside its checkpoint, under "
                       "results/predictions/MODEL/checkpoints/. Remove the option.",
        "batch_timeout": "is no longer used: no job waits for a batch to end. Use "
                         "limits.batch_wait (seconds a collecting job may wait, default 0) and "
                         "run snakemake again later to collect.",
    }
    inference_batch_size: int | None = None
    concurrency: int = 8
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    max_retries: int = 6
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    timeout: float = 60.0
    report_every: int = 32
    report_interval: float = 1.0
    max_fail_share: float = 0.05
    api_key_env: str | None = None
    prompt_cache_key: str | None = None
    cache_prefix: bool | None = None
    batch_api: bool = False
    batch_poll_interval: float = 60.0
    batch_wait: float = 0.0
    batch_max_requests: int | None = None
    tensor_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    max_model_len: int | None = None
    kv_cache_memory_bytes: int | None = None
    enforce_eager: bool | None = None
    max_num_seqs: int | None = None
    max_lora_rank: int | None = None
    max_loras: int | None = None
    enable_prefix_caching: bool | None = None
    multiprocessing: bool | None = None
    #: serve: true: the managed server's port (None: a free one, chosen when it starts)
    serve_port: int | None = None
    #: serve: true: seconds the server may take until it answers /v1/models
    serve_timeout: float = 600.0


@dataclass(kw_only=True)
class EncoderLimits(Options):
    inference_batch_size: int = 64


@dataclass(kw_only=True)
class LoraLimits(Options):
    """How a LoRA coder runs; the vLLM engine keys apply to ``backend: vllm`` only."""

    inference_batch_size: int = 8
    max_fail_share: float = 0.05
    tensor_parallel_size: int | None = None
    gpu_memory_utilization: float | None = None
    kv_cache_memory_bytes: int | None = None
    enforce_eager: bool | None = None
    max_num_seqs: int | None = None
    enable_prefix_caching: bool | None = None
    multiprocessing: bool | None = None


@dataclass(kw_only=True)
class PromptPlan(Options):
    """What the cost plan needs of a prompted coder; never a rerun trigger."""

    throughput_texts_per_s: float | None = None
    tokenizer: str | None = None


@dataclass(kw_only=True)
class TrainedPlan(Options):
    """What the cost plan needs of a fine-tuned coder; never a rerun trigger."""

    throughput_texts_per_s: float | None = None
    train_throughput_texts_per_s: float | None = None


__all__ = ["EncoderLimits", "LoraLimits", "PromptLimits", "PromptPlan", "TrainedPlan"]
