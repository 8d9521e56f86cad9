"""Inference with a trained ``kind: lora`` model: a base decoder + LoRA adapter scoring the
labels after the prompt, like :class:`~textgauge.inference.backends.transformers.TransformersBackend`.

The adapter folder holds the standard peft files (adapter_config.json +
adapter_model.safetensors) and ``textgauge_adapter.json`` (base model, revision, labels,
template and LoRA settings). The loaders here are shared with training
(:mod:`textgauge.training.lora`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from textgauge.errors import ConfigError, InputDataError
from textgauge.inference.backends.base import PromptRequest
from textgauge.inference.backends.transformers import TransformersBackend
from textgauge.inference.backends.vllm import VLLMBackend
from textgauge.options import LoraModel

log = logging.getLogger("textgauge")

ADAPTER_META = "textgauge_adapter.json"
#: ChatML, used only when the base tokenizer has no chat template of its own
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)




def load_tokenizer(path: str, revision: str | None = None) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, revision=revision)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        log.warning("%s has no chat template; using ChatML.", path)
        tok.chat_template = CHATML
    return tok


def load_base_model(path: str, quantize: str | None, device: str, precision: str,
               revision: str | None = None) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    kw: dict[str, Any] = {"revision": revision, "dtype": dtype}
    if quantize:
        from transformers import BitsAndBytesConfig

        if quantize == "4bit":
            kw["quantization_config"] = BitsAndBytesConfig(
                load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                bnb_4bit_compute_dtype=dtype)
        else:
            kw["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
        kw["device_map"] = {"": 0} if device == "cuda" else "cpu"
        return AutoModelForCausalLM.from_pretrained(path, **kw)
    return AutoModelForCausalLM.from_pretrained(path, **kw).to(device)


def adapter_description(adapter_dir: str, meta: Mapping[str, Any]) -> dict[str, Any]:
    """What a manifest says of a served adapter, whichever engine serves it: the adapter's
    hash in the revision (a retrained adapter is a new coder) and the prompt hash it was
    trained with (a prompt edited since training shows)."""
    return {"adapter": adapter_dir,
            "revision": f"{meta.get('base_model')} + LoRA adapter ({adapter_hash(adapter_dir)})",
            "base_revision": meta.get("revision"),
            "prompt_hash_trained": meta.get("prompt_hash")}


class LoraBackend(TransformersBackend):
    """Label scoring (as :class:`TransformersBackend`) with a base decoder + LoRA adapter.

    The adapter is merged into an unquantized base (bf16 on GPU, fp32 on CPU) unless
    ``quantize`` is given, in which case the base is loaded quantized and the adapter is kept
    separate (as in QLoRA training).
    """

    name = "transformers-lora"

    def __init__(self, adapter_dir: str | Path, base_model: str | None = None,
                 inference_batch_size: int = 8, dtype: str = "auto", device: str = "auto",
                 max_length: int = 1024, threads: int | None = None,
                 quantize: str | None = None, merge: bool = True):
        import torch
        from peft import PeftModel

        from textgauge.inference.aliases import describe, resolve

        if threads:
            torch.set_num_threads(threads)
        adapter_dir = Path(adapter_dir)
        meta = read_adapter_meta(adapter_dir)
        base = base_model or meta.get("base_model")
        if not base:
            raise ConfigError(f"{adapter_dir} names no base model; set base_model.")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" else "float32"
        quantize = None if quantize in (None, "none", False) else quantize
        if quantize and device != "cuda":
            quantize = None  # bitsandbytes on CPU: slow and no gain; use the full model
        self.model_name, self.path = base, resolve(base)
        self.info = describe(base)
        self.device, self.dtype = device, dtype
        self.tok = load_tokenizer(str(adapter_dir) if (adapter_dir / "tokenizer_config.json")
                                   .exists() else self.path)
        self.tok.padding_side = "left"
        prec = {"bfloat16": "bf16", "float16": "fp16"}.get(dtype, "fp32")
        model = load_base_model(self.path, quantize, device, prec, meta.get("revision"))
        model = PeftModel.from_pretrained(model, str(adapter_dir))
        if merge and not quantize:
            model = model.merge_and_unload()
        self.model = model.eval()
        self._init_common(str(adapter_dir), meta, inference_batch_size, max_length)

    def _init_common(self, adapter_dir: str, meta: Mapping[str, Any],
                     inference_batch_size: int, max_length: int) -> None:
        self.adapter_dir, self.meta = adapter_dir, dict(meta)
        self.inference_batch_size, self.max_length = inference_batch_size, max_length
        self._label_ids: dict[tuple[str, ...], list[list[int]]] = {}

    @classmethod
    def from_loaded(cls, model: Any, tok: Any, base_model: str, adapter_dir: str,
                    inference_batch_size: int = 8, max_length: int = 1024) -> LoraBackend:
        """Wrap a model already in memory (the one just trained)."""
        self = cls.__new__(cls)
        self.model_name, self.path, self.info = base_model, base_model, {"name": base_model}
        self.device = str(next(model.parameters()).device).split(":")[0]
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        self.tok = tok
        tok.padding_side = "left"
        self.model = model
        self._init_common(adapter_dir, read_adapter_meta(Path(adapter_dir)),
                          inference_batch_size, max_length)
        return self

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(backend=self.name, **adapter_description(self.adapter_dir, self.meta))
        return d

    def classify(self, requests: Sequence[PromptRequest], on_results: Any) -> None:
        import torch

        with torch.inference_mode():
            super().classify(requests, on_results)


def read_adapter_meta(adapter_dir: Path) -> dict[str, Any]:
    p = Path(adapter_dir) / ADAPTER_META
    if p.exists():
        return json.loads(p.read_text())
    cfg = Path(adapter_dir) / "adapter_config.json"
    if cfg.exists():  # a plain peft adapter
        c = json.loads(cfg.read_text())
        return {"base_model": c.get("base_model_name_or_path"), "revision": c.get("revision")}
    return {}


def adapter_hash(adapter_dir: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    for f in sorted(Path(adapter_dir).glob("adapter_*")):
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def find_adapter(model_dir: str | Path) -> Path:
    """The adapter folder for results/models/{model}, its adapter/ or a sibling model/ path."""
    p = Path(model_dir)
    for cand in (p, p / "adapter", p.parent / "adapter"):
        if (cand / "adapter_config.json").exists():
            return cand
    raise InputDataError(f"No LoRA adapter (adapter_config.json) in {p}, {p / 'adapter'} or "
                         f"{p.parent / 'adapter'}; run the train_lora rule first.")


def lora_predictor(model_dir: str | Path, model: LoraModel,
                   threads: int | None = None) -> Any:
    """The inference backend for a trained ``kind: lora`` model (rule predict_*): the base
    model + peft adapter with transformers, or (``backend: vllm``) the base model served by
    vLLM with the adapter as its LoRARequest."""
    adapter = find_adapter(model_dir)
    if model.backend == "vllm":
        return vllm_lora_backend(adapter, model)
    return LoraBackend(adapter,
                       inference_batch_size=model.limits.inference_batch_size,
                       dtype=model.dtype, max_length=model.max_length, threads=threads,
                       quantize=model.inference_quantize)


#: LoraLimits keys handed to the vLLM engine as they are (None: vLLM's or our CPU default)
VLLM_LIMITS = ("tensor_parallel_size", "gpu_memory_utilization", "kv_cache_memory_bytes",
               "enforce_eager", "max_num_seqs", "enable_prefix_caching", "multiprocessing")


def vllm_lora_backend(adapter_dir: str | Path, model: LoraModel) -> Any:
    """A :class:`~textgauge.inference.backends.vllm.VLLMBackend` serving the adapter that rule
    train_lora wrote (``enable_lora`` + ``LoRARequest``) on the base model it was trained on.

    The base model is the one recorded in the adapter (``textgauge_adapter.json``), so the
    adapter never lands on a different base; ``max_length`` (prompt + answer, as trained)
    becomes ``max_model_len``. The manifest names the adapter by its hash, as for the
    transformers backend.
    """
    adapter_dir = Path(adapter_dir)
    meta = read_adapter_meta(adapter_dir)
    base = meta.get("base_model") or model.base_model
    if base != model.base_model:
        raise ConfigError(f"The adapter in {adapter_dir} was trained on {base}, but the model's "
                          f"base_model is {model.base_model}: rerun rule train_lora (delete "
                          "the adapter folder) so that adapter and base model match.")
    cfg: dict[str, Any] = {"model": base, "adapter": str(adapter_dir),
                           "revision": meta.get("revision") or model.revision,
                           "dtype": model.dtype, "max_model_len": model.max_length,
                           "inference_batch_size": model.limits.inference_batch_size}
    limits = model.limits.to_dict()
    cfg.update({k: limits[k] for k in VLLM_LIMITS if limits.get(k) is not None})
    return VLLMLoraBackend(adapter_dir, meta, {k: v for k, v in cfg.items() if v is not None})


class VLLMLoraBackend(VLLMBackend):
    """vLLM serving a trained adapter; describe() as :class:`LoraBackend`'s (the adapter's
    hash in the revision, the prompt hash the adapter was trained with)."""

    name = "vllm-lora"

    def __init__(self, adapter_dir: str | Path, meta: Mapping[str, Any], cfg: dict[str, Any]):
        super().__init__(cfg)
        self.adapter_dir, self.meta = str(adapter_dir), dict(meta)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(backend=self.name, **adapter_description(self.adapter_dir, self.meta))
        return d


__all__ = ["ADAPTER_META", "LoraBackend", "VLLMLoraBackend", "adapter_hash", "find_adapter", "load_base_model",
           "load_tokenizer", "lora_predictor", "read_adapter_meta", "vllm_lora_backend"]
