"""Steps of workflow/rules/validate.smk: every coder, human or machine, held to the same statistics.

* :func:`human_agreement` (rule ``human_agreement``): the human ceiling, human-human agreement
  on the gold sample (with simulated coders, the known true agreement beside the estimate).
* :func:`evaluate` (rule ``evaluate``): one machine coder against the reference labels and
  against each human coder, with CIs, per class and per stratum, and the decision against
  ``kappa_threshold``.
* :func:`compare` (rule ``compare``): paired differences of the coders on the same gold items,
  machine against machine and machine against the human coders on equal terms
  (leave-one-coder-out references; :mod:`textgauge.stats.paired`).

Every statistic comes from :mod:`textgauge.stats`. Invalid/failed answers, and gold items the
coder never answered, count as errors (the one rule of
:mod:`textgauge.stats.classification`); ``coverage`` (share of valid answers) and the status
counts are written beside the metrics, so a coder that fails on hard items cannot look better
than it is. Every interval records its ``confidence`` and ``n_boot``.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from textgauge.audits.gold_alignment import align_with_gold
from textgauge.data.sheets import write_csv
from textgauge.errors import InputDataError
from textgauge.io import update_jsonl, write_json_atomic
from textgauge.reporting.ledger import ledger_entry, record_evaluation
from textgauge.stats import (
    INVALID_LABEL,
    classification_summary,
    decide,
    kappa_summary,
    kappa_weights_for,
    krippendorff_alpha_long,
    macro_f1_summary,
    ordinal_summary,
    per_class_f1_ci,
)
from textgauge.stats import (
    per_stratum as per_stratum_table,
)
from textgauge.stats.alpha import weighted_alpha
from textgauge.stats.design import GoldDesign, gold_design, weighted_design
from textgauge.stats.weighted import BOOTSTRAP_WITHIN_CELLS, weighted_metrics
from textgauge.stats.weighted_summary import (
    classification_block,
    confusion_frame,
    kappa_block,
    macro_f1_block,
    ordinal_block,
    per_class_table,
)

log = logging.getLogger("textgauge")

#: at most this many coders are compared pairwise (crowd codes: the busiest ones)
MAX_PAIRWISE_CODERS = 12
#: a pair of coders needs this many common items to be compared
MIN_PAIR_ITEMS = 10

#: how invalid answers are handled, written into every metrics file
INVALID_RULE = ("invalid/failed answers and unanswered gold items count as errors (an extra "
                "confusion column, never equal to the reference); coverage is the share of "
                "valid answers")
#: which labels macro-F1 averages over, written into every metrics file
MACRO_F1_RULE = ("mean of per-class F1 over the codebook labels present in the reference or "
                 "the answers of the items scored")


def _read_codes(path: str) -> pd.DataFrame:
    codes = pd.read_parquet(path)
    return codes.loc[codes["label"] != ""]


def _design_record(d: GoldDesign) -> dict[str, Any]:
    """metrics.json's ``design`` block: gold_design's info, plus how intervals were made."""
    info = dict(d.info)
    if d.weighted:
        info["bootstrap"] = f"percentile, {BOOTSTRAP_WITHIN_CELLS}"
    return info


def _weighted_kappa(y1: Any, y2: Any, ids: Any, sample: pd.DataFrame, labels: list[str],
                    weights: str | None, kw: Mapping[str, Any]) -> dict[str, Any]:
    """Design-weighted kappa of ``y2`` against ``y1`` on the gold items ``ids`` (their own
    gold_design: the nonresponse adjustment of exactly these items)."""
    d = gold_design(pd.Series(list(ids)), sample)
    wm = weighted_metrics(list(y1), list(y2), labels, design_weights=d.weights, cells=d.cells,
                          weights=weights, n_boot=max(int(kw["bootstrap"]), 1),
                          seed=kw["seed"], confidence=kw["confidence"])
    return kappa_block(wm, labels, weights)


# ------------------------------------------------------------------ the human ceiling
def _scale_record(scale: str | None, kappa_weights: str | None) -> dict[str, Any]:
    """What metrics.json records about the codebook's scale (None weights: unweighted)."""
    weights = kappa_weights_for(scale, kappa_weights)
    return {"scale": scale or "nominal", "kappa_weights": weights,
            "alpha_level": "ordinal" if weights else "nominal"}


