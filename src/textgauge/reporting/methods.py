"""Sentences of the methods section that describe each machine coder as it actually ran.

A methods section is only worth what it states truly. Each sentence here is written from the
run's records, not from what a kind of model usually does: the decoding settings the backend
reported (``decoding`` in the predictions manifest), the model snapshot an API said answered
(``served_models``), the training summary (``training.json``: epochs run, class weights,
adapter rank and quantisation). A setting the run did not record is said to be unrecorded,
never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["coder_sentence", "comparison_sentence", "decoding_sentence", "encoder_sentence", "lora_sentence",
           "kappa_label", "kappa_name", "ordinal_sentence", "prompt_sentence", "scale_sentence",
           "served_sentence"]

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
    shown = (manifest.get("few_shot") or {}).get("n")  # fewer where a label has few examples
    per_prompt = f"{shown} per prompt" if shown is not None else f"up to {few * n_labels} per prompt"
    shots = (f"{few} few-shot example{'s' if few != 1 else ''} per label ({per_prompt}), drawn "
             "from the training data (never from the gold set)" if few else "no few-shot examples")
    return (f"{name} is the instruction-tuned model {cfg.get('model')} "
            f"({manifest.get('model_revision')}; backend {backend}) prompted with the codebook "
            f"(template {cfg.get('prompt')}, prompt hash {manifest.get('prompt_hash')}; labels "
            f"listed in {cfg.get('label_order', 'fixed')} order; {shots}); "
            f"{decoding_sentence(decoding, n_labels) if decoding else _legacy(cfg, n_labels)}."
            + served_sentence(manifest) + local_run_sentence(manifest))


def local_run_sentence(manifest: Mapping[str, Any]) -> str:
    """A local decoder's run (#15, #14.5): the precision and its check against fp32, the
    shared prompt prefix reused, and the texts shortened to fit max_length ("" if none)."""
    d = manifest.get("decoding") or {}
    parts = []
    check = d.get("precision_check") or {}
    passed = [t for t in check.get("trials", []) if t.get("precision") == check.get("used")]
    if passed:
        t = passed[0]
        parts.append(f"It ran in {t['precision']} after a check against fp32 on {check['n']} "
                     f"texts (labels agreeing {t['label_agreement']:.1%}, probabilities within "
                     f"{t['max_prob_diff']:.3f}, {t['speedup']:.1f}x faster).")
    elif check.get("trials"):
        parts.append(f"It ran in fp32: no lower precision passed the check against fp32 on "
                     f"{check['n']} texts (every label agreeing and probabilities within "
                     f"{check.get('prob_tolerance')}) while being faster.")
    reuse = d.get("prefix_reuse") or {}
    if reuse.get("texts_from_cached_prefix"):
        parts.append(f"The prompt's shared prefix ({reuse.get('prefix_tokens')} tokens: "
                     "instructions, codebook, examples) was computed once per label order and "
                     "its key/value cache reused for every text (the same probabilities as the "
                     "full prompt, to rounding).")
    n = manifest.get("n_truncated")
    if n:
        parts.append(f"{n} text{'s were' if n != 1 else ' was'} shortened to fit the model's "
                     f"context (max_length {d.get('max_length', '?')} tokens): only the text, "
                     "marked with \"[…]\", never the codebook, the instructions or the answer "
                     "cue.")
    return (" " + " ".join(parts)) if parts else ""


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
            f"{_fmt(cfg.get('epochs'))} epochs with {stopping}; class weights: {weights_text}"
            f"{oversample_clause(t)}; "
            f"seed {(t.get('config') or {}).get('seed', cfg.get('seed'))})"
            f"{calibration_clause(t)}.")


def oversample_clause(training: Mapping[str, Any]) -> str:
    """'; minority labels oversampled ...' when class_balance: oversample ran, else ''."""
    b = training.get("class_balance") or {}
    if b.get("method") != "oversample":
        return ""
    return (f"; minority labels oversampled (copies drawn with replacement, seed {b.get('seed')}) "
            f"from {b.get('n_before')} to {b.get('n_after')} training texts")


def calibration_clause(training: Mapping[str, Any]) -> str:
    """', its confidence calibrated by temperature scaling ...' when a T was fitted."""
    c = training.get("calibration") or {}
    if c.get("method") != "temperature" or not c.get("n"):
        return ""
    return (f"; its confidence was calibrated by temperature scaling (Guo et al. 2017), one "
            f"temperature T = {c['temperature']:.3g} fitted by negative log-likelihood on the "
            f"{c['n']} validation texts")


def baseline_what(cfg: Mapping[str, Any], training: Mapping[str, Any]) -> str:
    """What a baseline is, from its settings and its training.json: n-grams, weighting, n."""
    t = training
    n_max = int(cfg.get("ngram_max", 2))
    grams = "word unigrams" if n_max == 1 else f"word 1-{n_max}-grams"
    weights = ("balanced class weights" if cfg.get("class_weights", "balanced") == "balanced"
               else "unweighted")
    return (f"TF-IDF {grams} + logistic regression ({weights}), fitted on the "
            f"{t.get('n_train', 'unrecorded')} training texts{oversample_clause(t)}")


def baseline_sentence(name: str, cfg: Mapping[str, Any], training: Mapping[str, Any]) -> str:
    """A transparent baseline: TF-IDF + logistic regression on the training split."""
    t = training
    f1 = t.get("val_macro_f1")
    val = (f"validation macro-F1 {f1:.2f} on {t.get('n_val')} texts" if isinstance(f1, float)
           else "no validation score")
    vocab = t.get("vocabulary_size")
    kept = f"{vocab:,} n-grams" if isinstance(vocab, int) else "the n-grams"
    return (f"{name} is a transparent baseline: {baseline_what(cfg, t)} ({kept} seen in at "
            f"least {_fmt(cfg.get('min_df', 2))} training texts; C = {_fmt(cfg.get('C', 1.0))}; "
            f"seed {_fmt(cfg.get('seed', 13))}; scikit-learn "
            f"{t.get('sklearn_version', 'unrecorded')}; {val}).")


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
            f"{t.get('n_train', 'unrecorded')} prompted training texts{_too_long(t, cfg)} "
            f"({t.get('n_val', 'unrecorded')} for validation; learning rate "
            f"{_fmt(cfg.get('learning_rate'))}, up to {_fmt(cfg.get('epochs'))} epochs, "
            f"{_fmt(t.get('epochs_run'))} run, {stopping}; prompt {cfg.get('prompt')}, hash "
            f"{meta.get('prompt_hash', manifest.get('prompt_hash'))}; seed {cfg.get('seed')}); "
            f"{decoding_sentence(manifest.get('decoding') or {'decoding': 'label scoring'}, n_labels)}.")


def _too_long(training: Mapping[str, Any], cfg: Mapping[str, Any]) -> str:
    """The training texts left out because prompt + answer exceeded max_length (counted by
    textgauge.training.lora.fitting_records), or nothing when none were."""
    n = (training.get("n_too_long") or {}).get("train") or 0
    if not n:
        return ""
    return (f" ({n} more left out: prompt + answer longer than max_length "
            f"{(training.get('adapter_meta') or {}).get('max_length', cfg.get('max_length'))} "
            "tokens)")


def coder_sentence(name: str, cfg: Mapping[str, Any], manifest: Mapping[str, Any],
                   training: Mapping[str, Any], n_labels: int) -> str:
    """The sentence for one machine coder, by the kind that actually ran."""
    if cfg["kind"] == "prompt":
        return prompt_sentence(name, cfg, manifest, n_labels)
    if cfg["kind"] == "lora":
        return lora_sentence(name, cfg, training, manifest, n_labels)
    if cfg["kind"] == "baseline":
        return baseline_sentence(name, cfg, training)
    return encoder_sentence(name, cfg, training)


def comparison_sentence(comparisons: Mapping[str, Any]) -> str:
    """The paired comparisons (comparisons.json of rule compare): how they were made, the
    leave-one-coder-out reference with its counted ties and exclusions, and each verdict."""
    c = comparisons
    kappa = ("Cohen's kappa" if c["weights"] == "unweighted"
             else f"{c['weights']}-weighted Cohen's kappa")
    level = f"{100 * float(c['confidence']):g}%"
    text = (f"Coders were compared in pairs on the same gold items: the difference in {kappa} "
            f"and in macro-F1 of two coders scored against the same reference, with a {level} "
            f"percentile CI from a paired bootstrap over items ({c['n_boot']} replicates; each "
            "item resampled with its reference and both coders' answers).")
    models = list(c["models"])
    if not models or not c["vs_humans"]:
        return text
    ref = c["vs_humans"][models[0]]["reference"]
    if c["n_coders"] < 2:
        return (f"{text} With a single human coder there is no leave-one-out reference, so no "
                "machine coder was compared with human coders.")
    if c["mode"] == "crowd":
        how = ("Because the gold items were coded by a crowd "
               f"({c['n_coders']} coders), each machine coder was compared with the average "
               "coder: every code of an item was compared with the majority "
               "of the other codes on that item (its leave-one-out reference), the machine "
               "coder's answer with the same reference for the same (item, coder) pair, and "
               "items were resampled with all their pairs.")
    else:
        how = ("Each machine coder was compared with the human coders on equal terms: each "
               "human coder was scored against the leave-one-coder-out reference (the majority "
               "code of the other coders on each item, so no coder is scored against their own "
               "codes) and the machine coder against the same reference on the same items, for "
               "each coder and pooled over coders (the average coder).")
    counts = (f" Of {ref['n_pairs'] + ref['n_pairs_excluded']} (item, coder) codes, "
              f"{ref['n_ties']} had a tied leave-one-out majority, broken by a seeded random "
              f"draw among the tied labels, and {ref['n_pairs_excluded']} on "
              f"{ref['n_units_excluded']} items without another code were excluded.")
    verdicts = "; ".join(f"{m}: {c['vs_humans'][m]['verdict']}" for m in models)
    return (f"{text} {how}{counts} Against the human coders (difference in kappa, machine "
            f"minus average coder): {verdicts}.")


# ------------------------------------------------------------------ ordinal codebooks
def kappa_name(weights: str | None) -> str:
    """Cohen's kappa as the methods name it: "quadratic-weighted Cohen's kappa" for an ordinal
    codebook (``weights`` from metrics.json's ``kappa.weights``), else "Cohen's kappa"."""
    if not weights or weights == "unweighted":
        return "Cohen's kappa"
    return f"{weights}-weighted Cohen's kappa"


def kappa_label(weights: str | None) -> str:
    """The short label of the report's tables: "Cohen's κ" or "weighted κ (quadratic)"."""
    if not weights or weights == "unweighted":
        return "Cohen's κ"
    return f"weighted κ ({weights})"


#: the weights' names in the literature (Cohen 1968; Fleiss & Cohen 1973; Cicchetti &
#: Allison 1971)
WEIGHTS_SOURCE = {"quadratic": "Fleiss-Cohen quadratic weights",
                  "linear": "Cicchetti-Allison linear weights"}


def scale_sentence(labels: list[str], weights: str | None) -> str:
    """The methods sentence of an ordinal codebook ("" for a nominal one): the scale, the
    weighted kappa and the ordinal alpha."""
    if not weights or weights == "unweighted":
        return ""
    return (f"The {len(labels)} codes form an ordered scale (lowest to highest: "
            f"{', '.join(labels)}); "
            f"agreement was therefore measured with weighted Cohen's kappa "
            f"({WEIGHTS_SOURCE.get(weights, weights)}; the same weights for every kappa, "
            "human and machine, and in the Wald and the bootstrap intervals) and "
            "Krippendorff's ordinal alpha, and an invalid answer earned no partial credit.")


def ordinal_sentence(o: Mapping[str, Any] | None) -> str:
    """A machine coder's ordinal block (metrics.json ``ordinal``) in one sentence."""
    if not o:
        return ""

    def ci(m: str, scale: float = 100.0, unit: str = "%") -> str:
        d = o[m]
        if d.get("estimate") is None:
            return "n/a"
        lo, hi = d.get("ci_low"), d.get("ci_high")
        fmt = "{:.1f}" if unit == "%" else "{:.2f}"
        band = (f" (CI {fmt.format(scale * lo)} to {fmt.format(scale * hi)})"
                if lo is not None and hi is not None else "")
        return f"{fmt.format(scale * d['estimate'])}{unit}{band}"

    return (f"On the ordinal scale, {ci('exact')} of its answers were exact, "
            f"{ci('off_by_one')} exactly one step away and {ci('within_one')} within one step; "
            f"the mean absolute error was {ci('mae', 1.0, ' scale steps')} over "
            f"{o['n_valid']} valid answers ({o['n_invalid']} invalid answers count as neither "
            f"exact nor one step away; {o['n_boot']} bootstrap replicates).")



def _num(x: Any, fmt: str = ".2f") -> str:
    """A number of an output, or n/a where it is undefined (written as null)."""
    return "n/a" if x is None else format(float(x), fmt)


def revalidation_sentence(rv: Mapping[str, Any]) -> str:
    """Stage 5 in the methods: the fresh sample, its design weights and the difference with
    the gold set (results/revalidation/metrics.json of rule revalidation_metrics)."""
    o = rv["overall"]
    w, g, d = o["weighted"], o["gold"], o["difference"]
    level = f"{100 * float(rv['confidence']):g}%"
    kappa = "Cohen's kappa" if rv["weights"] == "unweighted" else f"{rv['weights']}-weighted kappa"
    text = (
        f"After the full run we drew a fresh sample of {rv['n_sample']} classified texts "
        f"outside the gold and training data, stratified by {rv['model']}'s predicted label "
        f"and stratum ({rv['n_cells']} cells, equal allocation), and had it coded like the "
        f"gold set ({rv['n_evaluated']} texts with a reference label). Weighting each text "
        "by the inverse of its inclusion probability, ")
    if w and g and d:
        kd, fd = d["kappa"], d["macro_f1"]
        wk, wf = w["kappa"], w["macro_f1"]
        text += (
            f"{rv['model']} reached {kappa} = {_num(wk['estimate'])} ({level} CI "
            f"{_num(wk['ci_low'])} to {_num(wk['ci_high'])}; bootstrap within design cells, "
            f"{rv['n_boot']} replicates) and macro-F1 = {_num(wf['estimate'])} "
            f"({_num(wf['ci_low'])} to {_num(wf['ci_high'])}) on the corpus, against "
            f"{_num(g['kappa']['estimate'])} and {_num(g['macro_f1']['estimate'])} on the gold "
            f"set: a difference of {_num(kd['estimate'], '+.2f')} in kappa "
            f"({_num(kd['ci_low'], '+.2f')} to {_num(kd['ci_high'], '+.2f')}) and "
            f"{_num(fd['estimate'], '+.2f')} in macro-F1 ({_num(fd['ci_low'], '+.2f')} to "
            f"{_num(fd['ci_high'], '+.2f')}; independent bootstrap replicates of the two "
            "samples).")
    else:
        text += "no comparison with the gold set was possible (no scored items on one side)."
    return text


def _count(n: Any, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def design_sentence(gold: Mapping[str, Any], models: Sequence[Mapping[str, Any]],
                    config: Mapping[str, Any] | None = None) -> str | None:
    """The gold design in the methods: what drew the sample and how it was analysed, from
    results/gold/sample.json's ``design`` block and the models' metrics.json (``design``,
    ``as_drawn``), so the paragraph states exactly what ran. None for a sample.json from
    before designs (nothing recorded to describe)."""
    block = gold.get("design")
    if not isinstance(block, Mapping):
        return None
    strata = list(gold.get("strata") or [])
    cells = block.get("cells") or []
    if block.get("design") != "model_assisted":
        rates = [float(c["inclusion_prob"]) for c in cells
                 if c.get("inclusion_prob") is not None]
        same = not rates or max(rates) <= 1.05 * min(rates)
        weighted = any((m.get("design") or {}).get("weighted") for m in models)
        top = int(((config or {}).get("gold") or {}).get("min_per_stratum") or 0)
        span = f"sampled at rates from {min(rates):.3g} to {max(rates):.3g}" if rates else ""
        if same:
            how = "each sampled at the same rate up to rounding"
        elif weighted:
            how = span + (f": small strata topped up to {top} texts (gold.min_per_stratum)"
                          if top else ": strata sampled at different rates")
        else:
            how = span + " from rounding in small strata (no stratum a whole item off its share)"
        return (f"The gold sample is a proportional stratified sample of {gold.get('size')} "
                f"texts over the strata {', '.join(strata) or 'none (one stratum)'} "
                f"({_count(len(cells), 'cell', 'cells')}, {how}); "
                + ("every estimate was therefore weighted by the inverse of each item's "
                   "inclusion probability (cell size / coded items of its stratum), with a "
                   "bootstrap within strata (Rao-Wu rescaled), the sample as drawn reported "
                   "beside it." if weighted else "it was analysed as drawn"
                   + (" (self-weighting)." if same else ", without design weights.")))
    fp = block.get("first_pass")
    kind = ((config or {}).get("models", {}).get(fp) or {}).get("kind") if fp else None
    split = block.get("excluded_training_split") or 0
    text = (
        f"The gold sample was designed around the predictions of {fp}"
        + (f" ({kind})" if kind else "")
        + f" on the {block.get('n_eligible')} eligible texts it was not trained on"
        + (f" ({split} texts of its training and validation split were not eligible)"
           if split else "")
        + f": stratified by predicted label x {block.get('confidence_bands')} confidence bands "
        "(quantiles of its confidence within each predicted label)"
        + (f" x {', '.join(strata)}" if strata else "")
        + f" into {len(cells)} cells, at least {block.get('min_per_label')} texts per predicted "
        "label, the rest allocated to cells in proportion to N_c sqrt(e_c (1 - e_c)) (N_c "
        "texts in the cell, e_c the mean of 1 - confidence there), so that low-confidence "
        f"texts were over-sampled; {gold.get('size')} texts were drawn (seed "
        f"{gold.get('seed')}). Each coded item was weighted by the inverse of its inclusion "
        "probability (cell size / coded items of its cell: adjusted within cells for items "
        "without a reference label), and every CI comes from a bootstrap within design cells "
        "(Rao-Wu rescaled).")
    drawn = [m for m in models if m.get("as_drawn")]
    if drawn:
        parts = [f"{m['model']} kappa {_num(m['kappa']['kappa'])} weighted vs "
                 f"{_num(m['as_drawn']['kappa']['kappa'])} as drawn, macro-F1 "
                 f"{_num(m['macro_f1']['estimate'])} vs "
                 f"{_num(m['as_drawn']['macro_f1']['estimate'])}" for m in drawn]
        text += (" The sample as drawn (unweighted) is reported beside the weighted estimates ("
                 + "; ".join(parts) + ").")
    lost = {(m.get("design") or {}).get("texts_not_represented") for m in models
            if (m.get("design") or {}).get("weighted")}
    lost.discard(None)
    if lost:
        n = max(lost)
        text += (f" {_count(n, 'text', 'texts')} in cells without a coded item "
                 f"{'is' if n == 1 else 'are'} not represented by the estimates."
                 if n else " Every design cell had a coded item: all eligible texts are "
                 "represented.")
    return text
