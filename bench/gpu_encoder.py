"""GPU check of textgauge's own encoder code paths (a lent CUDA machine, no hub, < 5 min).

Runs :func:`textgauge.training.encoder.train_encoder` and :class:`textgauge.training.encoder.EncoderPredictor`
(the code the workflow's train_encoder / predict_shard rules call) on CUDA with bf16, for a
MiniLM-shaped and a DeBERTa-v3-base-shaped model. No weights can be fetched there, so the
models are randomly initialised with the real architectures' shapes (same compute; the
accuracy figures mean nothing) and the tokenizer is the MiniLM one copied into --tok.

    python bench/gpu_encoder.py --tok DIR [--n-train 2000] [--n-infer 20000] [--out FILE]

Also prints the fraction of the card's dense bf16 peak that inference reached: useful FLOPs
(2 x non-embedding parameters x real tokens, padding not counted) per second over the peak
(``--peak-tflops``, else looked up from the device name: H100/H200 989, A100 312).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build(kind: str, tok_dir: str, out: Path) -> str:
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        BertConfig,
        DebertaV2Config,
    )

    tok = AutoTokenizer.from_pretrained(tok_dir)
    if kind == "minilm":
        cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=384, num_hidden_layers=6,
                         num_attention_heads=12, intermediate_size=1536, num_labels=4)
    else:  # microsoft/deberta-v3-base shape
        cfg = DebertaV2Config(vocab_size=tok.vocab_size, hidden_size=768, num_hidden_layers=12,
                              num_attention_heads=12, intermediate_size=3072,
                              relative_attention=True, position_buckets=256, max_relative_positions=-1,
                              pos_att_type=["p2c", "c2p"], norm_rel_ebd="layer_norm",
                              share_att_key=True, position_biased_input=False, num_labels=4)
    model = AutoModelForSequenceClassification.from_config(cfg)
    path = out / kind
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)


#: dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by device name fragment
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def useful_tflops(model_dir: str, texts: list[str], seconds: float, max_length: int) -> float:
    """TFLOP/s of useful work: 2 x non-embedding parameters x real (unpadded) tokens."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    sample = texts[:2000]
    n_tok = sum(len(x) for x in tok(sample, truncation=True, max_length=max_length)["input_ids"])
    n_tok *= len(texts) / max(1, len(sample))
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    emb = sum(p.numel() for n, p in model.named_parameters() if "embeddings" in n)
    params = sum(p.numel() for p in model.parameters()) - emb
    return 2 * params * n_tok / seconds / 1e12


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tok", required=True)
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-infer", type=int, default=20000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--kinds", default="minilm,deberta")
    ap.add_argument("--peak-tflops", type=float, default=None,
                    help="the card's dense bf16 peak (default: from the device name)")
    args = ap.parse_args()
    import pandas as pd
    import torch

    from textgauge.options import EncoderModel
    from textgauge.training.encoder import EncoderPredictor, train_encoder

    corpus = pd.read_csv(ROOT / "resources/example/corpus.csv")
    truth = pd.read_csv(ROOT / "resources/example/truth.csv")
    df = corpus.merge(truth, on="id").rename(columns={"true_label": "label"})
    labels = ["economic", "moral", "security", "rights"]
    res = {"device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
           "torch": torch.__version__}
    work = Path("/tmp/gpu_encoder")
    work.mkdir(exist_ok=True)
    for kind in args.kinds.split(","):
        path = build(kind, args.tok, work)
        train = df.sample(min(args.n_train, len(df)), random_state=1, replace=args.n_train > len(df))
        train = train.assign(id=[f"t{i}" for i in range(len(train))])
        val = df.sample(500, random_state=2).assign(id=lambda d: [f"v{i}" for i in range(len(d))])
        cfg = EncoderModel(base_model=path, epochs=1, train_batch_size=32, max_length=128,
                            learning_rate=3e-5, early_stopping_patience=1)
        t0 = time.perf_counter()
        summary = train_encoder(train, val, labels, cfg, work / f"{kind}-run")
        t_train = time.perf_counter() - t0
        texts = (df["text"].tolist() * (args.n_infer // len(df) + 1))[: args.n_infer]
        ids = [f"x{i}" for i in range(len(texts))]
        pred = EncoderPredictor(work / f"{kind}-run" / "model", inference_batch_size=256, max_length=128)
        pred.predict(ids[:512], texts[:512])  # warm-up
        torch.cuda.synchronize() if torch.cuda.is_available() else None
        t0 = time.perf_counter()
        out = pred.predict(ids, texts)
        torch.cuda.synchronize() if torch.cuda.is_available() else None
        t_inf = time.perf_counter() - t0
        res[kind] = {"train_items": len(train), "train_s": round(t_train, 2),
                     "train_items_per_s": round(len(train) / t_train, 1),
                     "precision": summary["precision"], "device": summary["device"],
                     "infer_texts": len(texts), "infer_s": round(t_inf, 2),
                     "infer_texts_per_s": round(len(texts) / t_inf, 1),
                     "predict_device": pred.device,
                     "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
                     if torch.cuda.is_available() else None,
                     "labels_predicted": out["label"].value_counts().to_dict()}
        achieved = useful_tflops(path, texts, t_inf, 128)
        peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items()
                                         if k in res["device"]), None)
        res[kind]["useful_tflops"] = round(achieved, 2)
        res[kind]["fraction_of_peak"] = round(achieved / peak, 4) if peak else None
        print(json.dumps({kind: res[kind]}), flush=True)
    text = json.dumps(res, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