def human_agreement(*, codes: str, sample: str, truth: str | None, coders: str | None,
                    metrics: str, pairwise: str, labels: Sequence[str], seed: int,
                    kappa_threshold: float, confidence: float, bootstrap: int,
                    scale: str = "nominal", kappa_weights: str | None = None) -> dict:
    """Krippendorff's alpha over all coders and Cohen's kappa for each pair of coders.

    For an ordinal codebook (``scale`` "ordinal", ``labels`` in scale order) the kappas are
    weighted with ``kappa_weights`` and alpha is the ordinal alpha (:func:`_scale_record`).

    ``truth`` and ``coders`` (the simulated truth and the coders' confusion matrices) are
    given for the synthetic example only: the known population kappas go beside the
    estimates. ``sample`` is an input so the step reruns with a new gold sample.
    """
    labels = list(labels)
    sc = _scale_record(scale, kappa_weights)
    weights = sc["kappa_weights"]
    codes_df = _read_codes(codes)
    gold_sample = pd.read_parquet(sample)
    n_outside = 0
    if weighted_design(gold_sample):
        # design weights exist for gold items only: codes of other items cannot be weighted
        on_gold = codes_df["id"].astype(str).isin(set(gold_sample["id"].astype(str)))
        n_outside = int(codes_df.loc[~on_gold, "id"].nunique())
        codes_df = codes_df.loc[on_gold]
    coder_names = list(dict.fromkeys(codes_df["coder"]))
    per_item = codes_df.groupby("id")["coder"].size()
    d = gold_design(pd.Series(per_item.index[per_item >= 2].astype(str)), gold_sample)
    alpha = krippendorff_alpha_long(codes_df, unit="id", coder="coder", label="label",
                                    level=sc["alpha_level"], n_boot=bootstrap, seed=seed,
                                    confidence=confidence, categories=labels)
    wide = codes_df.pivot(index="id", columns="coder", values="label")
    rows, rows_drawn = [], []
    kw = {"confidence": confidence, "bootstrap": bootstrap, "seed": seed}
    if len(coder_names) <= MAX_PAIRWISE_CODERS:
        for a, b in itertools.combinations(coder_names, 2):
            both = wide[[a, b]].dropna()
            if len(both) < MIN_PAIR_ITEMS:
                continue
            plain = {"coder_1": a, "coder_2": b, **kappa_summary(
                both[a], both[b], labels, **kw, weights=weights)}
            rows_drawn.append(plain)
            rows.append({"coder_1": a, "coder_2": b, **_weighted_kappa(
                both[a], both[b], both.index.astype(str), gold_sample, labels, weights, kw)}
                if d.weighted else plain)
    pairs = pd.DataFrame(rows)
    write_csv(pairs, pairwise)
    alpha_drawn = alpha
    if d.weighted:
        unit_wide = wide.loc[per_item.index[per_item >= 2]]  # the items d weights, in order
        alpha = weighted_alpha(unit_wide.T.to_numpy(dtype=object), d.weights, d.cells,
                               level=sc["alpha_level"], n_boot=bootstrap, seed=seed,
                               confidence=confidence, categories=labels)
    out: dict[str, Any] = {
        "coders": coder_names, "n_items": int(wide.shape[0]),
        "codes_per_item": float(codes_df.groupby("id").size().mean()),
        "alpha": alpha.to_dict(), "pairwise": pairs.to_dict("records"),
        "kappa_threshold": kappa_threshold, "confidence": confidence, "n_boot": bootstrap,
        **sc,
    }
    if len(pairs):
        out["ceiling_kappa"] = float(pairs["kappa"].mean())
    out["design"] = _design_record(d)
    out["as_drawn"] = None
    if d.weighted:
        drawn = pd.DataFrame(rows_drawn)
        out["as_drawn"] = {"alpha": alpha_drawn.to_dict(), "pairwise": drawn.to_dict("records"),
                           "ceiling_kappa": float(drawn["kappa"].mean()) if len(drawn)
                           else None}
        out["design"]["codes_outside_gold"] = n_outside
    if truth and coders:
        out["simulated_truth"] = simulated_truth(codes_df, truth, coders, labels,
                                                 confidence=confidence, bootstrap=bootstrap,
                                                 seed=seed, weights=weights)
    write_json_atomic(out, metrics)
    log.info("human agreement: alpha=%.3f [%.3f, %.3f] over %d items, %d coders",
             alpha.estimate, alpha.ci_low, alpha.ci_high, wide.shape[0], len(coder_names))
    return out


