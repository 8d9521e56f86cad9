"""The audit steps of the workflow: beyond one kappa.

Per machine coder: an error-analysis sheet, calibration and confidence routing (a human
review queue over the whole corpus), class asymmetry (over/under-prediction), per-stratum
performance, and corpus prevalence corrected for the coder's errors (PPI/DSL) next to the
naive share. Per prompted coder: the positional audit (the same gold items under other label
orders). Across coders: a majority-vote ensemble. After deployment: a fresh stratified
sample of the classified corpus for stage-5 re-validation. Each writes tables the report
draws from.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textgauge import audits, confidence, ensemble, errorsheet, prevalence
from textgauge.checkpoint import write_parquet_atomic, write_text_atomic

log = logging.getLogger("textgauge")


def _dump(obj: Any, path: str | Path) -> None:
    def conv(o: Any) -> Any:
        if isinstance(o, (np.integer, np.bool_)):
            return o.item()
        if isinstance(o, np.floating):
            return None if np.isnan(o) else float(o)
        if isinstance(o, (np.ndarray, pd.Series)):
            return o.tolist()
        if isinstance(o, pd.DataFrame):
            return o.to_dict("records")
        return str(o)

    write_text_atomic(json.dumps(obj, indent=2, default=conv), path)


def _gold(reference_path: str, sample_path: str) -> pd.DataFrame:
    ref = pd.read_parquet(reference_path)
    sample = pd.read_parquet(sample_path)
    return ref[["id", "reference"]].merge(sample, on="id", how="left")


def model_audit_stage(model: str, model_cfg: Mapping[str, Any], predictions_path: str,
                      reference_path: str, codes_path: str, sample_path: str, corpus_path: str,
                      labels: Sequence[str], strata: Sequence[str], vcfg: Mapping[str, Any],
                      seed: int, out: Mapping[str, str]) -> dict:
    """Error sheet, calibration, review queue, asymmetry, strata and corrected prevalence."""
    preds = pd.read_parquet(predictions_path)
    gold = _gold(reference_path, sample_path)
    codes = pd.read_parquet(codes_path)
    corpus = pd.read_parquet(corpus_path)
    n_boot = min(int(vcfg["bootstrap"]), 1000)
    thr = vcfg["kappa_threshold"]
    frac = vcfg["review_fraction"]
    strata = [s for s in strata if s in gold.columns]
    gold_preds = preds.loc[preds["id"].isin(set(gold["id"]))]

    sheet = errorsheet.build_error_sheet(gold, gold_preds, human_codes=codes,
                                         texts=gold[["id", "text"]])
    errorsheet.write_error_sheet(sheet, out["error_sheet"])

    corr = confidence.gold_correctness(gold, gold_preds)
    has_conf = corr["confidence"].notna().any()
    result: dict[str, Any] = {"model": model, "n_errors": int(len(sheet)),
                              "n_gold": int(len(gold))}
    if has_conf:
        bins = confidence.calibration_bins(corr["correct"], corr["confidence"])
        curve = confidence.coverage_accuracy_curve(corr["correct"], corr["confidence"])
        result["calibration"] = {
            "ece": confidence.expected_calibration_error(corr["correct"], corr["confidence"]),
            "mce": confidence.maximum_calibration_error(corr["correct"], corr["confidence"]),
            "bins": bins.to_dict("records")}
        step = max(1, len(curve) // 60)
        result["coverage_curve"] = curve.iloc[::step].to_dict("records")
        after = confidence.kappa_after_review(preds, gold, frac, n_boot=n_boot, seed=seed)
        result["review"] = {"fraction": frac, "threshold": after.attrs.get("threshold"),
                            "kappa": after.to_dict("records")}
    queue = confidence.review_queue(preds.merge(corpus[["id", "text", *strata]], on="id",
                                                how="left"),
                                    frac, exclude_ids=gold["id"],
                                    extra_columns=["text", *strata])
    queue.to_csv(out["review_queue"], index=False)
    result["review_queue"] = {"n": int(len(queue)), "of": int(queue.attrs.get("n_corpus", 0)),
                              "threshold": queue.attrs.get("threshold")}

    asym = audits.class_asymmetry(gold, gold_preds)
    result["asymmetry"] = asym.to_dict("records")
    strat = audits.stratum_performance(gold, gold_preds, strata, threshold=thr, n_boot=n_boot,
                                       seed=seed)
    result["strata"] = strat.to_dict("records")

    scope = model_cfg.get("scope", "corpus")
    if scope == "corpus" and len(gold_preds) == len(gold):
        est = prevalence.corrected_prevalence(preds, gold, strata=strata[:1], metadata=corpus,
                                              labels=list(labels))
        est.to_csv(out["prevalence"], index=False)
        result["prevalence"] = est.to_dict("records")
    else:
        pd.DataFrame().to_csv(out["prevalence"], index=False)
        result["prevalence"] = []
        result["prevalence_note"] = ("Corrected prevalence needs predictions for the whole "
                                     "corpus (scope: corpus).")
    _dump(result, out["audit"])
    flagged = [r["label"] for r in result["asymmetry"] if r.get("flag")]
    log.info("%s audit: %d errors on gold, review queue %d texts, asymmetry flags %s", model,
             len(sheet), len(queue), flagged or "none")
    return result


def positional_stage(model: str, parts: Mapping[str, str], reference_path: str,
                     sample_path: str, out_json: str) -> dict:
    """Positional bias: the same gold items under different label orders (parts: order->path)."""
    frames = []
    for order, path in parts.items():
        df = pd.read_parquet(path)
        frames.append(df.assign(order=order)[["id", "label", "status", "order", "label_order"]])
    long = pd.concat(frames, ignore_index=True)
    gold = _gold(reference_path, sample_path)
    res = audits.positional_audit(long, reference=gold[["id", "reference"]])
    out = {"model": model, "orders": list(parts), "pairs": res.pairs.to_dict("records"),
           "selection": res.selection.to_dict("records"), "any_flip_rate": res.any_flip_rate,
           "chi2": res.chi2, "dof": res.dof, "p_value": res.p_value, "effect_w": res.effect_w,
           "first_position_excess": res.first_position_excess,
           "expected_basis": res.expected_basis, "flagged": res.flagged, "notes": res.notes}
    _dump(out, out_json)
    log.info("%s positional audit: flip rate %.3f, p=%.3g, w=%.2f, flagged=%s", model,
             res.any_flip_rate, res.p_value, res.effect_w, res.flagged)
    return out


def ensemble_stage(models: Sequence[str], prediction_paths: Sequence[str], reference_path: str,
                   sample_path: str, labels: Sequence[str], vcfg: Mapping[str, Any], seed: int,
                   out_json: str, out_votes: str) -> dict:
    """Majority vote of the machine coders on the gold set, evaluated like any coder."""
    from textgauge.validation import kappa_summary

    gold = _gold(reference_path, sample_path)
    ids = set(gold["id"])
    tables = {m: pd.read_parquet(p).loc[lambda d: d["id"].isin(ids)]
              for m, p in zip(models, prediction_paths, strict=True)}
    vote = ensemble.majority_vote(tables)
    write_parquet_atomic(vote, out_votes)
    rate = ensemble.agreement_rate(tables)
    merged = gold[["id", "reference"]].merge(vote[["id", "label", "tie"]], on="id")
    k = kappa_summary(merged["reference"], merged["label"], labels, vcfg["confidence"],
                      vcfg["bootstrap"], seed)
    res = {"models": list(models), "agreement": rate, "n": int(len(merged)),
           "ties": int(merged["tie"].sum()), "kappa": k,
           "disagreements": int((~vote["unanimous"]).sum()) if "unanimous" in vote else None}
    _dump(res, out_json)
    return res


def revalidation_stage(model: str, predictions_path: str, corpus_path: str,
                       sample_path: str, train_path: str | None, n: int, strata: Sequence[str],
                       coders: Sequence[str], seed: int, out_sample: str,
                       out_sheets: Sequence[str]) -> None:
    """Stage 5: a fresh stratified sample of the classified corpus, as blinded coding sheets."""
    from textgauge.coding import coding_sheet

    preds = pd.read_parquet(predictions_path)
    corpus = pd.read_parquet(corpus_path)
    exclude = set(pd.read_parquet(sample_path)["id"])
    if train_path:
        exclude |= set(pd.read_parquet(train_path)["id"])
    sample = prevalence.revalidation_sample(preds, n=n, strata=list(strata)[:1], metadata=corpus,
                                            exclude_ids=exclude, seed=seed)
    sample = sample.merge(corpus[["id", "text"]], on="id", how="left")
    write_parquet_atomic(sample, out_sample)
    for coder, path in zip(coders, out_sheets, strict=True):
        coding_sheet(sample, coder, seed).to_csv(path, index=False)
    log.info("stage-5 re-validation sample: %d texts from %s's predictions", len(sample), model)
