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

from textgauge.audits import core as audits
from textgauge.audits import ensemble
from textgauge.audits import error_sheet as errorsheet
from textgauge.io import write_json_atomic, write_parquet_atomic
from textgauge.stats import calibration as confidence
from textgauge.stats import prevalence

log = logging.getLogger("textgauge")


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
    write_json_atomic(result, out["audit"])
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
    write_json_atomic(out, out_json)
    log.info("%s positional audit: flip rate %.3f, p=%.3g, w=%.2f, flagged=%s", model,
             res.any_flip_rate, res.p_value, res.effect_w, res.flagged)
    return out


def ensemble_stage(models: Sequence[str], prediction_paths: Sequence[str], reference_path: str,
                   sample_path: str, labels: Sequence[str], vcfg: Mapping[str, Any], seed: int,
                   out_json: str, out_votes: str) -> dict:
    """Majority vote of the machine coders on the gold set, evaluated like any coder."""
    from textgauge.steps.validation import kappa_summary

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
    write_json_atomic(res, out_json)
    return res


def revalidation_stage(model: str, predictions_path: str, corpus_path: str,
                       sample_path: str, train_path: str | None, n: int, strata: Sequence[str],
                       coders: Sequence[str], seed: int, out_sample: str,
                       out_sheets: Sequence[str]) -> None:
    """Stage 5: a fresh stratified sample of the classified corpus, as blinded coding sheets."""
    from textgauge.data.coding import coding_sheet

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


# ---------------------------------------------------------------- round trips and stability
def _finite(obj: Any) -> Any:
    """NaN -> None all the way down (JSON has no NaN; the report tests for none)."""
    if isinstance(obj, float) and np.isnan(obj):
        return None
    if isinstance(obj, Mapping):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _read_json(path: str | Path | None) -> dict:
    if not path:
        return {}
    return json.loads(Path(path).read_text(encoding="utf-8"))


def review_import_stage(model: str, coded_path: str, queue_path: str, predictions_path: str,
                        reference_path: str, labels: Sequence[str], out_final: str,
                        out_json: str) -> dict:
    """A coded review queue in: final corpus labels (human where reviewed) and a tabulation."""
    from textgauge.audits import review_queue as review

    queue = pd.read_csv(queue_path, dtype={"id": str}, keep_default_na=False)
    preds = pd.read_parquet(predictions_path)
    gold = pd.read_parquet(reference_path)[["id", "reference"]]
    final, tab = review.import_review(coded_path, preds, labels, queue=queue, gold=gold)
    write_parquet_atomic(final, out_final)
    res = _finite({"model": model, "source": str(coded_path), **tab})
    write_json_atomic(res, out_json)
    log.info("%s review: %d of %d queued texts reviewed, %d changed (%s)", model,
             tab["n_reviewed"], tab["n_queue"], tab["n_changed"],
             "n/a" if tab["share_changed"] is None else f"{tab['share_changed']:.1%}")
    return res


def error_patterns_stage(model: str, coded_path: str, sheet_path: str, out_json: str,
                         n_examples: int = 3) -> dict:
    """The coded error sheet in: error patterns with counts, shares and example ids."""
    from textgauge.errors import InputDataError, format_rows

    coded = errorsheet.read_error_sheet(coded_path)
    exported = pd.read_csv(sheet_path, dtype={"id": str}, keep_default_na=False)
    unknown = sorted(set(coded["id"]) - set(exported["id"].astype(str)))
    if unknown:
        raise InputDataError(
            f"The coded error sheet {coded_path} has ids that are not misclassified gold items "
            f"of {model} in this run: {format_rows(unknown)}. Code the current "
            f"{sheet_path}.")
    patterns = errorsheet.tabulate_error_patterns(coded, n_examples=n_examples)
    n_coded = int((coded["category"] != "").sum())
    res = {"model": model, "source": str(coded_path), "n_errors": int(len(exported)),
           "n_rows": int(len(coded)), "n_coded": n_coded,
           "n_uncoded": int(len(coded)) - n_coded, "patterns": patterns.to_dict("records")}
    if "gold" in coded.columns and n_coded:
        by_gold = errorsheet.tabulate_error_patterns(coded[coded["category"] != ""],
                                                     n_examples=n_examples, by=["gold"])
        res["by_gold"] = by_gold.to_dict("records")
    res = _finite(res)
    write_json_atomic(res, out_json)
    top = patterns.loc[patterns["category"] != errorsheet.UNCODED, "category"].head(1).tolist()
    log.info("%s error patterns: %d of %d errors coded; most common: %s", model, n_coded,
             len(coded), top[0] if top else "none")
    return res


