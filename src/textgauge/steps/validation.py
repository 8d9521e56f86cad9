"""Hold every coder, human or machine, to the same agreement statistics on the gold set.

Two stages: the human ceiling (human-human agreement on the gold sample; with simulated
coders, the known true agreement beside the estimate) and the evaluation of each machine
coder against the reference labels and against each human coder, with CIs, per class and per
stratum, and the decision against ``validation.kappa_threshold``.

Items a model could not classify (status invalid/failed) are not silently dropped: metrics
are computed on the classified items, and ``coverage`` and the counts say how many were left
out (a model that fails on hard items would otherwise look better than it is; the report
shows both numbers).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from textgauge.agreement import (
    bootstrap_kappa,
    bootstrap_macro_f1,
    classification_metrics,
    cohen_kappa,
    decide,
    krippendorff_alpha_long,
)
from textgauge.errors import InputDataError
from textgauge.io import write_json_atomic

log = logging.getLogger("textgauge")

MAX_PAIRWISE_CODERS = 12


def kappa_summary(y1: Sequence[Any], y2: Sequence[Any], labels: Sequence[str],
                  confidence: float, n_boot: int, seed: int) -> dict[str, Any]:
    """Cohen's kappa with the asymptotic CI and a bootstrap CI (both reported)."""
    k = cohen_kappa(y1, y2, labels=list(labels), confidence=confidence)
    # a Wald interval can pass the bounds of kappa on small samples: report it within [-1, 1]
    out = {"kappa": k.estimate, "se": k.se, "ci_low": max(k.ci_low, -1.0),
           "ci_high": min(k.ci_high, 1.0),
           "n": k.n, "p_observed": k.p_observed, "p_expected": k.p_expected}
    if n_boot and k.n >= 10:
        b = bootstrap_kappa(y1, y2, labels=list(labels), n_boot=n_boot, seed=seed,
                            confidence=confidence)
        out.update({"boot_ci_low": b.ci_low, "boot_ci_high": b.ci_high})
    return out


def classification_summary(y_true: Sequence[str], y_pred: Sequence[str],
                           labels: Sequence[str]) -> tuple[dict[str, Any], pd.DataFrame,
                                                           pd.DataFrame]:
    """Per-class and averaged metrics, and the confusion matrix as a labelled table."""
    rep = classification_metrics(list(y_true), list(y_pred), labels=list(labels))
    d = rep.to_dict()
    d["averages"] = {a.pop("average"): a for a in d["averages"]}
    return d, rep.per_class, rep.confusion_table()


def per_class_f1_ci(y_true: Sequence[str], y_pred: Sequence[str], labels: Sequence[str],
                    n_boot: int, seed: int, confidence: float) -> pd.DataFrame:
    """Percentile bootstrap CIs of each class's F1 (items resampled; vectorised).

    One index matrix for all replicates; each replicate's confusion matrix comes from a single
    ``bincount`` over ``replicate * K * K + true * K + predicted``.
    """
    labels = list(labels)
    k = len(labels)
    code = {lab: i for i, lab in enumerate(labels)}
    t = np.array([code[v] for v in y_true])
    p = np.array([code.get(v, -1) for v in y_pred])
    keep = p >= 0
    t, p = t[keep], p[keep]
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(t), size=(n_boot, len(t)))
    flat = (np.arange(n_boot)[:, None] * k * k + t[idx] * k + p[idx]).ravel()
    cm = np.bincount(flat, minlength=n_boot * k * k).reshape(n_boot, k, k)
    tp = cm[:, np.arange(k), np.arange(k)]
    denom = cm.sum(axis=1) + cm.sum(axis=2)  # predicted + true counts per class
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp, dtype=float), where=denom > 0)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(f1, [alpha, 1 - alpha], axis=0)
    return pd.DataFrame({"label": labels, "f1_ci_low": lo, "f1_ci_high": hi})