def _prompt_hash(preds: pd.DataFrame) -> str | None:
    """The prompt hash the predictions were made with (None for an encoder)."""
    if "prompt_hash" not in preds:
        return None
    hashes = sorted({str(h) for h in preds["prompt_hash"].dropna()})
    return "+".join(hashes) or None


def simulated_truth(codes: pd.DataFrame, truth: str, coders: str, labels: Sequence[str], *,
                    confidence: float, bootstrap: int, seed: int,
                    weights: str | None = None) -> dict:
    """Known population agreement of the simulated coders, next to the sample estimates
    (both weighted with ``weights`` for an ordinal codebook)."""
    from textgauge.data.example import read_confusions, true_accuracy_kappa, true_kappa

    true_label = pd.read_csv(truth, dtype=str).set_index("id")["true_label"]
    mats = read_confusions(coders, labels)
    prevalence = (true_label.value_counts(normalize=True)
                  .reindex(list(labels), fill_value=0).to_numpy())
    wide = codes.pivot(index="id", columns="coder", values="label")
    out: dict[str, Any] = {"prevalence": dict(zip(labels, prevalence.round(4).tolist(),
                                                  strict=True)), "pairs": [], "coders": []}
    names = [c for c in wide.columns if c in mats]
    kw = {"confidence": confidence, "bootstrap": bootstrap, "seed": seed, "weights": weights}
    for a, b in itertools.combinations(names, 2):
        both = wide[[a, b]].dropna()
        est = kappa_summary(both[a], both[b], labels, **kw)
        out["pairs"].append({"coder_1": a, "coder_2": b, "true_kappa": true_kappa(
            prevalence, mats[a], mats[b], weights), **est})
    for c in names:
        col = wide[c].dropna()
        est = kappa_summary(true_label.loc[col.index], col, labels, **kw)
        out["coders"].append({"coder": c, "true_kappa_vs_truth":
                              true_accuracy_kappa(prevalence, mats[c], weights), **est})
    return out