def retest_stage(model: str, current_path: str, current_manifest: str | None, earlier_path: str,
                 earlier_manifest: str | None, reference_path: str, vcfg: Mapping[str, Any],
                 seed: int, out_json: str, max_flips: int = 200) -> dict:
    """Temporal test-retest: the current run against a stored earlier run, on the gold set."""
    current = pd.read_parquet(current_path)
    earlier = pd.read_parquet(earlier_path)
    gold = pd.read_parquet(reference_path)[["id", "reference"]]
    n_boot = min(int(vcfg["bootstrap"]), 1000)
    res = audits.test_retest(current, earlier, _read_json(current_manifest),
                             _read_json(earlier_manifest), gold=gold, n_boot=n_boot, seed=seed)
    flips = res.flips.rename(columns={"label_earlier": "earlier", "label_current": "current"})
    cols = [c for c in ("id", "earlier", "current", "reference") if c in flips.columns]
    diff = res.manifest_diff.assign(
        earlier=lambda d: d["earlier"].map(_short), current=lambda d: d["current"].map(_short))
    out = {"model": model, "earlier": str(earlier_path),
           "earlier_manifest": str(earlier_manifest) if earlier_manifest else None,
           "n_common": res.n_common, "agreement": res.agreement,
           "kappa": res.kappa.as_dict("kappa"), "n_flips": int(len(res.flips)),
           "flip_rate": len(res.flips) / res.n_common if res.n_common else None,
           "flips": flips[cols].head(max_flips).to_dict("records"),
           "accuracy_earlier": res.accuracy_earlier, "accuracy_current": res.accuracy_current,
           "n_only_earlier": len(res.only_earlier), "n_only_current": len(res.only_current),
           "manifest_diff": diff.to_dict("records")}
    out = _finite(out)
    write_json_atomic(out, out_json)
    log.info("%s test-retest: agreement %.3f on %d gold items, %d flips, %d manifest keys "
             "differ", model, res.agreement, res.n_common, len(res.flips),
             len(res.manifest_diff))
    return out


def _short(value: Any, limit: int = 120) -> Any:
    """Manifest values for a table: scalars as they are, long/nested ones as short JSON."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    s = value if isinstance(value, str) else json.dumps(value, default=str)
    return s if len(s) <= limit else s[:limit - 1] + "…"


def prompt_stability_stage(model: str, base_path: str, base_prompt: str,
                           variant_paths: Sequence[str], templates: Sequence[str],
                           reference_path: str, vcfg: Mapping[str, Any], seed: int,
                           out_json: str) -> dict:
    """Prompt stability: the gold set under the configured prompt and its paraphrases."""
    gold = pd.read_parquet(reference_path)[["id", "reference"]]
    ids = set(gold["id"].astype(str))
    names = ["original", *[f"variant-{i}" for i in range(1, len(variant_paths) + 1)]]
    prompts = [base_prompt, *templates]
    frames, variants = [], []
    for name, prompt, path in zip(names, prompts, [base_path, *variant_paths], strict=True):
        df = pd.read_parquet(path)
        df = df.loc[df["id"].astype(str).isin(ids)]
        cols = [c for c in ("id", "label", "status") if c in df.columns]
        frames.append(df[cols].assign(prompt_variant=name))
        hashes = df["prompt_hash"].dropna().unique().tolist() if "prompt_hash" in df else []
        variants.append({"name": name, "template": str(prompt),
                         "prompt_hash": hashes[0] if len(hashes) == 1 else hashes})
    long = pd.concat(frames, ignore_index=True)
    n_boot = min(int(vcfg["bootstrap"]), 500)
    res = audits.prompt_stability(long, run_col=None, gold=gold, n_boot=n_boot, seed=seed)
    per = res.per_variant.copy()
    wide = long.assign(label=audits.prediction_labels(long, invalid="drop")).pivot(
        index="id", columns="prompt_variant", values="label")
    per["changed_vs_original"] = [
        float((wide[v].fillna("") != wide["original"].fillna("")).mean()) for v in per["variant"]]
    per = per.merge(pd.DataFrame(variants).rename(columns={"name": "variant"}), on="variant",
                    how="left")
    out = {"model": model, "n_items": int(wide.shape[0]), "n_variants": len(names),
           "alpha": res.alpha_variants.as_dict("alpha"), "variants": variants,
           "per_variant": per.to_dict("records"), "notes": res.notes}
    out = _finite(out)
    write_json_atomic(out, out_json)
    log.info("%s prompt stability: Krippendorff's alpha across %d prompts = %.3f [%.3f, %.3f]",
             model, len(names), res.alpha_variants.estimate, res.alpha_variants.ci_low,
             res.alpha_variants.ci_high)
    return out
