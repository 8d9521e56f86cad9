"""Local prompted classification with transformers: score each label, do not generate.

Free generation can answer anything ("The text is about..."); scoring asks the model for the
probability of each allowed label after the prompt, which gives a label from the codebook and
a probability per label (a confidence) in one forward pass. When the labels' first tokens
differ, the first token decides and one pass per text suffices; otherwise each label's full
continuation is scored (sum of its token log-probabilities).

Near the CPU's limit (issue 15):

- **Shared-prefix reuse.** Every text of a (prompt, label order) shares the same prefix: the
  chat-templated system turn (instructions, codebook, few-shot examples) and the start of the
  user turn, up to the text. Its key/value cache is computed once and expanded over each
  batch; only the per-text suffix goes through the model. The split is a token index of the
  *full* prompt's tokenisation (where the text starts), and it is used only when those prefix
  tokens equal the prefix's own tokenisation; a text whose boundary tokenises differently is
  scored from its full prompt (counted: ``describe()["prefix_reuse"]``). Causal attention
  makes both paths compute the same numbers (to float rounding).
- **Low precision only after a check.** With ``dtype: auto`` on a CPU, bf16 (or int8 dynamic
  quantisation) is tried on a sample spread over the texts' lengths against fp32; it is used
  only if every sampled label agrees, every probability is within ``PROB_TOLERANCE`` and it
  is measured faster here. The decision and its figures are in ``describe()``
  (``precision_check``), hence in the predictions manifest.
- **Length-sorted batches sized by measured throughput.** Texts are sorted by length (little
  padding); without ``limits.inference_batch_size`` the batch size doubles from 4 while the
  measured tokens/s stays within 5% of the best, then stays at the largest such size.
- **Only the text is shortened** to fit ``max_length`` (with a marker), never the codebook,
  the instructions or the answer cue; such predictions carry ``truncated = True``.
"""

from __future__ import annotations

import copy
import math
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from textgauge.inference.backends.base import (
    STATUS_FAILED,
    Prediction,
    PromptBackend,
    PromptRequest,
    ResultCallback,
    probs_to_prediction,
)

#: a low-precision model is used only if its probabilities stay this close to fp32's
PROB_TOLERANCE = 0.01
#: ... and this share of the sampled labels agree with fp32 (all of them below 200 texts)
MIN_AGREEMENT = 0.995
#: texts in the precision check (spread over the lengths); fewer texts: fp32, no check
PRECISION_SAMPLE = 32
#: batch sizes tried, in order, when limits.inference_batch_size is not set
BATCH_SIZES = (4, 8, 16, 32, 64)
#: prefix caches kept (one per prompt and label order; rotated orders have one per offset)
MAX_PREFIXES = 16
#: padded tokens per forward pass at most (bounds memory on long texts)
MAX_BATCH_TOKENS = 16384


@dataclass
class _Item:
    """One request made ready to score: its prompt tokens and where its shared prefix ends."""

    req: PromptRequest
    ids: list[int]
    #: tokens of ``ids`` that belong to the shared prefix (0: scored from the full prompt)
    split: int = 0
    truncated: bool = False

    @property
    def prefix(self) -> tuple[int, ...]:
        return tuple(self.ids[:self.split])


