"""Sentences of the methods section that describe each machine coder as it actually ran.

A methods section is only worth what it states truly. Each sentence here is written from the
run's records, not from what a kind of model usually does: the decoding settings the backend
reported (``decoding`` in the predictions manifest), the model snapshot an API said answered
(``served_models``), the training summary (``training.json``: epochs run, class weights,
adapter rank and quantisation). A setting the run did not record is said to be unrecorded,
never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["coder_sentence", "decoding_sentence", "encoder_sentence", "lora_sentence",
           "prompt_sentence", "served_sentence"]

#: what each structured-output mode means, in words
STRUCTURED = {
    "json_schema": "structured output restricted by a JSON schema to the labels",
    "choice": "generation constrained to exactly one of the labels",
    "none": "free text, parsed for a label",
}
QUANTISATION = {
    "4bit": "4-bit NF4 quantisation with double quantisation of the frozen base model (QLoRA)",
    "8bit": "8-bit quantisation of the frozen base model",
    "none": "no quantisation of the base model",
}


def _fmt(value: Any) -> str:
    return "unrecorded" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def decoding_sentence(decoding: Mapping[str, Any], n_labels: int) -> str:
    """How an answer became a label: label scoring or (constrained) generation, with settings."""
    if decoding.get("decoding") == "label scoring":
        return (f"its label is the option with the highest probability among the {n_labels} "
                "labels, scored in one forward pass (label scoring: no text is generated, so "
                "the answer is deterministic)")
    mode = decoding.get("structured")
    how = STRUCTURED.get(str(mode), f"structured output mode {_fmt(mode)}")
    temperature = decoding.get("temperature")
    temp = ("the server's default temperature (not set)" if temperature is None
            else f"temperature {_fmt(temperature)}")
    parts = [f"its answer was generated ({how}; {temp}, at most "
             f"{_fmt(decoding.get('max_tokens'))} tokens"]
    if decoding.get("seed") is not None:
        parts.append(f"seed {decoding['seed']}")
    if decoding.get("max_reasks"):
        parts.append(f"an answer outside the labels re-asked up to {decoding['max_reasks']} "
                     "times")
    sentence = "; ".join(parts) + ")"
    if temperature not in (None, 0, 0.0):
        sentence += ", so repeated runs can give different answers"
    return sentence


def served_sentence(manifest: Mapping[str, Any]) -> str:
    """The model snapshot(s) and system fingerprint(s) an API reported, with counts."""
    served = manifest.get("served_models") or {}
    if not served:
        return ""
    snaps = ", ".join(f"{k} ({v} answers)" for k, v in served.items())
    fps = manifest.get("system_fingerprints") or {}
    fp = (f"; system fingerprint(s): {', '.join(f'{k} ({v})' for k, v in fps.items())}"
          if fps else "")
    return f" The API reported answering with {snaps}{fp}."


def prompt_sentence(name: str, cfg: Mapping[str, Any], manifest: Mapping[str, Any],
                    n_labels: int) -> str:
    """A prompted coder: model, prompt, label order, few-shot, decoding, served snapshot."""
    decoding = manifest.get("decoding") or {}
    backend = decoding.get("backend") or cfg.get("backend")
    few = int(cfg.get("few_shot") or 0)
    shots = (f"{few} few-shot examples per prompt, drawn from the training data (never from "
             "the gold set)" if few else "no few-shot examples")
    return (f"{name} is the instruction-tuned model {cfg.get('model')} "
            f"({manifest.get('model_revision')}; backend {backend}) prompted with the codebook "
            f"(template {cfg.get('prompt')}, prompt hash {manifest.get('prompt_hash')}; labels "
            f"listed in {cfg.get('label_order', 'fixed')} order; {shots}); "
            f"{decoding_sentence(decoding, n_labels) if decoding else _legacy(cfg, n_labels)}."
            + served_sentence(manifest))


def _legacy(cfg: Mapping[str, Any], n_labels: int) -> str:
    """A predictions manifest from before decoding was recorded: say only what is certain."""
    if cfg.get("backend", "transformers") == "transformers":
        return decoding_sentence({"decoding": "label scoring"}, n_labels)
    return "its decoding settings were not recorded by this run"


def encoder_sentence(name: str, cfg: Mapping[str, Any], training: Mapping[str, Any]) -> str:
    """A fine-tuned encoder: data, learning rate, epochs run, early stopping, class weights."""
    t = training
    patience = cfg.get("early_stopping_patience")
    stopping = (f"early stopping on validation macro-F1 (patience {patience}), "
                f"{_fmt(t.get('epochs_run'))} run" + (", stopped early" if t.get("stopped_early")
                                                     else "")
                if patience else f"no early stopping, {_fmt(t.get('epochs_run'))} run")
    weights = t.get("class_weights")
    weights_text = (", ".join(f"{k} {v:.2f}" for k, v in weights.items())
                    if isinstance(weights, Mapping) else cfg.get("class_weights", "none"))
    base = (t.get("base_model") or {}).get("upstream") or cfg.get("base_model")
    return (f"{name} is {base} fine-tuned for sequence classification on "
            f"{t.get('n_train', 'unrecorded')} labelled texts ({t.get('n_val', 'unrecorded')} "
            f"for validation; learning rate {_fmt(cfg.get('learning_rate'))}, up to "
            f"{_fmt(cfg.get('epochs'))} epochs with {stopping}; class weights: {weights_text}; "
            f"seed {(t.get('config') or {}).get('seed', cfg.get('seed'))}).")


def lora_sentence(name: str, cfg: Mapping[str, Any], training: Mapping[str, Any],
                  manifest: Mapping[str, Any], n_labels: int) -> str:
    """A LoRA/QLoRA coder: adapter rank, quantisation, epochs run, prompt, label scoring."""
    t = training
    meta = t.get("adapter_meta") or {}
    lora = meta.get("lora") or {}
    quant = str(meta.get("quantize") or cfg.get("quantize") or "none")
    patience = cfg.get("early_stopping_patience")
    stopping = (f"early stopping on validation loss (patience {patience})" if patience
                else "no early stopping")
    base = (t.get("base_model") or {}).get("upstream") or cfg.get("base_model")
    return (f"{name} is the instruct decoder {base} with LoRA adapters (rank "
            f"{lora.get('r', cfg.get('r'))}, alpha {_fmt(lora.get('alpha', cfg.get('alpha')))}, "
            f"dropout {_fmt(lora.get('dropout', cfg.get('dropout')))}, target modules "
            f"{lora.get('target_modules', cfg.get('target_modules'))}; "
            f"{QUANTISATION.get(quant, quant)}) trained on the answer tokens of "
            f"{t.get('n_train', 'unrecorded')} prompted training texts "
            f"({t.get('n_val', 'unrecorded')} for validation; learning rate "
            f"{_fmt(cfg.get('learning_rate'))}, up to {_fmt(cfg.get('epochs'))} epochs, "
            f"{_fmt(t.get('epochs_run'))} run, {stopping}; prompt {cfg.get('prompt')}, hash "
            f"{meta.get('prompt_hash', manifest.get('prompt_hash'))}; seed {cfg.get('seed')}); "
            f"{decoding_sentence(manifest.get('decoding') or {'decoding': 'label scoring'}, n_labels)}.")


def coder_sentence(name: str, cfg: Mapping[str, Any], manifest: Mapping[str, Any],
                   training: Mapping[str, Any], n_labels: int) -> str:
    """The sentence for one machine coder, by the kind that actually ran."""
    if cfg["kind"] == "prompt":
        return prompt_sentence(name, cfg, manifest, n_labels)
    if cfg["kind"] == "lora":
        return lora_sentence(name, cfg, training, manifest, n_labels)
    return encoder_sentence(name, cfg, training)
