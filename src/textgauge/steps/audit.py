"""Steps of workflow/rules/audit.smk: the audits beyond one kappa.

* :func:`audit_model`: per machine coder, the error-analysis sheet, calibration and the
  human review queue, class asymmetry, the per-stratum table (read from the evaluation, so
  the audit and ``validation/{model}/per_stratum.csv`` are the same numbers) and corpus
  prevalence corrected for the coder's errors (PPI/DSL), for the texts the gold sample could
  have drawn (labelled training data left out) and per stratum of every corpus stratum.
* :func:`positional_audit`: per prompted coder, the same gold items under other label orders.
* :func:`ensemble`: the majority vote of the machine coders, scored like any coder.
* :func:`revalidation_sample`: stage 5, a fresh stratified sample of the classified corpus.

Statistics come from :mod:`textgauge.stats` and the audits of :mod:`textgauge.audits`; every
interval records ``confidence`` and ``n_boot``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from textgauge.audits import error_sheet as errorsheet
from textgauge.audits import review_queue as review
from textgauge.audits.asymmetry import class_asymmetry
from textgauge.audits.ensemble import agreement_rate, majority_vote
from textgauge.audits.gold_alignment import align_with_gold
from textgauge.audits.positional import positional_audit as run_positional_audit
from textgauge.audits.positional import weighted_flip_rates
from textgauge.audits.prevalence import corrected_prevalence, population_counts
from textgauge.audits.revalidation import revalidation_sample as draw_revalidation_sample
from textgauge.audits.strata import flagged_strata, stratum_shift
from textgauge.audits.weighting import AuditDesign, audit_design
from textgauge.data.sheets import read_csv as read_sheet_csv
from textgauge.data.sheets import write_csv
from textgauge.io import write_json_atomic, write_parquet_atomic
from textgauge.stats import (
    calibration_bins,
    coverage_accuracy_curve,
    ece_if_calibrated,
    expected_calibration_error,
    kappa_summary,
    kappa_weights_for,
    maximum_calibration_error,
)
from textgauge.stats.inputs import to_builtin

log = logging.getLogger("textgauge")

#: at most this many points of the coverage-accuracy curve go into audit.json
CURVE_POINTS = 60


def read_gold(reference: str, sample: str) -> pd.DataFrame:
    """The gold items: reference labels joined to the sample (text, strata) by id."""
    ref = pd.read_parquet(reference)
    gold_sample = pd.read_parquet(sample)
    return ref[["id", "reference"]].merge(gold_sample, on="id", how="left")


def prevalence_population(corpus_ids: Sequence[str], gold_ids: Sequence[str],
                          training_ids: str | None, training_id_column: str = "id",
                          exclude_from_gold: bool = True) -> tuple[list[str], dict[str, Any]]:
    """The ids left out of the corrected prevalence, and the population record for audit.json.

    The population is what the gold sample could have drawn: the corpus less the ids the gold
    sampler excluded (:func:`textgauge.steps.gold.sample_gold`: the labelled training data,
    ``training.labelled``, unless ``training.exclude_from_gold`` is false).
    """
    from textgauge.steps.gold import labelled_ids

    labelled = labelled_ids(training_ids, training_id_column) if training_ids else []
    exclude = labelled if exclude_from_gold else []
    record: dict[str, Any] = {**population_counts(corpus_ids, exclude),
                              "excluded_reason": None, "training_in_population": 0,
                              "note": None}
    if record["excluded_training"]:
        record["excluded_reason"] = (
            "labelled training data (training.labelled): the gold sample excludes them "
            "(inclusion probability 0)")
    elif labelled:
        inside = set(map(str, corpus_ids)) & (set(labelled) - set(map(str, gold_ids)))
        record["training_in_population"] = len(inside)
        if inside:
            record["note"] = (
                f"training.exclude_from_gold is false: the gold sample was drawn from every "
                f"text, so the population includes {len(inside)} labelled training text(s); "
                f"a coder fine-tuned on them is likely more accurate there than on the gold "
                f"sample, which the correction cannot see.")
    return exclude, record


def audit_model(*, model: str, predictions: str, reference: str, codes: str, sample: str,
                corpus: str, per_stratum: str, audit: str, error_sheet: str, review_queue: str,
                prevalence: str, labels: Sequence[str], strata: Sequence[str], scope: str,
                review_fraction: float, kappa_threshold: float, confidence: float,
                bootstrap: int, seed: int, training_ids: str | None = None,
                training_id_column: str = "id", exclude_from_gold: bool = True,
                scale: str = "nominal", kappa_weights: str | None = None) -> dict:
    """Error sheet, calibration, review queue, asymmetry, strata and corrected prevalence.

    ``training_ids`` is the labelled training data (``training.labelled``; ids in
    ``training_id_column``): the gold sampler excludes those ids (unless
    ``exclude_from_gold`` is false), so the corrected prevalence leaves them out too and
    estimates the share in the population the gold sample was drawn from, per stratum of
    every ``strata`` variable (``corpus.strata``).
    """
    preds = pd.read_parquet(predictions)
    gold = read_gold(reference, sample)
    codes_df = pd.read_parquet(codes)
    corpus_df = pd.read_parquet(corpus)
    prevalence_strata = [s for s in strata if s in corpus_df.columns]
    strata = [s for s in strata if s in gold.columns]
    gold_preds = preds.loc[preds["id"].isin(set(gold["id"]))]
    kw = {"confidence": confidence, "bootstrap": bootstrap, "seed": seed}

    sheet = errorsheet.build_error_sheet(gold, gold_preds, human_codes=codes_df,
                                         texts=gold[["id", "text"]])
    errorsheet.write_error_sheet(sheet, error_sheet)

    corr = review.gold_correctness(gold, gold_preds)
    # the gold design (textgauge.stats.design.gold_design): None weights when proportional
    # (the items scored: those with a reference label, as align_with_gold keeps them)
    design = audit_design(gold.loc[gold["reference"].notna()], pd.read_parquet(sample))
    w_corr = design.weights_for(corr["id"])
    kappa_w = kappa_weights_for(scale, kappa_weights)
    result: dict[str, Any] = {"model": model, "n_errors": int(len(sheet)),
                              "n_gold": int(len(gold)), "confidence": confidence,
                              "n_boot": bootstrap, "kappa_threshold": kappa_threshold}
    drawn: dict[str, Any] = {}
    if corr["confidence"].notna().any():
        result.update(calibration_audit(corr, seed, w_corr))
        after = review.kappa_after_review(preds, gold, review_fraction, labels=labels, **kw,
                                          weights=kappa_w, design=design)
        result["review"] = review_record(after, review_fraction)
        # a calibrated coder (the encoder: temperature scaling) keeps its raw confidence:
        # the same audit before calibration, beside it (None for a coder without one)
        result["calibration"].update(
            {"calibrated": False, "ece_uncalibrated": None, "mce_uncalibrated": None,
             "review_uncalibrated": None})
        if "confidence_raw" in preds.columns and preds["confidence_raw"].notna().any():
            result["calibration"].update(uncalibrated(preds, gold, review_fraction, labels,
                                                      kw, kappa_w, design))
        if design.weighted:  # the sample as drawn, beside the corpus estimates
            drawn.update(calibration_audit(corr, seed, None))
            drawn["review"] = review_record(review.kappa_after_review(
                preds, gold, review_fraction, labels=labels, **kw, weights=kappa_w),
                review_fraction)
    queue = review.review_queue(
        preds.merge(corpus_df[["id", "text", *strata]], on="id", how="left"), review_fraction,
        exclude_ids=gold["id"], extra_columns=["text", *strata])
    write_csv(queue, review_queue)
    result["review_queue"] = {"n": int(len(queue)), "of": int(queue.attrs.get("n_corpus", 0)),
                              "threshold": queue.attrs.get("threshold")}

    result["asymmetry"] = class_asymmetry(gold, gold_preds, confidence=confidence,
                                          design=design).to_dict("records")
    if design.weighted:
        drawn["asymmetry"] = class_asymmetry(gold, gold_preds,
                                             confidence=confidence).to_dict("records")
    # the evaluation's per-stratum table: one computation, the same numbers everywhere
    strata_table = read_sheet_csv(per_stratum, keep_default_na=False,
                               na_values=[""]).astype({"stratum": str})
    result["strata"] = strata_table.to_dict("records")
    result["flagged_strata"] = flagged_strata(strata_table)
    # shift, apart from the flag: each stratum against the rest of gold (a difference with CI)
    aligned = align_with_gold(gold, gold_preds)
    result["shift"] = to_builtin(stratum_shift(
        aligned, strata, list(labels), weights=kappa_w, bootstrap=bootstrap,
        confidence=confidence, seed=seed, design=design).to_dict("records"))
    if design.weighted:
        drawn["shift"] = to_builtin(stratum_shift(
            aligned, strata, list(labels), weights=kappa_w, bootstrap=bootstrap,
            confidence=confidence, seed=seed).to_dict("records"))

    if scope == "corpus" and len(gold_preds) == len(gold):
        exclude, population = prevalence_population(
            preds["id"].astype(str), gold["id"].astype(str), training_ids,
            training_id_column, exclude_from_gold)
        est = corrected_prevalence(preds, prevalence_gold(gold, design),
                                   strata=prevalence_strata, metadata=corpus_df,
                                   labels=list(labels), confidence=confidence,
                                   exclude_ids=exclude)
        write_csv(est, prevalence)
        result["prevalence"] = est.to_dict("records")
        if design.weighted:  # the gold sample taken as a simple random sample
            drawn["prevalence"] = corrected_prevalence(
                preds, gold.drop(columns=["inclusion_prob"], errors="ignore"),
                strata=prevalence_strata, metadata=corpus_df, labels=list(labels),
                confidence=confidence, exclude_ids=exclude,
                methods=("ppi", "dsl")).to_dict("records")
        result["prevalence_population"] = {**population, "strata": prevalence_strata,
                                           "confidence": confidence}
        log.info("%s prevalence: %d of %d corpus texts (%d labelled training texts left "
                 "out), strata %s", model, population["population"], population["corpus"],
                 population["excluded_training"], prevalence_strata or "none")
    else:
        write_csv(pd.DataFrame(), prevalence)
        result["prevalence"] = []
        result["prevalence_note"] = ("Corrected prevalence needs predictions for the whole "
                                     "corpus (scope: corpus).")
    result["design"] = to_builtin(design.info)
    result["as_drawn"] = to_builtin(drawn) if design.weighted else None
    write_json_atomic(result, audit)
    over = [r["label"] for r in result["asymmetry"] if r.get("flag")]
    log.info("%s audit: %d errors on gold, review queue %d texts, asymmetry flags %s, "
             "flagged strata %s", model, len(sheet), len(queue), over or "none",
             [f"{r['stratum_col']}={r['stratum']}" for r in result["flagged_strata"]] or "none")
    return result


def calibration_audit(corr: pd.DataFrame, seed: int,
                      weights: Any = None) -> dict[str, Any]:
    """ECE, MCE, the binning-noise reference, the reliability bins and the coverage curve of
    the gold items ``corr`` (:func:`review.gold_correctness`), design-weighted when
    ``weights`` are given (a model-assisted gold sample over-samples low confidence)."""
    kw = {} if weights is None else {"weights": weights}
    curve = coverage_accuracy_curve(corr["correct"], corr["confidence"], **kw)
    return {
        "calibration": {
            "ece": expected_calibration_error(corr["correct"], corr["confidence"], **kw),
            "mce": maximum_calibration_error(corr["correct"], corr["confidence"], **kw),
            # what a perfectly calibrated coder with these confidences would show (binning)
            "ece_noise": ece_if_calibrated(corr["confidence"], seed=seed, **kw),
            "bins": calibration_bins(corr["correct"], corr["confidence"],
                                     **kw).to_dict("records")},
        "coverage_curve": curve.iloc[::max(1, len(curve) // CURVE_POINTS)].to_dict("records")}


def review_record(after: pd.DataFrame, review_fraction: float) -> dict[str, Any]:
    """audit.json's ``review`` entry from :func:`review.kappa_after_review`'s table."""
    return {"fraction": review_fraction, "threshold": after.attrs.get("threshold"),
            "kappa": after.to_dict("records")}


def prevalence_gold(gold: pd.DataFrame, design: AuditDesign) -> pd.DataFrame:
    """The gold items for the corrected prevalence, with inclusion probabilities consistent
    with :func:`gold_design`: unchanged for a proportional sample (the sampler's
    ``inclusion_prob``); for a model-assisted one 1 / weight = items of the cell in this
    analysis / cell_size (items without a reference move their share to their cell)."""
    if not design.weighted:
        return gold
    return gold.assign(inclusion_prob=1.0 / design.weights_for(gold["id"]))


def uncalibrated(preds: pd.DataFrame, gold: pd.DataFrame, review_fraction: float,
                 labels: Sequence[str], kw: dict[str, Any], weights: Any,
                 design: AuditDesign | None = None) -> dict[str, Any]:
    """The calibration audit of the confidence before calibration (``confidence_raw``, the
    encoder's softmax as trained, beside its temperature-scaled ``confidence``): the ECE on
    gold and the review queue's gold subsets had the queue been ranked on it. The review
    queue itself always ranks on the calibrated ``confidence``."""
    raw = preds.assign(confidence=preds["confidence_raw"])
    corr = review.gold_correctness(gold, raw.loc[raw["id"].isin(set(gold["id"]))])
    known = corr["confidence"].notna()
    before = review.kappa_after_review(raw, gold, review_fraction, labels=labels, **kw,
                                       weights=weights, design=design)
    dw = ({} if design is None or not design.weighted
          else {"weights": design.weights_for(corr.loc[known, "id"])})
    return {"calibrated": True,
            "ece_uncalibrated": expected_calibration_error(corr.loc[known, "correct"],
                                                           corr.loc[known, "confidence"], **dw)
            if known.any() else None,
            "mce_uncalibrated": maximum_calibration_error(corr.loc[known, "correct"],
                                                          corr.loc[known, "confidence"], **dw)
            if known.any() else None,
            "review_uncalibrated": {"threshold": before.attrs.get("threshold"),
                                    "kappa": before.to_dict("records")}}


def positional_audit(*, model: str, fixed: str, others: Sequence[str], reference: str,
                     sample: str, audit: str, orders: Sequence[str], labels: Sequence[str],
                     confidence: float, bootstrap: int, seed: int, scale: str = "nominal",
                     kappa_weights: str | None = None) -> dict:
    """Positional bias: the gold items under the fixed order and each of ``orders`` (an
    ordinal scale shown reversed is a legitimate test; its kappas between orders are
    weighted as the codebook's)."""
    others = [others] if isinstance(others, str) else list(others or [])
    parts = {"fixed": fixed, **dict(zip(orders, others, strict=True))}
    frames = []
    for order, path in parts.items():
        df = pd.read_parquet(path)
        frames.append(df.assign(order=order)[["id", "label", "status", "order", "label_order"]])
    long = pd.concat(frames, ignore_index=True)
    gold = read_gold(reference, sample)
    res = run_positional_audit(long, reference=gold[["id", "reference"]], labels=labels,
                               confidence=confidence, bootstrap=bootstrap, seed=seed,
                               weights=kappa_weights_for(scale, kappa_weights))
    out = {"model": model, "orders": list(parts), "pairs": res.pairs.to_dict("records"),
           "selection": res.selection.to_dict("records"), "any_flip_rate": res.any_flip_rate,
           "chi2": res.chi2, "dof": res.dof, "p_value": res.p_value, "effect_w": res.effect_w,
           "first_position_excess": res.first_position_excess,
           "expected_basis": res.expected_basis, "flagged": res.flagged, "notes": res.notes,
           "confidence": confidence, "n_boot": bootstrap}
    design = audit_design(gold.loc[gold["reference"].notna()], pd.read_parquet(sample))
    out["design"] = to_builtin(design.info)
    out["as_drawn"] = None
    if design.weighted:  # corpus flip rates headline; the sample as drawn beside them
        flips = weighted_flip_rates(long, design)
        out["as_drawn"] = {"any_flip_rate": out["any_flip_rate"],
                           "flip_rates": [{k: r[k] for k in ("order_a", "order_b", "flip_rate")}
                                          for r in out["pairs"]]}
        out["any_flip_rate"] = flips["any_flip_rate"]
        for row, wrow in zip(out["pairs"], flips["pairs"], strict=True):
            row["flip_rate"] = wrow["flip_rate"]
    write_json_atomic(out, audit)
    log.info("%s positional audit: flip rate %.3f, p=%.3g, w=%.2f, flagged=%s", model,
             res.any_flip_rate, res.p_value, res.effect_w, res.flagged)
    return out


def ensemble(*, predictions: Sequence[str], reference: str, sample: str, audit: str,
             votes: str, models: Sequence[str], labels: Sequence[str], confidence: float,
             bootstrap: int, seed: int, scale: str = "nominal",
             kappa_weights: str | None = None) -> dict:
    """Majority vote of the machine coders on the gold set, scored like any coder (an item
    without any valid vote is an invalid answer: an error)."""
    paths = [predictions] if isinstance(predictions, str) else list(predictions)
    gold = read_gold(reference, sample)
    ids = set(gold["id"])
    tables = {m: pd.read_parquet(p).loc[lambda d: d["id"].isin(ids)]
              for m, p in zip(models, paths, strict=True)}
    vote = majority_vote(tables)
    write_parquet_atomic(vote, votes)
    rate = agreement_rate(tables)
    scored = align_with_gold(gold[["id", "reference"]], vote[["id", "label"]])
    kappa_w = kappa_weights_for(scale, kappa_weights)
    k = kappa_summary(scored["reference"], scored["label"], labels, confidence=confidence,
                      bootstrap=bootstrap, seed=seed, weights=kappa_w)
    design = audit_design(scored, pd.read_parquet(sample))
    as_drawn = None
    if design.weighted:  # the corpus estimate headlines; the sample as drawn beside it
        from textgauge.stats import weighted_metrics
        from textgauge.stats.weighted_summary import kappa_block

        as_drawn = {"kappa": k}
        k = kappa_block(weighted_metrics(
            scored["reference"], scored["label"], labels,
            design_weights=design.weights_for(scored["id"]),
            cells=design.cells_for(scored["id"]), weights=kappa_w, n_boot=bootstrap,
            seed=seed, confidence=confidence), labels, kappa_w)
    res = {"models": list(models), "agreement": rate, "n": int(len(scored)),
           "ties": int(vote["tie"].sum()), "kappa": k,
           "disagreements": int((~vote["unanimous"]).sum()) if "unanimous" in vote else None,
           "confidence": confidence, "n_boot": bootstrap,
           "design": to_builtin(design.info), "as_drawn": as_drawn}
    write_json_atomic(res, audit)
    return res


def revalidation_sample(*, predictions: str, corpus: str, gold: str, train: str | None,
                        sample: str, sheets: Sequence[str], model: str,
                        revalidation_size: int, strata: Sequence[str], coders: Sequence[str],
                        seed: int) -> None:
    """Stage 5: a fresh stratified sample of the classified corpus, as blinded coding sheets."""
    from textgauge.data.coding import coding_sheet

    preds = pd.read_parquet(predictions)
    corpus_df = pd.read_parquet(corpus)
    exclude = set(pd.read_parquet(gold)["id"])
    if train:
        exclude |= set(pd.read_parquet(train)["id"])
    drawn = draw_revalidation_sample(preds, n=revalidation_size, strata=list(strata)[:1],
                                     metadata=corpus_df, exclude_ids=exclude, seed=seed)
    drawn = drawn.merge(corpus_df[["id", "text"]], on="id", how="left")
    write_parquet_atomic(drawn, sample)
    sheets = [sheets] if isinstance(sheets, str) else list(sheets)
    for coder, path in zip(coders, sheets, strict=True):
        write_csv(coding_sheet(drawn, coder, seed), path)
    log.info("stage-5 re-validation sample: %d texts from %s's predictions", len(drawn), model)


def revalidation_metrics(*, sample: str, reference: str, codes: str, predictions: str,
                         gold_reference: str, gold_sample: str, corpus: str, metrics: str,
                         table: str, model: str, labels: Sequence[str],
                         strata: Sequence[str], confidence: float, bootstrap: int, seed: int,
                         scale: str = "nominal", kappa_weights: str | None = None) -> dict:
    """Stage 5 completed: the model on the coded re-validation sample, weighted by the design,
    beside the sample as drawn and the gold set, with the differences (weighted - gold) and
    their CIs, overall and per stratum of every ``strata`` column (corpus.strata).

    The reference comes from the stage-5 import (rule import_revalidation_codes: the gold
    rule for ties and missing codes); its counts are copied into ``metrics`` so the report
    states them. Items left without a reference are counted and their cell's other items
    carry their weight (:func:`textgauge.audits.revalidation.design_weights`).
    """
    from textgauge.audits.revalidation import revalidation_comparison, revalidation_table

    weights = kappa_weights_for(scale, kappa_weights)
    drawn = pd.read_parquet(sample)
    ref = pd.read_parquet(reference)[["id", "reference"]]
    corpus_df = pd.read_parquet(corpus)
    strata = [s for s in strata if s in corpus_df.columns]
    preds = pd.read_parquet(predictions)
    design = drawn[["id", "cell", "cell_size", "cell_n", "inclusion_prob"]].merge(
        corpus_df[["id", *strata]], on="id", how="left")
    rev = align_with_gold(ref.merge(design, on="id", how="inner"), preds)
    if rev.empty:
        from textgauge.errors import InputDataError

        raise InputDataError(
            f"None of the {len(drawn)} stage-5 items has a reference label: the filled sheets "
            "(audits.revalidation_codes) hold no code for the items of "
            f"{sample}. Fill the label column of results/revalidation/sheets/<coder>.csv and "
            "list the filled files under audits.revalidation_codes.")
    gold = align_with_gold(read_gold(gold_reference, gold_sample)[["id", "reference"]].merge(
        corpus_df[["id", *strata]], on="id", how="left"), preds)
    # a model-assisted gold set: its side of the comparison is design-weighted too (the
    # corpus-level gold estimate, as in metrics.json), bootstrapped within its cells
    gold_d = audit_design(gold, pd.read_parquet(gold_sample))
    if gold_d.weighted:
        gold = gold.assign(design_weight=gold_d.weights_for(gold["id"]),
                           design_cell=gold_d.cells_for(gold["id"]))
    res = revalidation_comparison(rev, gold, list(labels), strata, weights=weights,
                                  n_boot=int(bootstrap), seed=seed, confidence=confidence)
    import_summary = load_import_summary(codes)
    counts = import_summary.get("counts", {})
    out = {"model": model, "labels": list(labels), "strata_columns": strata,
           "weights": weights or "unweighted", "confidence": confidence,
           "n_boot": int(bootstrap), "seed": seed,
           "n_sample": int(len(drawn)), "n_evaluated": int(len(rev)),
           "n_excluded": int(len(drawn) - len(rev)), "n_cells": int(drawn["cell"].nunique()),
           # cells whose every item lacks a reference: the weighted estimate cannot see them
           "n_cells_without_reference": int(drawn["cell"].nunique() - rev["cell"].nunique()),
           "n_gold": int(len(gold)), "counts": counts,
           "ties": import_summary.get("ties"),
           "design": ("stratified by predicted label x stratum; weights = cell size / coded "
                      "items of the cell (inverse inclusion probabilities); bootstrap "
                      "within cells"),
           "gold_design": gold_d.info,
           **res}
    write_json_atomic(out, metrics)
    write_csv(revalidation_table(res), table)
    o, d = res["overall"], res["overall"]["difference"] or {}
    log.info("stage 5 (%s): weighted kappa %.3f on %d of %d re-validation items vs %.3f on "
             "gold (difference %.3f [%.3f, %.3f])", model, o["weighted"]["kappa"]["estimate"],
             len(rev), len(drawn), o["gold"]["kappa"]["estimate"] if o["gold"] else float("nan"),
             d.get("kappa", {}).get("estimate", float("nan")),
             d.get("kappa", {}).get("ci_low", float("nan")),
             d.get("kappa", {}).get("ci_high", float("nan")))
    return out


def load_import_summary(path: str) -> dict:
    """The import summary (codes.json) of rule import_codes or import_revalidation_codes."""
    import json
    from pathlib import Path

    return json.loads(Path(path).read_text(encoding="utf-8"))