# ------------------------------------------------------------------ the human ceiling
def human_agreement_stage(codes_path: str, sample_path: str, labels: Sequence[str],
                          vcfg: Mapping[str, Any], seed: int, out_metrics: str, out_pairwise: str,
                          truth: str | None = None, simulated_coders: str | None = None) -> dict:
    codes = pd.read_parquet(codes_path)
    codes = codes.loc[codes["label"] != ""]
    conf, n_boot = vcfg["confidence"], vcfg["bootstrap"]
    coders = list(dict.fromkeys(codes["coder"]))
    alpha = krippendorff_alpha_long(codes, unit="id", coder="coder", label="label",
                                    n_boot=n_boot, seed=seed, confidence=conf,
                                    categories=list(labels))
    wide = codes.pivot(index="id", columns="coder", values="label")
    rows = []
    if len(coders) <= MAX_PAIRWISE_CODERS:
        for a, b in itertools.combinations(coders, 2):
            both = wide[[a, b]].dropna()
            if len(both) < 10:
                continue
            rows.append({"coder_1": a, "coder_2": b,
                         **kappa_summary(both[a], both[b], labels, conf, n_boot, seed)})
    pairwise = pd.DataFrame(rows)
    pairwise.to_csv(out_pairwise, index=False)
    metrics: dict[str, Any] = {
        "coders": coders, "n_items": int(wide.shape[0]),
        "codes_per_item": float(codes.groupby("id").size().mean()),
        "alpha": alpha.to_dict(), "pairwise": pairwise.to_dict("records"),
        "threshold": vcfg["kappa_threshold"],
    }
    if len(pairwise):
        metrics["ceiling_kappa"] = float(pairwise["kappa"].mean())
    if truth and simulated_coders:
        metrics["simulated_truth"] = simulated_truth(codes, truth, simulated_coders, labels,
                                                     conf, n_boot, seed)
    write_json_atomic(metrics, out_metrics)
    log.info("human agreement: alpha=%.3f [%.3f, %.3f] over %d items, %d coders",
             alpha.estimate, alpha.ci_low, alpha.ci_high, wide.shape[0], len(coders))
    return metrics


def simulated_truth(codes: pd.DataFrame, truth_path: str, coders_path: str,
                    labels: Sequence[str], conf: float, n_boot: int, seed: int) -> dict:
    """Known population agreement of the simulated coders, next to the sample estimates."""
    from textgauge.data.example import read_confusions, true_accuracy_kappa, true_kappa

    truth = pd.read_csv(truth_path, dtype=str).set_index("id")["true_label"]
    mats = read_confusions(coders_path)
    prevalence = truth.value_counts(normalize=True).reindex(list(labels), fill_value=0).to_numpy()
    wide = codes.pivot(index="id", columns="coder", values="label")
    out: dict[str, Any] = {"prevalence": dict(zip(labels, prevalence.round(4).tolist(),
                                                  strict=True)), "pairs": [], "coders": []}
    coders = [c for c in wide.columns if c in mats]
    for a, b in itertools.combinations(coders, 2):
        both = wide[[a, b]].dropna()
        est = kappa_summary(both[a], both[b], labels, conf, n_boot, seed)
        out["pairs"].append({"coder_1": a, "coder_2": b,
                             "true_kappa": true_kappa(prevalence, mats[a], mats[b]), **est})
    for c in coders:
        col = wide[c].dropna()
        est = kappa_summary(truth.loc[col.index], col, labels, conf, n_boot, seed)
        out["coders"].append({"coder": c, "true_kappa_vs_truth":
                              true_accuracy_kappa(prevalence, mats[c]), **est})
    return out


