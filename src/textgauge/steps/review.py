"""Steps of workflow/rules/review.smk: human round trips and stability audits.

* :func:`import_error_sheet`: the coded error sheet in, error patterns out.
* :func:`import_review`: the coded review queue in, final corpus labels out.
* :func:`retest`: the current run against a stored earlier run of the same coder.
* :func:`prompt_stability`: the gold set under the configured prompt and its paraphrases.

Statistics come from :mod:`textgauge.stats` through :mod:`textgauge.audits`; every interval
records ``confidence`` and ``n_boot``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textgauge.audits import error_sheet as errorsheet
from textgauge.audits.gold_alignment import prediction_labels
from textgauge.audits.prompt_stability import prompt_stability as run_prompt_stability
from textgauge.audits.prompt_stability import weighted_change_rates
from textgauge.audits.retest import test_retest
from textgauge.audits.review_queue import import_review as read_coded_review
from textgauge.audits.weighting import audit_design
from textgauge.data.ids import normalise_ids
from textgauge.data.sheets import read_csv as read_sheet_csv
from textgauge.errors import InputDataError, format_rows
from textgauge.io import write_json_atomic, write_parquet_atomic
from textgauge.stats.alpha import weighted_alpha
from textgauge.stats.classification import kappa_weights_for

log = logging.getLogger("textgauge")

#: flips listed in retest.json (all are counted)
MAX_FLIPS = 200
#: example ids per error pattern
N_EXAMPLES = 3


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


def import_review(*, model: str, coded: str, queue: str, predictions: str, reference: str,
                  final: str, review: str, labels: Sequence[str], confidence: float) -> dict:
    """A coded review queue in: final corpus labels (human where reviewed) and a tabulation."""
    queue_df = read_sheet_csv(queue, dtype={"id": str}, keep_default_na=False)
    preds = pd.read_parquet(predictions)
    gold = pd.read_parquet(reference)[["id", "reference"]]
    final_df, tab = read_coded_review(coded, preds, labels, queue=queue_df, gold=gold,
                                      confidence=confidence)
    write_parquet_atomic(final_df, final)
    res = _finite({"model": model, "source": str(coded), **tab})
    write_json_atomic(res, review)
    log.info("%s review: %d of %d queued texts reviewed, %d changed (%s)", model,
             tab["n_reviewed"], tab["n_queue"], tab["n_changed"],
             "n/a" if tab["share_changed"] is None else f"{tab['share_changed']:.1%}")
    return res



def import_error_sheet(*, model: str, coded: str, sheet: str, patterns: str) -> dict:
    """The coded error sheet in: error patterns with counts, shares and example ids."""
    coded_df = errorsheet.read_error_sheet(coded)
    exported = read_sheet_csv(sheet, dtype={"id": str}, keep_default_na=False)
    unknown = sorted(set(coded_df["id"]) - set(normalise_ids(exported["id"], str(sheet))))
    if unknown:
        raise InputDataError(
            f"The coded error sheet {coded} has ids that are not misclassified gold items "
            f"of {model} in this run: {format_rows(unknown)}. Code the current {sheet}.")
    table = errorsheet.tabulate_error_patterns(coded_df, n_examples=N_EXAMPLES)
    n_coded = int((coded_df["category"] != "").sum())
    res = {"model": model, "source": str(coded), "n_errors": int(len(exported)),
           "n_rows": int(len(coded_df)), "n_coded": n_coded,
           "n_uncoded": int(len(coded_df)) - n_coded, "patterns": table.to_dict("records")}
    if "gold" in coded_df.columns and n_coded:
        by_gold = errorsheet.tabulate_error_patterns(coded_df[coded_df["category"] != ""],
                                                     n_examples=N_EXAMPLES, by=["gold"])
        res["by_gold"] = by_gold.to_dict("records")
    res = _finite(res)
    write_json_atomic(res, patterns)
    top = table.loc[table["category"] != errorsheet.UNCODED, "category"].head(1).tolist()
    log.info("%s error patterns: %d of %d errors coded; most common: %s", model, n_coded,
             len(coded_df), top[0] if top else "none")
    return res


def retest(*, model: str, current: str, current_manifest: str | None, earlier: str,
           earlier_manifest: str | None, reference: str, retest: str, labels: Sequence[str],
           confidence: float, bootstrap: int, seed: int, scale: str = "nominal",
           kappa_weights: str | None = None) -> dict:
    """Temporal test-retest: the current run against a stored earlier run, on the gold set.

    ``earlier_manifest`` is the ``<name>.manifest.json`` kept beside the earlier predictions
    (or None).
    """
    if isinstance(earlier_manifest, (list, tuple)):
        earlier_manifest = earlier_manifest[0] if earlier_manifest else None
    gold = pd.read_parquet(reference)[["id", "reference"]]
    res = test_retest(pd.read_parquet(current), pd.read_parquet(earlier),
                      _read_json(current_manifest), _read_json(earlier_manifest), gold=gold,
                      labels=labels, bootstrap=bootstrap, confidence=confidence, seed=seed,
                      weights=kappa_weights_for(scale, kappa_weights))
    flips = res.flips.rename(columns={"label_earlier": "earlier", "label_current": "current"})
    cols = [c for c in ("id", "earlier", "current", "reference") if c in flips.columns]
    diff = res.manifest_diff.assign(
        earlier=lambda d: d["earlier"].map(_short), current=lambda d: d["current"].map(_short))
    out = {"model": model, "earlier": str(earlier),
           "earlier_manifest": str(earlier_manifest) if earlier_manifest else None,
           "n_common": res.n_common, "agreement": res.agreement, "kappa": res.kappa,
           "n_flips": int(len(res.flips)),
           "flip_rate": len(res.flips) / res.n_common if res.n_common else None,
           "flips": flips[cols].head(MAX_FLIPS).to_dict("records"),
           "accuracy_earlier": res.accuracy_earlier, "accuracy_current": res.accuracy_current,
           "n_only_earlier": len(res.only_earlier), "n_only_current": len(res.only_current),
           "manifest_diff": diff.to_dict("records"), "confidence": confidence,
           "n_boot": bootstrap}
    out = _finite(out)
    write_json_atomic(out, retest)
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


def prompt_stability(*, model: str, base: str, variants: Sequence[str], reference: str,
                     audit: str, base_prompt: str, templates: Sequence[str],
                     labels: Sequence[str], confidence: float, bootstrap: int,
                     seed: int, scale: str = "nominal", sample: str | None = None) -> dict:
    """Prompt stability: the gold set under the configured prompt and its paraphrases
    (the ordinal alpha over the scale for an ordinal codebook; else the nominal alpha over
    the categories the answers use). Under a model-assisted gold ``sample`` the alpha and
    the change rates are design-weighted (the sample as drawn in ``as_drawn``)."""
    ordinal = kappa_weights_for(scale) is not None
    variants = [variants] if isinstance(variants, str) else list(variants)
    gold = pd.read_parquet(reference)[["id", "reference"]]
    ids = set(gold["id"].astype(str))
    names = ["original", *[f"variant-{i}" for i in range(1, len(variants) + 1)]]
    prompts = [base_prompt, *templates]
    frames, shown = [], []
    for name, prompt, path in zip(names, prompts, [base, *variants], strict=True):
        df = pd.read_parquet(path)
        df = df.loc[df["id"].astype(str).isin(ids)]
        cols = [c for c in ("id", "label", "status") if c in df.columns]
        frames.append(df[cols].assign(prompt_variant=name))
        hashes = df["prompt_hash"].dropna().unique().tolist() if "prompt_hash" in df else []
        shown.append({"name": name, "template": str(prompt),
                      "prompt_hash": hashes[0] if len(hashes) == 1 else hashes})
    long = pd.concat(frames, ignore_index=True)
    res = run_prompt_stability(long, run_col=None, gold=gold, bootstrap=bootstrap,
                               confidence=confidence, seed=seed,
                               level="ordinal" if ordinal else "nominal",
                               categories=list(labels) if ordinal else None)
    per = res.per_variant.copy()
    wide = long.assign(label=prediction_labels(long, invalid="drop")).pivot(
        index="id", columns="prompt_variant", values="label")
    design = audit_design(pd.Series(wide.index), pd.read_parquet(sample)) if sample else None
    weights = design.weights_for(wide.index) if design else None
    as_drawn = None
    per["changed_vs_original"] = weighted_change_rates(wide, weights, list(per["variant"]))
    alpha = res.alpha_variants
    if weights is not None:
        # the corpus-level figures (model-assisted gold: design weights, bootstrap within
        # cells); the sample as drawn beside them
        as_drawn = {"alpha": alpha, "changed_vs_original": weighted_change_rates(
            wide, None, list(per["variant"]))}
        alpha = weighted_alpha(wide[names].T.to_numpy(dtype=object), weights, design.cells_for(wide.index),
                               level="ordinal" if ordinal else "nominal", n_boot=bootstrap,
                               seed=seed, confidence=confidence,
                               categories=list(labels) if ordinal else None).to_dict()
    per = per.merge(pd.DataFrame(shown).rename(columns={"name": "variant"}), on="variant",
                    how="left")
    out = {"model": model, "n_items": int(wide.shape[0]), "n_variants": len(names),
           "alpha": alpha, "variants": shown,
           "per_variant": per.to_dict("records"), "notes": res.notes,
           "confidence": confidence, "n_boot": bootstrap,
           "design": design.info if design else None, "as_drawn": as_drawn}
    out = _finite(out)
    write_json_atomic(out, audit)
    a = alpha
    log.info("%s prompt stability: Krippendorff's alpha across %d prompts = %.3f [%.3f, %.3f]",
             model, len(names), a["estimate"], a["ci_low"], a["ci_high"])
    return out