# ------------------------------------------------------------------ machine coders
def evaluate(*, model: str, predictions: str, reference: str, codes: str, sample: str,
             human: str, metrics: str, per_class: str, confusion: str, per_stratum: str,
             vs_coders: str, labels: Sequence[str], strata: Sequence[str], seed: int,
             kappa_threshold: float, confidence: float, bootstrap: int,
             training: str | None = None, settings: Mapping[str, Any] | None = None,
             ledger: str | None = None, evaluated_on: str = "gold",
             scale: str = "nominal", kappa_weights: str | None = None) -> dict:
    """One machine coder on the gold set: metrics.json and the tidy tables beside it.

    ``settings`` (the model's answer settings), the prompt hash of the predictions and, for a
    fine-tuned coder, its ``training`` summary identify the coder configuration: its
    ``ledger_key`` goes into metrics.json, and with ``ledger`` (a JSONL file that outlives
    runs, not an output) the evaluation is recorded there (:mod:`textgauge.reporting.ledger`).

    Rule evaluate_development (workflow/rules/development.smk) passes ``evaluated_on``
    "development", no ``ledger``, and the development sample's own codes, reference and human
    agreement: metrics.json says which sample it measured and where its human ceiling is from.

    For an ordinal codebook (``scale`` "ordinal", ``labels`` in scale order) every kappa
    (overall, against each coder, per stratum) is weighted with ``kappa_weights``, the
    confusion matrix is in scale order, and metrics.json gains an ``ordinal`` block
    (:func:`textgauge.stats.ordinal_summary`: exact, off-by-one, within-one, MAE with CIs).
    """
    labels = list(labels)
    sc = _scale_record(scale, kappa_weights)
    weights = sc["kappa_weights"]
    preds = pd.read_parquet(predictions)
    ref = pd.read_parquet(reference)
    gold_sample = pd.read_parquet(sample)
    strata = [s for s in strata if s in gold_sample.columns]
    gold = ref[["id", "reference"]].merge(gold_sample[["id", *strata]], on="id")
    if not gold["id"].astype(str).isin(set(preds["id"].astype(str))).any():
        raise InputDataError(f"{model}: no prediction for any gold item; were predictions made "
                             "on another corpus or sample?")
    scored = align_with_gold(gold, preds)  # invalid/failed/unanswered -> INVALID_LABEL
    status = gold[["id"]].astype(str).merge(
        preds[["id", "status"]].assign(id=preds["id"].astype(str)), on="id", how="left")
    status_counts = status["status"].fillna("missing").value_counts().to_dict()
    valid = scored["label"] != INVALID_LABEL
    y_true, y_pred = scored["reference"], scored["label"]
    kw = {"confidence": confidence, "bootstrap": bootstrap, "seed": seed}

    d = gold_design(scored, gold_sample)
    k = kappa_summary(y_true, y_pred, labels, **kw, weights=weights)
    f1 = macro_f1_summary(y_true, y_pred, labels, **kw)
    cls, per_class_df, cm = classification_summary(y_true, y_pred, labels)
    if len(scored) >= MIN_PAIR_ITEMS and bootstrap:
        per_class_df = per_class_df.merge(per_class_f1_ci(y_true, y_pred, labels, **kw),
                                          on="label")
    as_drawn = None
    if d.weighted:
        # the corpus-level estimates take the headline keys; the sample as drawn goes beside
        as_drawn = {"kappa": k, "macro_f1": f1,
                    "per_class": per_class_df.to_dict("records")}
        wm = weighted_metrics(y_true, y_pred, labels, design_weights=d.weights, cells=d.cells,
                              weights=weights, n_boot=max(int(bootstrap), 1), seed=seed,
                              confidence=confidence)
        k, f1 = kappa_block(wm, labels, weights), macro_f1_block(wm)
        cls, per_class_df, cm = (classification_block(wm, labels), per_class_table(wm, labels),
                                 confusion_frame(wm))
    write_csv(per_class_df, per_class)
    write_csv(cm, confusion, index=True)

    # against each human coder, next to human-human agreement
    wide = _read_codes(codes).pivot(index="id", columns="coder", values="label")
    wide.index = wide.index.astype(str)
    answer = scored.set_index("id")["label"]
    answer.index = answer.index.astype(str)
    vs = []
    # with many coders (crowd codes) compare with those who coded the most gold items
    busiest = wide.notna().sum().sort_values(ascending=False, kind="stable").index
    for c in busiest[:MAX_PAIRWISE_CODERS]:
        both = wide[c].dropna().to_frame("human").join(answer.rename("model"), how="inner")
        if len(both) >= MIN_PAIR_ITEMS:
            vs.append({"model": model, "coder": c,
                       **(_weighted_kappa(both["human"], both["model"], both.index,
                                          gold_sample, labels, weights, kw) if d.weighted
                          else kappa_summary(both["human"], both["model"], labels, **kw,
                                             weights=weights))})
    write_csv(pd.DataFrame(vs), vs_coders)

    table = per_stratum_table(scored, strata, labels, kappa_threshold=kappa_threshold, **kw,
                              weights=weights, design_weights=d.weights, cells=d.cells)
    write_csv(table, per_stratum)

    human_metrics = json.loads(Path(human).read_text(encoding="utf-8"))
    conf = scored.loc[valid, "confidence"]
    out = {
        "model": model, "evaluated_on": evaluated_on,
        # the sample as drawn, the items with a reference label (ties/uncoded excluded by
        # import_codes are the difference, counted in gold/codes.json), the items scored
        "n_gold": int(len(gold_sample)), "n_reference": int(len(gold)),
        "n_evaluated": int(len(scored)),
        "n_valid": int(valid.sum()),
        "coverage": float(valid.mean()) if len(scored) else 0.0,
        "status_counts": status_counts, "kappa": k, "macro_f1": f1,
        "classification": cls, "per_class": per_class_df.to_dict("records"),
        "vs_coders": vs, "per_stratum": table.to_dict("records"),
        "kappa_threshold": kappa_threshold, "decision": decide(k, kappa_threshold),
        "confidence": confidence, "n_boot": bootstrap,
        "invalid_answers": INVALID_RULE, "macro_f1_labels": MACRO_F1_RULE,
        "human_ceiling": {"alpha": human_metrics.get("alpha", {}).get("estimate"),
                          "kappa": human_metrics.get("ceiling_kappa"),
                          "from": f"the human codes of the {evaluated_on} sample"},
        "mean_confidence": float(conf.mean()) if conf.notna().any() else None,
        **sc, "design": _design_record(d), "as_drawn": as_drawn,
    }
    # an ordinal codebook: how far off, in scale steps (None for a nominal one)
    out["ordinal"] = ordinal_summary(y_true, y_pred, labels, **kw) if weights else None
    if weights and d.weighted:
        out["as_drawn"]["ordinal"] = out["ordinal"]
        out["ordinal"] = ordinal_block(y_true, y_pred, labels, design_weights=d.weights,
                                       cells=d.cells, **kw)
    entry = ledger_entry(model, out, prompt_hash=_prompt_hash(preds), settings=settings,
                         training=json.loads(Path(training).read_text(encoding="utf-8"))
                         if training else None)
    out["ledger_key"] = entry["key"]
    write_json_atomic(out, metrics)
    if ledger and evaluated_on == "gold":
        recorded = update_jsonl(ledger, lambda entries: record_evaluation(entries, entry))
        n_mine = sum(e.get("model") == model for e in recorded)
        log.info("%s: gold-set ledger %s: %d configuration(s) of this model", model, ledger,
                 n_mine)
    log.info("%s: kappa=%.3f [%.3f, %.3f], macro-F1=%.3f, n=%d (coverage %.1f%%) -> %s", model,
             k["kappa"], k["ci_low"], k["ci_high"], f1["estimate"], len(scored),
             100 * out["coverage"], out["decision"])
    return out