# ------------------------------------------------------------------ machine coders
def evaluate_stage(model: str, predictions_path: str, reference_path: str, codes_path: str,
                   sample_path: str, human_path: str, labels: Sequence[str],
                   vcfg: Mapping[str, Any], strata: Sequence[str], seed: int,
                   out: Mapping[str, str]) -> dict:
    labels = list(labels)
    conf, n_boot, thr = vcfg["confidence"], vcfg["bootstrap"], vcfg["kappa_threshold"]
    preds = pd.read_parquet(predictions_path)
    ref = pd.read_parquet(reference_path)
    sample = pd.read_parquet(sample_path)
    codes = pd.read_parquet(codes_path)
    human = json.loads(open(human_path, encoding="utf-8").read())
    gold = ref.merge(sample[["id", *[s for s in strata if s in sample.columns]]], on="id")
    merged = gold.merge(preds[["id", "label", "confidence", "status"]], on="id", how="left")
    missing = merged["status"].isna()
    if missing.all():
        raise InputDataError(f"{model}: no prediction for any gold item; were predictions made "
                             "on another corpus or sample?")
    ok = merged.loc[merged["status"] == "ok"]
    status_counts = merged["status"].fillna("missing").value_counts().to_dict()
    k = kappa_summary(ok["reference"], ok["label"], labels, conf, n_boot, seed)
    f1 = bootstrap_macro_f1(ok["reference"], ok["label"], labels=labels, n_boot=n_boot,
                            seed=seed, confidence=conf)
    cls, per_class, cm = classification_summary(ok["reference"], ok["label"], labels)
    if len(ok) >= 10 and n_boot:
        per_class = per_class.merge(per_class_f1_ci(ok["reference"], ok["label"], labels,
                                                    n_boot, seed, conf), on="label")
    per_class.to_csv(out["per_class"], index=False)
    cm.to_csv(out["confusion"])
    # against each human coder, next to human-human agreement
    wide = codes.loc[codes["label"] != ""].pivot(index="id", columns="coder", values="label")
    vs = []
    pred_by_id = ok.set_index("id")["label"]
    # with many coders (crowd codes) compare with those who coded the most gold items
    busiest = wide.notna().sum().sort_values(ascending=False, kind="stable").index
    for c in busiest[:MAX_PAIRWISE_CODERS]:
        both = wide[c].dropna().to_frame("human").join(pred_by_id.rename("model"), how="inner")
        if len(both) >= 10:
            vs.append({"model": model, "coder": c,
                       **kappa_summary(both["human"], both["model"], labels, conf, n_boot, seed)})
    pd.DataFrame(vs).to_csv(out["vs_coders"], index=False)
    # per stratum
    rows = []
    for s in strata:
        if s not in ok.columns:
            continue
        for value, g in ok.groupby(s):
            if len(g) < 5:
                rows.append({"stratum": s, "value": value, "n": len(g)})
                continue
            kk = cohen_kappa(g["reference"], g["label"], labels=labels, confidence=conf)
            ff = bootstrap_macro_f1(g["reference"], g["label"], labels=labels,
                                    n_boot=min(n_boot, 500), seed=seed, confidence=conf)
            rows.append({"stratum": s, "value": value, "n": len(g), "kappa": kk.estimate,
                         "kappa_ci_low": kk.ci_low, "kappa_ci_high": kk.ci_high,
                         "macro_f1": ff.estimate, "f1_ci_low": ff.ci_low,
                         "f1_ci_high": ff.ci_high,
                         "below_threshold": bool(kk.ci_high < thr)})
    pd.DataFrame(rows).to_csv(out["per_stratum"], index=False)
    metrics = {
        "model": model, "n_gold": int(len(gold)), "n_evaluated": int(len(ok)),
        "coverage": float(len(ok) / len(gold)) if len(gold) else 0.0,
        "status_counts": status_counts, "kappa": k,
        "macro_f1": {"estimate": f1.estimate, "ci_low": f1.ci_low, "ci_high": f1.ci_high,
                     "n": f1.n},
        "classification": cls, "per_class": per_class.to_dict("records"),
        "vs_coders": vs, "per_stratum": rows, "threshold": thr,
        "decision": decide(k, thr),
        "human_ceiling": {"alpha": human.get("alpha", {}).get("estimate"),
                          "kappa": human.get("ceiling_kappa")},
        "mean_confidence": float(ok["confidence"].mean()) if ok["confidence"].notna().any()
        else None,
    }
    write_json_atomic(metrics, out["metrics"])
    log.info("%s: kappa=%.3f [%.3f, %.3f], macro-F1=%.3f, n=%d -> %s", model, k["kappa"],
             k["ci_low"], k["ci_high"], f1.estimate, len(ok), metrics["decision"])
    return metrics
