"""Local prompted classification with transformers: score each label, do not generate.

Free generation can answer anything ("The text is about..."); scoring asks the model for the
probability of each allowed label after the prompt, which gives a label from the codebook and
a probability per label (a confidence) in one forward pass. When the labels' first tokens
differ, the first token decides and one pass per text suffices; otherwise each label's full
continuation is scored (sum of its token log-probabilities).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from textgauge.inference.backends.base import (
    STATUS_FAILED,
    Prediction,
    PromptBackend,
    PromptRequest,
    ResultCallback,
    probs_to_prediction,
)


class TransformersBackend(PromptBackend):
    name = "transformers"
    external = False

    def __init__(self, model: str, inference_batch_size: int = 8, dtype: str = "auto",
                 device: str = "auto", max_length: int = 1024, threads: int | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from textgauge.inference.aliases import describe, resolve

        if threads:
            torch.set_num_threads(threads)
        self.model_name = model
        self.path = resolve(model)
        self.info = describe(model)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" else "float32"
        self.device, self.dtype = device, dtype
        self.tok = AutoTokenizer.from_pretrained(self.path)
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            self.path, dtype=getattr(torch, dtype)).to(device).eval()
        self.inference_batch_size = inference_batch_size
        self.max_length = max_length
        self._label_ids: dict[tuple[str, ...], list[list[int]]] = {}
        self._last_prompt_tokens: list[int] | None = None  # per text of the last batch

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "model": self.model_name, **self.info,
                "dtype": self.dtype, "device": self.device, "decoding": "label scoring"}

    def _prompt(self, req: PromptRequest) -> str:
        return self.tok.apply_chat_template(req.messages, tokenize=False,
                                            add_generation_prompt=True)

    def _label_tokens(self, labels: Sequence[str]) -> list[list[int]]:
        key = tuple(labels)
        if key not in self._label_ids:
            self._label_ids[key] = [self.tok.encode(lab, add_special_tokens=False)
                                    for lab in labels]
        return self._label_ids[key]

    def _score_batch(self, reqs: Sequence[PromptRequest]) -> list[dict[str, float]]:
        import torch

        prompts = [self._prompt(r) for r in reqs]
        labels = reqs[0].labels
        ids = self._label_tokens(labels)
        first = [t[0] for t in ids]
        with torch.inference_mode():
            if len(set(first)) == len(first):
                enc = self.tok(prompts, return_tensors="pt", padding=True, truncation=True,
                               max_length=self.max_length, add_special_tokens=False).to(self.device)
                self._last_prompt_tokens = enc["attention_mask"].sum(dim=1).tolist()
                logits = self.model(**enc).logits[:, -1, :].float()
                logp = torch.log_softmax(logits, dim=-1)[:, first]
                return [dict(zip(labels, row.tolist(), strict=True)) for row in logp]
            # labels share a first token: score every full continuation
            texts, spans = [], []
            for p in prompts:
                for t in ids:
                    texts.append(p)
                    spans.append(t)
            out = []
            enc_p = [self.tok.encode(p, add_special_tokens=False) for p in prompts]
            self._last_prompt_tokens = [len(e) for e in enc_p]
            seqs = [enc_p[i // len(ids)] + spans[i] for i in range(len(spans))]
            width = max(map(len, seqs))
            pad = self.tok.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])
            attn = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
            logits = self.model(input_ids=input_ids.to(self.device),
                                attention_mask=attn.to(self.device)).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            scores = []
            for i, span in enumerate(spans):
                n = len(span)
                pos = torch.arange(width - n - 1, width - 1)
                scores.append(float(logp[i, pos, torch.tensor(span)].sum()))
            for j in range(len(prompts)):
                row = scores[j * len(ids):(j + 1) * len(ids)]
                out.append(dict(zip(labels, row, strict=True)))
            return out

    def classify(self, requests: Sequence[PromptRequest], on_results: ResultCallback) -> None:
        from tqdm.auto import tqdm

        # group by label order (rotated orders give several groups) and sort by length
        groups: dict[tuple[str, ...], list[PromptRequest]] = {}
        for r in requests:
            groups.setdefault(tuple(r.labels), []).append(r)
        bar = tqdm(total=len(requests), desc=f"{self.model_name} (label scoring)", unit="text")
        for reqs in groups.values():
            reqs = sorted(reqs, key=lambda r: len(r.messages[-1]["content"]))
            for i in range(0, len(reqs), self.inference_batch_size):
                batch = reqs[i:i + self.inference_batch_size]
                t0 = time.perf_counter()
                self._last_prompt_tokens = None
                try:
                    scored = self._score_batch(batch)
                except Exception as exc:  # noqa: BLE001 - recorded per item, never dropped
                    on_results([Prediction(id=r.id, label=None, status=STATUS_FAILED,
                                           error=f"{type(exc).__name__}: {exc}") for r in batch])
                    bar.update(len(batch))
                    continue
                dt = (time.perf_counter() - t0) / len(batch)
                preds = []
                n_tok = self._last_prompt_tokens
                if not n_tok or len(n_tok) != len(batch):
                    n_tok = [None] * len(batch)
                for r, logps, n in zip(batch, scored, n_tok, strict=True):
                    m = max(logps.values())
                    probs = {k: math.exp(v - m) for k, v in logps.items()}
                    p = probs_to_prediction(r.id, probs, raw=max(logps, key=logps.get))
                    p.usage = {"seconds": round(dt, 4)}
                    if n is not None:  # the tokens of the chat-templated prompt fed to the model
                        p.usage["prompt_tokens"] = int(n)
                    preds.append(p)
                on_results(preds)
                bar.update(len(batch))
        bar.close()