# ------------------------------------------------------------------ paired comparisons
#: how the comparisons are made, written into comparisons.json (the methods text reads it)
COMPARE_RULE = ("paired bootstrap over gold items (each item carries its reference and both "
                "coders' answers); percentile CI of the difference")
#: the same, for a model-assisted gold sample (comparisons.json says which was used)
COMPARE_RULE_WEIGHTED = ("design-weighted paired bootstrap: each gold item weighted by its "
                         "design weight, items resampled within design cells (Rao-Wu "
                         "rescaled); percentile CI of the difference")


def _coder_mode(codes: pd.DataFrame) -> tuple[str, str]:
    """"pairwise" (each human coder on their own) or "crowd" (the average coder), and why."""
    wide = codes.pivot(index="id", columns="coder", values="label")
    n = wide.shape[1]
    if n < 2:
        return "pairwise", ("a single human coder: there is no leave-one-out reference, so no "
                            "machine coder is compared with human coders")
    if n > MAX_PAIRWISE_CODERS:
        return "crowd", (f"{n} coders (more than {MAX_PAIRWISE_CODERS}): compared with the "
                         "average coder")
    coded = wide.notna().astype(int)
    shared = coded.T @ coded
    best = max((int(shared.iloc[i, j]) for i in range(n) for j in range(i + 1, n)), default=0)
    if best < MIN_PAIR_ITEMS:
        return "crowd", (f"no two coders share {MIN_PAIR_ITEMS} items (at most {best}): "
                         "compared with the average coder")
    return "pairwise", f"{n} coders sharing items: each coder on their own, and the average"


def _finding(a: str, b: str, ci_low: float, ci_high: float) -> str:
    """What a machine-machine CI says, in words."""
    if not (pd.notna(ci_low) and pd.notna(ci_high)):
        return "undetermined"
    if ci_low > 0:
        return f"{a} above {b}"
    if ci_high < 0:
        return f"{a} below {b}"
    return "no difference shown"