class TransformersBackend(PromptBackend):
    name = "transformers"
    external = False
    #: reuse the shared prefix's KV cache (False: every text from its full prompt)
    prefix_reuse: bool = True
    #: "auto" (fp32 on CPU unless a low precision passes the check), "fp32", "bf16", "int8"
    precision: str = "fp32"

    def __init__(self, model: str, inference_batch_size: int | None = None, dtype: str = "auto",
                 device: str = "auto", max_length: int = 1024, threads: int | None = None,
                 prefix_reuse: bool = True):
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
        self.precision = {"auto": "auto" if device == "cpu" else "bf16", "float32": "fp32",
                          "bfloat16": "bf16", "int8": "int8"}.get(dtype, dtype)
        if dtype == "auto":
            dtype = "bfloat16" if device == "cuda" else "float32"
        self.device, self.dtype = device, dtype
        self.tok = AutoTokenizer.from_pretrained(self.path)
        self.tok.padding_side = "left"
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token
        load = "float32" if dtype == "int8" else dtype
        self.model = AutoModelForCausalLM.from_pretrained(
            self.path, dtype=getattr(torch, load)).to(device).eval()
        if self.precision == "int8":  # loaded in fp32, linear layers quantised
            self.model = _low_precision(self.model, self.precision)
        self.inference_batch_size = inference_batch_size
        self.max_length = max_length
        self.prefix_reuse = prefix_reuse
        self._label_ids: dict[tuple[str, ...], list[list[int]]] = {}

    # ------------------------------------------------------------------ state and manifest
    def _state(self) -> dict[str, Any]:
        """Run state (prefix caches, counts, decisions); made on first use, so subclasses
        with their own ``__init__`` (the LoRA backend) get it too."""
        st = self.__dict__.get("_run")
        if st is None:
            st = self.__dict__["_run"] = {
                "prefixes": OrderedDict(), "prefix_text": {}, "n_reused": 0, "n_full": 0,
                "n_boundary_fallback": 0, "n_truncated": 0, "prefix_tokens": {},
                "precision_check": None, "batch_size": None, "batch_trials": []}
        return st

    def describe(self) -> dict[str, Any]:
        st = self._state()
        d: dict[str, Any] = {"backend": self.name, "model": self.model_name, **self.info,
                             "dtype": self.dtype, "device": self.device,
                             "decoding": "label scoring"}
        d["precision"] = self._precision_used()
        if st["precision_check"]:
            d["precision_check"] = st["precision_check"]
        if st["n_reused"] or st["n_full"]:
            d["prefix_reuse"] = {
                "enabled": bool(self.prefix_reuse), "texts_from_cached_prefix": st["n_reused"],
                "texts_from_full_prompt": st["n_full"],
                "boundary_tokenisation_differed": st["n_boundary_fallback"],
                "prefixes": len(st["prefix_tokens"]),
                "prefix_tokens": max(st["prefix_tokens"].values(), default=0)}
        d["inference_batch_size"] = self.inference_batch_size or st["batch_size"]
        if st["batch_trials"]:
            d["batch_size_trials"] = st["batch_trials"]
        d["max_length"] = self.max_length
        d["texts_shortened_to_fit"] = st["n_truncated"]
        return d

    def _precision_used(self) -> str:
        p = self.precision
        if p == "auto":
            return "fp32 (no check yet)"
        return p

    # ------------------------------------------------------------------ tokens
    def _prompt(self, req: PromptRequest) -> str:
        return self.tok.apply_chat_template(req.messages, tokenize=False,
                                            add_generation_prompt=True)

    def _encode(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def _label_tokens(self, labels: Sequence[str]) -> list[list[int]]:
        key = tuple(labels)
        if key not in self._label_ids:
            self._label_ids[key] = [self.tok.encode(lab, add_special_tokens=False)
                                    for lab in labels]
        return self._label_ids[key]

    def _label_room(self, labels: Sequence[str]) -> int:
        """Tokens appended after the prompt (0 when the first label tokens decide)."""
        ids = self._label_tokens(labels)
        first = [t[0] for t in ids]
        return 0 if len(set(first)) == len(first) else max(map(len, ids))

    def _prepare(self, req: PromptRequest) -> _Item:
        """Tokenise one request (shortening its text if needed) and find its prefix split."""
        from textgauge.inference.prompting import shorten_to_fit

        budget = self.max_length - self._label_room(req.labels)
        req2, cut = shorten_to_fit(req, lambda r: len(self._encode(self._prompt(r))), budget,
                                   self._encode, lambda ids: self.tok.decode(ids))
        prompt = self._prompt(req2)
        if not (self.prefix_reuse and getattr(self.tok, "is_fast", False)):
            return _Item(req, self._encode(prompt), 0, cut)
        enc = self.tok(prompt, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
        at = self._text_start(req2, prompt)
        split = 0  # the tokens that end before the text starts
        for i, (_, end) in enumerate(offsets):
            if end > at:
                break
            split = i + 1
        if split == 0 or split >= len(ids):
            return _Item(req, ids, 0, cut)
        text = prompt[:offsets[split - 1][1]]
        st = self._state()
        known = st["prefix_text"].get(text)
        if known is None:
            known = st["prefix_text"][text] = tuple(self._encode(text))
        if tuple(ids[:split]) != known:  # the boundary tokenises differently: full prompt
            st["n_boundary_fallback"] += 1
            return _Item(req, ids, 0, cut)
        return _Item(req, ids, split, cut)

    @staticmethod
    def _text_start(req: PromptRequest, prompt: str) -> int:
        """Character offset in ``prompt`` where the per-text part starts: the text itself
        when the request says it, else the last message's content."""
        from textgauge.inference.prompting import text_span

        content = req.messages[-1]["content"] if req.messages else ""
        start = prompt.rfind(content) if content else -1
        if start < 0:
            return 0
        span = text_span(req)
        return start + (span[0] if span else 0)

    # ------------------------------------------------------------------ forward passes
    def _prefix_cache(self, prefix: tuple[int, ...]) -> Any:
        """The KV cache of a shared prefix, computed once (per model precision)."""
        import torch

        st = self._state()
        key = (id(self.model), prefix)
        caches = st["prefixes"]
        if key in caches:
            caches.move_to_end(key)
            return caches[key]
        ids = torch.tensor([list(prefix)], device=self.device)
        with torch.inference_mode():
            out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
        caches[key] = out.past_key_values
        while len(caches) > MAX_PREFIXES:
            caches.popitem(last=False)
        return caches[key]

    @staticmethod
    def _expand(cache: Any, n: int) -> Any:
        """A view of a batch-1 cache as a batch-n cache (no copy: each layer's update
        concatenates into new tensors, so the stored prefix is never changed)."""
        new = copy.copy(cache)
        layers = []
        for layer in cache.layers:
            lay = copy.copy(layer)
            lay.keys = layer.keys.expand(n, *layer.keys.shape[1:])
            lay.values = layer.values.expand(n, *layer.values.shape[1:])
            layers.append(lay)
        new.layers = layers
        return new

    def _score_batch(self, items: Sequence[_Item]) -> list[dict[str, float]]:
        """Label log-probabilities for items sharing one prefix (or none) and one label order.

        Rows are left-padded; with a cached prefix of P tokens, the attention mask covers the
        prefix and the row's own tokens, and position ids continue from P for each row's
        first real token, so a padded row computes what it would alone.
        """
        import torch

        labels = items[0].req.labels
        lab = self._label_tokens(labels)
        room = self._label_room(labels)
        split = items[0].split
        rows = [it.ids[split:] for it in items]
        seqs = rows if not room else [r + t for r in rows for t in lab]
        keep = 1 if not room else room + 1
        width = max(map(len, seqs))
        pad = self.tok.pad_token_id or 0
        input_ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs])
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs])
        pos = (mask.cumsum(1) - 1).clamp(min=0) + split
        past = None
        if split:
            past = self._expand(self._prefix_cache(items[0].prefix), len(seqs))
            mask = torch.cat([torch.ones(len(seqs), split, dtype=mask.dtype), mask], dim=1)
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids.to(self.device),
                                attention_mask=mask.to(self.device),
                                position_ids=pos.to(self.device), past_key_values=past,
                                use_cache=past is not None, logits_to_keep=keep).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
        if not room:
            first = [t[0] for t in lab]
            return [dict(zip(labels, row.tolist(), strict=True)) for row in logp[:, -1, first]]
        out = []
        for j in range(len(items)):
            scores = []
            for i_lab, span in enumerate(lab):
                i = j * len(lab) + i_lab
                n = len(span)
                idx = torch.arange(keep - n - 1, keep - 1)
                scores.append(float(logp[i, idx, torch.tensor(span)].sum()))
            out.append(dict(zip(labels, scores, strict=True)))
        return out

    # ------------------------------------------------------------------ precision
    def _choose_precision(self, items: Sequence[_Item], report: ResultCallback) -> list[_Item]:
        """With ``precision: auto`` on CPU: try bf16 (int8 dynamic quantisation where the CPU
        lacks native bf16) on a sample of texts against fp32; keep it if it agrees and is
        measured faster. The candidate stops at the first batch that fails (a label that
        differs, a probability off by more than the tolerance): a failing check costs a few
        texts, not the sample. The sample's fp32 answers are reported (they are the
        reference, so nothing is computed twice) and the sample is returned."""
        import numpy as np
        import torch

        st = self._state()
        if self.precision != "auto":
            return []
        if self.device != "cpu" or len(items) < PRECISION_SAMPLE:
            self.precision = "fp32"
            st["precision_check"] = {"used": "fp32", "why": (
                f"fewer than {PRECISION_SAMPLE} texts: fp32 without a check"
                if self.device == "cpu" else "not on CPU")}
            return []
        order = sorted(range(len(items)), key=lambda i: len(items[i].ids) - items[i].split)
        pick = [order[i] for i in np.linspace(0, len(order) - 1, PRECISION_SAMPLE).astype(int)]
        sample = [items[i] for i in dict.fromkeys(pick)]
        groups = _group(sample)

        def run(ref: dict[int, list[float]] | None = None
                ) -> tuple[dict[int, list[float]], float, bool]:
            """Probabilities by item, seconds, and False if stopped at a failing batch."""
            for g in groups:  # prefixes computed outside the timing
                if g[0].split:
                    self._prefix_cache(g[0].prefix)
            t0 = time.perf_counter()
            res: dict[int, list[float]] = {}
            for g in groups:
                for b in range(0, len(g), 8):
                    part = g[b:b + 8]
                    for it, lp in zip(part, self._score_batch(part), strict=True):
                        res[id(it)] = _probs(lp)
                    if ref is not None and not _agrees(ref, res, part):
                        return res, time.perf_counter() - t0, False
            return res, time.perf_counter() - t0, True

        fp32_model = self.model
        ref_by, t_ref, _ = run()
        ref = [ref_by[id(it)] for it in sample]
        trials = []
        best = ("fp32", t_ref, fp32_model)
        bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
        # bf16 where the CPU computes it natively (AVX512-BF16/AMX), else int8 dynamic
        # quantisation (VNNI); each is kept only if it passes and is measured faster
        for cand in ["bf16"] if bf16 else ["int8"]:
            try:
                low_model = self.model = _low_precision(fp32_model, cand)
                low_by, t_low, complete = run(ref_by)
            except Exception as exc:  # noqa: BLE001 - a candidate that fails is not used
                trials.append({"precision": cand, "error": f"{type(exc).__name__}: {exc}"})
                continue
            finally:
                self.model = fp32_model
            pairs = [(ref_by[k], v) for k, v in low_by.items()]
            agree = float(np.mean([np.argmax(a) == np.argmax(b) for a, b in pairs]))
            diff = float(np.max(np.abs(np.array([a for a, _ in pairs])
                                       - np.array([b for _, b in pairs]))))
            ok = complete and agree >= MIN_AGREEMENT and diff <= PROB_TOLERANCE
            trials.append({"precision": cand, "n": len(pairs),
                           "label_agreement": round(agree, 4), "max_prob_diff": round(diff, 5),
                           "seconds": round(t_low, 3),
                           "speedup": round(t_ref / len(sample) / (t_low / len(pairs)), 2),
                           "passes": ok, "stopped_early": not complete})
            if ok and t_low < best[1] * 0.95:
                best = (cand, t_low, low_model)
        self.model = best[2]
        self.precision = best[0]
        st["prefixes"].clear()  # caches of the models not kept
        st["precision_check"] = {
            "n": len(sample), "fp32_seconds": round(t_ref, 3), "trials": trials,
            "min_agreement": MIN_AGREEMENT, "prob_tolerance": PROB_TOLERANCE,
            "used": best[0], "rule": "low precision only if every check passes and it is "
                                     "measured faster on this machine"}
        self._emit_probs(sample, ref, report, t_ref / max(1, len(sample)))
        return sample

    # ------------------------------------------------------------------ batches
    def _batches(self, items: Sequence[_Item]) -> Iterator[list[_Item]]:
        """Length-sorted batches; the size is fixed, or found by doubling while measured
        tokens/s stays within 5% of the best (the timing comes from :meth:`_timed`)."""
        st = self._state()
        i = 0
        while i < len(items):
            size = self.inference_batch_size or st["batch_size"] or self._next_trial_size()
            width = len(items[min(len(items), i + size) - 1].ids) - items[i].split
            size = max(1, min(size, MAX_BATCH_TOKENS // max(1, width)))
            st["asked_size"] = size
            yield list(items[i:i + size])
            i += size

    def _next_trial_size(self) -> int:
        st = self._state()
        trials = st["batch_trials"]
        if not trials:
            return BATCH_SIZES[0]
        top = max(t["tokens_per_s"] for t in trials)
        last = trials[-1]
        nxt = [s for s in BATCH_SIZES if s > last["batch_size"]]
        if last["tokens_per_s"] < 0.95 * top or not nxt:
            # the largest size within 5% of the best (timings are noisy on a shared machine;
            # larger batches are never much worse on a CPU)
            size = max(t["batch_size"] for t in trials if t["tokens_per_s"] >= 0.95 * top)
            st["batch_size"] = size
            return size
        return nxt[0]

    def _timed(self, batch: Sequence[_Item], seconds: float) -> None:
        st = self._state()
        if self.inference_batch_size or st["batch_size"] or len(batch) < st.get("asked_size", 0):
            return  # a fixed size, a decided one, or the short last batch of a group
        tokens = sum(len(it.ids) - it.split for it in batch)
        st["batch_trials"].append({"batch_size": len(batch),
                                   "tokens_per_s": round(tokens / max(seconds, 1e-9), 1)})

    # ------------------------------------------------------------------ the run
    def _emit_probs(self, items: Sequence[_Item], probs: Sequence[Sequence[float]],
                    on_results: ResultCallback, seconds: float) -> None:
        preds = []
        for it, p in zip(items, probs, strict=True):
            pred = probs_to_prediction(it.req.id, dict(zip(it.req.labels, p, strict=True)),
                                       raw=it.req.labels[max(range(len(p)), key=p.__getitem__)])
            self._finish(pred, it, seconds)
            preds.append(pred)
        on_results(preds)

    def _finish(self, pred: Prediction, it: _Item, seconds: float) -> None:
        st = self._state()
        pred.usage = {"seconds": round(seconds, 4), "prompt_tokens": len(it.ids)}
        if it.split:
            pred.usage["cached_tokens"] = it.split
            st["n_reused"] += 1
            st["prefix_tokens"][hash(it.prefix)] = it.split
        else:
            st["n_full"] += 1
        if it.truncated:
            pred.truncated = True
            st["n_truncated"] += 1

    def classify(self, requests: Sequence[PromptRequest], on_results: ResultCallback) -> None:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(requests), desc=f"{self.model_name} (label scoring)", unit="text")

        def report(preds: Sequence[Prediction]) -> None:
            on_results(preds)
            bar.update(len(preds))

        items: list[_Item] = []
        for r in requests:
            try:
                items.append(self._prepare(r))
            except Exception as exc:  # noqa: BLE001 - recorded per item, never dropped
                report([Prediction(id=r.id, label=None, status=STATUS_FAILED,
                                   error=f"{type(exc).__name__}: {exc}")])
        # with precision auto, the check's sample is answered (in fp32) by the check
        done = {id(it) for it in self._choose_precision(items, report)}
        for group in _group([it for it in items if id(it) not in done]):
            if group[0].split:  # the shared prefix, once, before the timed batches
                self._prefix_cache(group[0].prefix)
            for batch in self._batches(group):
                t0 = time.perf_counter()
                try:
                    scored = self._score_batch(batch)
                except Exception as exc:  # noqa: BLE001 - recorded per item, never dropped
                    report([Prediction(id=it.req.id, label=None, status=STATUS_FAILED,
                                       error=f"{type(exc).__name__}: {exc}") for it in batch])
                    continue
                dt = time.perf_counter() - t0
                self._timed(batch, dt)
                self._emit_probs(batch, [_probs(lp) for lp in scored], report, dt / len(batch))
        bar.close()


def _probs(logps: dict[str, float]) -> list[float]:
    """Label log-probabilities -> probabilities normalised over the labels (label order)."""
    m = max(logps.values())
    e = [math.exp(v - m) for v in logps.values()]
    s = sum(e)
    return [x / s for x in e]


def _agrees(ref: dict[int, list[float]], low: dict[int, list[float]],
            part: Sequence[_Item]) -> bool:
    """The low-precision answers of ``part`` pass: same labels, probabilities close."""
    for it in part:
        a, b = ref[id(it)], low[id(it)]
        if max(range(len(a)), key=a.__getitem__) != max(range(len(b)), key=b.__getitem__):
            return False
        if max(abs(x - y) for x, y in zip(a, b, strict=True)) > PROB_TOLERANCE:
            return False
    return True


def _group(items: Sequence[_Item]) -> list[list[_Item]]:
    """Items by (shared prefix, label order), each sorted by the length of what is left to
    compute; a prefix shared by one text only is scored from its full prompt, pooled with
    the other such texts of its label order."""
    by: dict[tuple, list[_Item]] = {}
    for it in items:
        by.setdefault((it.prefix, tuple(it.req.labels)), []).append(it)
    out: dict[tuple, list[_Item]] = {}
    for (prefix, labels), its in by.items():
        if prefix and len(its) == 1:
            its[0].split = 0
            prefix = ()
        out.setdefault((prefix, labels), []).extend(its)
    return [sorted(its, key=lambda it: len(it.ids) - it.split) for its in out.values()]


def _low_precision(model: Any, precision: str) -> Any:
    """A copy of an fp32 model in bf16, or with its linear layers dynamically quantised to
    int8 (weights int8, activations quantised per batch)."""
    import torch

    if precision == "bf16":
        return copy.deepcopy(model).to(torch.bfloat16).eval()
    if precision == "int8":
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8).eval()
    return model
