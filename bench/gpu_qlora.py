"""GPU check: LoRA (bf16) vs QLoRA (NF4 + double quantisation) training with textgauge.training.lora on a
TinyLlama-1.1B-shaped, randomly initialised Llama (no hub on the GPU machine), and the
lora-size estimate next to the measured peak memory.

Run from the repository root on a CUDA machine with peft, trl and bitsandbytes:
    OUT=/some/dir python bench/gpu_qlora.py
"""

import json
import os
import sys
import time

sys.path[:0] = ["src", "."]

import torch  # noqa: E402
from tests.test_lora import CODEBOOK, ROOT, _data  # noqa: E402
from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM  # noqa: E402

from tests.tiny_models import tiny_llama  # noqa: E402
from textgauge.inference.backends.lora import lora_predictor  # noqa: E402
from textgauge.inference.prompting import PromptTemplate  # noqa: E402
from textgauge.options import LoraModel  # noqa: E402
from textgauge.training.lora import train_lora  # noqa: E402
from textgauge.training.lora_size import lora_size  # noqa: E402

KEYS = ("device", "precision", "trainable_parameters", "quantized_linear_layers",
        "first_train_loss", "last_train_loss", "train_runtime_s", "peak_gpu_memory_gib")


def main() -> None:
    out = os.environ.get("OUT", "/tmp/out")
    tpl = PromptTemplate.from_file(ROOT / "prompts" / "zeroshot.jinja", CODEBOOK, "Code the frame.")
    texts = [m["content"] for _, r in _data(30, 0, "x").iterrows() for m in tpl.render(r["text"])]
    tok = AutoTokenizer.from_pretrained(tiny_llama("/tmp/gc/tiny", texts + list(CODEBOOK) * 20))
    cfg = LlamaConfig(vocab_size=49152, hidden_size=2048, intermediate_size=5632,
                      num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                      max_position_embeddings=2048, tie_word_embeddings=True,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    res = {"parameters": sum(p.numel() for p in model.parameters())}
    model.save_pretrained("/tmp/gc/big")
    tok.save_pretrained("/tmp/gc/big")
    del model
    torch.cuda.empty_cache()
    for quant in (None, "4bit"):
        torch.cuda.reset_peak_memory_stats()
        c = LoraModel.from_dict(dict(
            base_model="/tmp/gc/big", prompt=str(ROOT / "prompts/zeroshot.jinja"),
            quantize=quant or "none", epochs=2, train_batch_size=8, max_length=512, learning_rate=2e-4, logging_steps=2, seed=1))
        t0 = time.perf_counter()
        s = train_lora(_data(96, 1, "t"), _data(24, 2, "v"), list(CODEBOOK), c, tpl,
                       f"/tmp/gc/out{quant}")
        est = lora_size("/tmp/gc/big", 16, "all-linear", quant, train_batch_size=8, seq_len=140,
                        gradient_checkpointing=s["gradient_checkpointing"])
        row = {k: s[k] for k in KEYS}
        row.update(estimate_total_gib_seq140=est["memory_gib_total"], estimate=est["memory_gib"],
                   wall_s=time.perf_counter() - t0)
        backend = lora_predictor(f"/tmp/gc/out{quant}", LoraModel.from_dict(
            {"base_model": "/tmp/gc/big", "inference_quantize": quant,
             "limits": {"inference_batch_size": 16}}))
        got: list = []
        df = _data(48, 7, "p")
        t0 = time.perf_counter()
        backend.classify(tpl.requests(list(zip(df.id, df.text, strict=True))), got.extend)
        row["infer_texts_per_s"] = len(df) / (time.perf_counter() - t0)
        row["probs_sum_ok"] = all(abs(sum(p.probs.values()) - 1) < 1e-4 for p in got)
        res[str(quant)] = row
        del backend
        torch.cuda.empty_cache()
    text = json.dumps(res, indent=1, default=str)
    print(text)
    with open(os.path.join(out, "gpu_qlora.json"), "w") as fh:
        fh.write(text)


if __name__ == "__main__":
    main()