def compare(*, predictions: str | Sequence[str], reference: str, codes: str, sample: str,
            comparisons: str, table: str, models: Sequence[str], labels: Sequence[str],
            seed: int, confidence: float, bootstrap: int, scale: str | None = "nominal",
            kappa_weights: str | None = "quadratic") -> dict:
    """Paired comparisons on the gold items: every pair of machine coders (difference in kappa
    and macro-F1 against the reference) and every machine coder against the human coders on
    equal terms (leave-one-coder-out references; :mod:`textgauge.stats.paired`).

    With more than :data:`MAX_PAIRWISE_CODERS` coders, or no two coders sharing
    :data:`MIN_PAIR_ITEMS` items (crowd codes), the model is compared with the average
    coder only. Items are those of the gold reference (as in rule evaluate); codes of other
    items, leave-one-out ties and items without another code are counted in the output.
    """
    from textgauge.stats import (
        human_model_comparison,
        kappa_weights_for,
        paired_comparison,
        verdict_vs_humans,
    )

    gold_sample = pd.read_parquet(sample)
    labels, models = list(labels), list(models)
    paths = [predictions] if isinstance(predictions, str) else list(predictions)
    if len(paths) != len(models):
        raise InputDataError(f"compare got {len(paths)} prediction files for {len(models)} "
                             "models; pass one per model, in the same order.")
    weights = kappa_weights_for(scale, kappa_weights)
    gold = pd.read_parquet(reference)[["id", "reference"]]
    answers = {}
    for m, p in zip(models, paths, strict=True):
        scored = align_with_gold(gold, pd.read_parquet(p))  # invalid/unanswered -> errors
        answers[m] = scored.set_index("id")
    kw = {"weights": weights, "confidence": confidence, "n_boot": int(bootstrap), "seed": seed}
    rows: list[dict[str, Any]] = []
    d = gold_design(gold["id"].astype(str).drop_duplicates(), gold_sample)

    def design(ids: Sequence[str]) -> tuple[Any, Any] | None:
        """Weights and cells of the items of one comparison (None: as drawn)."""
        g = gold_design(pd.Series(list(ids), dtype=str), gold_sample)
        return (g.weights, g.cells) if g.weighted else None

    def tidy(kind: str, a: str, b: str, res: Mapping[str, Any], n_ties: int | None) -> None:
        """One row per statistic; its verdict read off that statistic's own CI."""
        for stat in ("kappa", "macro_f1"):
            r = res[stat]
            verdict = (_finding(a, b, r["ci_low"], r["ci_high"]) if kind == "machine-machine"
                       else verdict_vs_humans(r["ci_low"], r["ci_high"]))
            rows.append({"kind": kind, "coder_a": a, "coder_b": b, "statistic": stat,
                         "estimate_a": r["estimate_a"], "estimate_b": r["estimate_b"],
                         "difference": r["difference"], "ci_low": r["ci_low"],
                         "ci_high": r["ci_high"], "n": r["n"], "n_units": r["n_units"],
                         "n_ties": n_ties, "weights": r["weights"], "verdict": verdict,
                         "confidence": r["confidence"], "n_boot": r["n_boot"]})

    machine = []
    for a, b in itertools.combinations(models, 2):
        both = answers[a][["reference", "label"]].join(
            answers[b]["label"].rename("label_b"))
        dw = design(both.index.astype(str)) if d.weighted else None
        res = paired_comparison(both["reference"], both["label"], both["label_b"], labels,
                                **kw, **({"design_weights": dw[0], "cells": dw[1]} if dw
                                         else {}))
        finding = _finding(a, b, res["kappa"]["ci_low"], res["kappa"]["ci_high"])
        machine.append({"coder_a": a, "coder_b": b, "n": int(len(both)), **res,
                        "finding": finding})
        tidy("machine-machine", a, b, res, None)

    human_codes = _read_codes(codes)
    human_codes = human_codes.assign(id=human_codes["id"].astype(str))
    on_gold = human_codes["id"].isin(set(gold["id"].astype(str)))
    n_outside = int(human_codes.loc[~on_gold, "id"].nunique())
    human_codes = human_codes.loc[on_gold]
    mode, why = _coder_mode(human_codes) if len(human_codes) else ("pairwise", "no human code")
    vs_humans = {}
    for m in models:
        out = human_model_comparison(human_codes, answers[m]["label"], labels, mode=mode,
                                     min_items=MIN_PAIR_ITEMS, **kw,
                                     design=design if d.weighted else None)
        vs_humans[m] = out
        for c in out["comparisons"]:
            tidy("machine-human", m, c["coder"], c, c["n_ties"])
    result = {
        "models": models, "labels": labels, "mode": mode, "mode_reason": why,
        "n_coders": int(human_codes["coder"].nunique()), "n_gold_items": int(len(gold)),
        "codes_outside_gold": n_outside, "weights": weights or "unweighted",
        "confidence": confidence, "n_boot": int(bootstrap), "seed": seed,
        "method": COMPARE_RULE_WEIGHTED if d.weighted else COMPARE_RULE,
        "machine_pairs": machine, "vs_humans": vs_humans, "design": _design_record(d),
    }
    write_json_atomic(result, comparisons)
    tidy_table = pd.DataFrame(rows)
    if len(tidy_table):
        tidy_table["n_ties"] = tidy_table["n_ties"].astype("Int64")  # none for machine pairs
    write_csv(tidy_table, table)
    for m in models:
        log.info("%s vs human coders (%s mode): %s", m, mode, vs_humans[m]["verdict"])
    return result
