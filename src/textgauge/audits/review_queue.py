"""The human review round trip: a coded review queue back in, final corpus labels out.

Confidence thresholding as in the course: :func:`review_queue` routes the lowest-confidence
``review_fraction`` (default 0.15; 10-20 % is the usual cost-quality trade-off) of the corpus
to human review, and :func:`kappa_after_review` compares kappa on the auto-accepted part of
the gold set with kappa on all of it (statistics from :mod:`textgauge.stats`). Both rank on
the predictions' ``confidence``, which for an encoder is the calibrated one (temperature
scaling fitted on the validation split); its ``confidence_raw`` is never used to route texts
(the audit shows the queue it would have made, for comparison).

The ``audit_model`` step writes ``review_queue.csv``: the least confident share of the corpus. A reviewer adds a ``human_label`` column and
codes some or all of its rows. :func:`read_review_codes` validates those codes against the
codebook (:func:`textgauge.data.coding.validate_codes`: unknown labels are reported with their
rows) and the ids against the queue; :func:`final_labels` gives every corpus item its final
label (the reviewer's where there is one, else the model's; ``source`` says which) and
:func:`tabulate_review` counts what the review changed: how many items were reviewed, the
share whose label changed (with a Wilson interval) and the changes by (model, human) label
pair. A high share changed means the auto-accepted rest deserves a closer look too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import align_with_gold, require_columns
from textgauge.audits.weighting import AuditDesign
from textgauge.data.coding import validate_codes
from textgauge.data.ids import normalise_ids
from textgauge.data.sheets import read_sheet
from textgauge.errors import InputDataError, format_rows
from textgauge.stats import kappa_summary, weighted_metrics, wilson_ci

#: reasons written to the review queue
REASON_LOW_CONFIDENCE = "low_confidence"
REASON_INVALID = "invalid_or_failed"
REASON_NO_CONFIDENCE = "no_confidence"

#: the column a reviewer fills in the review queue
HUMAN_COLUMN = "human_label"
#: how a missing/invalid model answer is shown in the change table
NO_ANSWER = "(no answer)"
FINAL_COLUMNS = ["id", "label", "source", "human_source", "model_label", "human_label",
                 "confidence", "status"]


def read_review_codes(
    coded: str | Path | pd.DataFrame,
    labels: Sequence[str],
    queue: pd.DataFrame | None = None,
    label_column: str = HUMAN_COLUMN,
) -> pd.DataFrame:
    """Read a coded review queue: one row per queued item, ``human_label`` filled or blank.

    Returns the file's rows with ``id`` (text) and ``human_label`` mapped onto the codebook's
    labels ('' = not reviewed yet). Raises :class:`InputDataError` naming the rows when a label
    is not in the codebook, an id appears twice, or an id is not in ``queue`` (the queue the
    workflow wrote: a file from another run would silently relabel the wrong texts).
    """
    if isinstance(coded, (str, Path)):
        source = f"The coded review queue {coded}"
        df = read_sheet(coded, "coded review queue")
    else:
        source = "The coded review queue"
        df = coded.copy()
    if label_column not in df.columns:
        raise InputDataError(
            f"{source} has no column {label_column!r}; its columns are "
            f"{', '.join(map(repr, df.columns))}. Add a {label_column!r} column to "
            "review_queue.csv and write each reviewed text's label there.")
    df = df.reset_index(drop=True)
    try:
        mapped = validate_codes(df, labels, source, label_column=label_column)
    except InputDataError as exc:  # the label_map hint is about gold codes, not this file
        raise InputDataError(str(exc).replace(
            " (or map the source's codes with gold.codes_long.label_map)", "")) from None
    df[label_column] = mapped.to_numpy()
    df["id"] = normalise_ids(df["id"], source).to_numpy()
    dup = df["id"].duplicated(keep=False)
    if dup.any():
        rows = [f"row {i + 1} (id {df.at[i, 'id']})" for i in np.flatnonzero(dup.to_numpy())]
        raise InputDataError(f"{source} lists ids more than once: {format_rows(rows)}. "
                             "Keep one row per text.")
    if queue is not None:
        known = set(queue["id"].astype(str))
        unknown = ~df["id"].isin(known)
        if unknown.any():
            rows = [f"row {i + 1} (id {df.at[i, 'id']})"
                    for i in np.flatnonzero(unknown.to_numpy())]
            raise InputDataError(
                f"{source} has ids that are not in the review queue: {format_rows(rows)}. "
                "Did the file come from another run? Code the current review_queue.csv.")
    if label_column != HUMAN_COLUMN:
        df = df.rename(columns={label_column: HUMAN_COLUMN})
    return df


def _model_labels(predictions: pd.DataFrame) -> pd.DataFrame:
    require_columns(predictions, ["id", "label"], "predictions")
    p = predictions.copy()
    p["id"] = p["id"].astype(str)
    if p["id"].duplicated().any():
        raise InputDataError("The predictions have repeated ids; keep one row per item.")
    status = (p["status"].fillna("ok").astype(str) if "status" in p.columns
              else pd.Series("ok", index=p.index))
    label = p["label"].astype(object).where((status == "ok") & p["label"].notna(), None)
    conf = (pd.to_numeric(p["confidence"], errors="coerce") if "confidence" in p.columns
            else pd.Series(np.nan, index=p.index))
    return pd.DataFrame({"id": p["id"].to_numpy(), "model_label": label.to_numpy(),
                         "confidence": conf.to_numpy(), "status": status.to_numpy()})


def final_labels(
    predictions: pd.DataFrame,
    reviewed: pd.DataFrame,
    gold: pd.DataFrame | None = None,
    reference_col: str = "reference",
) -> pd.DataFrame:
    """Final corpus labels: the reviewer's label where given, else the model's.

    ``reviewed`` is :func:`read_review_codes`'s output. With ``gold`` (id, ``reference_col``)
    the gold items take their human reference label as well. Columns: id, label (final; None
    for an unreviewed invalid answer), source (``human`` or ``model``), human_source
    (``review``, ``gold`` or None), model_label, human_label, confidence, status.
    """
    out = _model_labels(predictions)
    out["human_label"] = None
    out["human_source"] = None
    if gold is not None:
        require_columns(gold, ["id", reference_col], "gold")
        ref = dict(zip(gold["id"].astype(str), gold[reference_col], strict=True))
        g = out["id"].map(ref)
        has = g.notna()
        out.loc[has, "human_label"] = g[has]
        out.loc[has, "human_source"] = "gold"
    rv = reviewed.loc[reviewed[HUMAN_COLUMN].fillna("").astype(str) != ""]
    codes = dict(zip(rv["id"].astype(str), rv[HUMAN_COLUMN], strict=True))
    missing = sorted(set(codes) - set(out["id"]))
    if missing:
        raise InputDataError(f"Reviewed ids {format_rows(missing)} are not in the predictions.")
    r = out["id"].map(codes)
    has = r.notna()
    out.loc[has, "human_label"] = r[has]
    out.loc[has, "human_source"] = "review"
    human = out["human_label"].notna()
    out["label"] = out["human_label"].where(human, out["model_label"])
    out["source"] = np.where(human, "human", "model")
    return out[FINAL_COLUMNS]


def tabulate_review(
    final: pd.DataFrame,
    reviewed: pd.DataFrame,
    labels: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """What the review changed: counts, share changed (Wilson CI), changes by label pair.

    ``final`` is :func:`final_labels`'s output, ``reviewed`` :func:`read_review_codes`'s.
    Returns n_queue (rows in the coded file), n_reviewed, n_not_reviewed, n_changed,
    share_changed (of reviewed; an invalid model answer that a reviewer labelled counts as
    changed) with share_changed_ci_low/high, ``changes`` (model_label, human_label, n; most
    frequent first, only pairs that differ), ``by_model_label`` (per model label: n_reviewed,
    n_changed, share_changed), ``by_reason`` (when the queue has a ``reason`` column) and
    ``prevalence`` (per label: the share among the model's labels and among the final labels
    of the corpus).
    """
    rv = reviewed.assign(id=reviewed["id"].astype(str))
    done = rv[HUMAN_COLUMN].fillna("").astype(str) != ""
    f = final.set_index("id")
    d = rv.loc[done, ["id", HUMAN_COLUMN] + (["reason"] if "reason" in rv.columns else [])]
    d = d.assign(model_label=d["id"].map(f["model_label"]).fillna(NO_ANSWER))
    d["changed"] = d["model_label"] != d[HUMAN_COLUMN]
    n_rev, n_chg = int(len(d)), int(d["changed"].sum())
    lo, hi = wilson_ci(n_chg, n_rev, confidence) if n_rev else (np.nan, np.nan)
    pairs = (d[d["changed"]].groupby(["model_label", HUMAN_COLUMN]).size()
             .rename("n").reset_index()
             .sort_values(["n", "model_label", HUMAN_COLUMN], ascending=[False, True, True]))
    by_model = (d.groupby("model_label")["changed"].agg(n_reviewed="size", n_changed="sum")
                .reset_index())
    by_model["share_changed"] = by_model["n_changed"] / by_model["n_reviewed"]
    out: dict[str, Any] = {
        "n_queue": int(len(rv)), "n_reviewed": n_rev, "n_not_reviewed": int((~done).sum()),
        "n_changed": n_chg, "share_changed": n_chg / n_rev if n_rev else None,
        "share_changed_ci_low": float(lo) if n_rev else None,
        "share_changed_ci_high": float(hi) if n_rev else None,
        "confidence": float(confidence), "n_boot": 0,  # Wilson: no replicates
        "changes": pairs.to_dict("records"),
        "by_model_label": by_model.to_dict("records"),
    }
    if "reason" in d.columns:
        by_reason = d.groupby("reason")["changed"].agg(n_reviewed="size", n_changed="sum")
        by_reason["share_changed"] = by_reason["n_changed"] / by_reason["n_reviewed"]
        out["by_reason"] = by_reason.reset_index().to_dict("records")
    labs = list(labels) if labels is not None else sorted(
        set(final["label"].dropna()) | set(final["model_label"].dropna()))
    model_n = final["model_label"].value_counts().reindex(labs, fill_value=0)
    final_n = final["label"].value_counts().reindex(labs, fill_value=0)
    out["prevalence"] = [
        {"label": lab, "model_n": int(model_n[lab]), "final_n": int(final_n[lab]),
         "model_share": float(model_n[lab] / max(model_n.sum(), 1)),
         "final_share": float(final_n[lab] / max(final_n.sum(), 1))} for lab in labs]
    out["sources"] = {k: int(v) for k, v in final["source"].value_counts().items()}
    out["human_sources"] = {k: int(v) for k, v in
                            final["human_source"].dropna().value_counts().items()}
    return out


def import_review(
    coded: str | Path | pd.DataFrame,
    predictions: pd.DataFrame,
    labels: Sequence[str],
    queue: pd.DataFrame | None = None,
    gold: pd.DataFrame | None = None,
    confidence: float = 0.95,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read and validate a coded review queue; return (final labels, tabulation)."""
    reviewed = read_review_codes(coded, labels, queue)
    final = final_labels(predictions, reviewed, gold)
    return final, tabulate_review(final, reviewed, labels, confidence)


# ---------------------------------------------------------------- selecting the queue


def gold_correctness(gold: pd.DataFrame, predictions: pd.DataFrame,
                     reference_col: str = "reference") -> pd.DataFrame:
    """Gold items with ``label``, ``confidence`` and ``correct`` (invalid answers: wrong)."""
    al = align_with_gold(gold, predictions, reference_col)
    al["correct"] = al["label"] == al["reference"]
    return al


def review_size(n: int, review_fraction: float) -> int:
    """ceil(review_fraction * n), robust to floating error (0.15 * 100 is 15, not 16)."""
    if not 0 <= review_fraction <= 1:
        raise ValueError("review_fraction must lie in [0, 1]")
    return int(math.ceil(round(review_fraction * n, 9)))


def review_queue(
    predictions: pd.DataFrame,
    review_fraction: float = 0.15,
    exclude_ids: Iterable[str] = (),
    extra_columns: Sequence[str] = (),
) -> pd.DataFrame:
    """The ``ceil(review_fraction * n)`` least confident items of a corpus, for human review.

    ``n`` counts the corpus items after ``exclude_ids`` (e.g. items already coded by humans).
    Invalid/failed answers and missing confidences rank below every real confidence, so they
    are reviewed first; ties are broken by id, so the queue is deterministic. Columns: rank,
    id, label, confidence, status, reason, plus ``extra_columns`` (e.g. text, strata). The
    queue's ``attrs['threshold']`` is the highest confidence queued.
    """
    require_columns(predictions, ["id", "label"], "predictions")
    df = predictions.copy()
    df["id"] = df["id"].astype(str)
    if df["id"].duplicated().any():
        raise InputDataError("The predictions have repeated ids; keep one row per item.")
    excl = {str(i) for i in exclude_ids}
    df = df[~df["id"].isin(excl)]
    conf = (pd.to_numeric(df["confidence"], errors="coerce") if "confidence" in df.columns
            else pd.Series(np.nan, index=df.index))
    status = df["status"].fillna("ok").astype(str) if "status" in df.columns else \
        pd.Series("ok", index=df.index)
    bad = (status != "ok") | df["label"].isna()
    reason = np.where(bad, REASON_INVALID,
                      np.where(conf.isna(), REASON_NO_CONFIDENCE, REASON_LOW_CONFIDENCE))
    key = conf.where(~bad & conf.notna(), -np.inf)
    df = df.assign(_key=key.to_numpy(), reason=reason, status=status.to_numpy(),
                   confidence=conf.to_numpy())
    k = review_size(len(df), review_fraction)
    q = df.sort_values(["_key", "id"], kind="stable").head(k)
    cols = ["id", "label", "confidence", "status", "reason"] + [
        c for c in extra_columns if c in q.columns and c not in ("id", "label", "confidence")]
    out = q[cols].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    finite = q["_key"][np.isfinite(q["_key"])]
    out.attrs["threshold"] = float(finite.max()) if len(finite) else float("nan")
    out.attrs["n_corpus"] = len(df)
    return out


def kappa_after_review(
    predictions: pd.DataFrame,
    gold: pd.DataFrame,
    review_fraction: float = 0.15,
    reference_col: str = "reference",
    labels: Sequence[str] | None = None,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    weights: str | None = None,
    design: AuditDesign | None = None,
) -> pd.DataFrame:
    """Kappa on all gold items vs on the gold items the confidence threshold auto-accepts
    (weighted with ``weights`` for an ordinal codebook).

    With a weighted gold ``design`` (a model-assisted sample, which over-samples exactly the
    low-confidence texts the queue takes) share, accuracy and kappa are design-weighted
    estimates for the corpus (kappa's CI: bootstrap within design cells,
    :func:`textgauge.stats.weighted_metrics`); ``n`` still counts items.

    The queue is chosen on the whole ``predictions`` corpus (:func:`review_queue`); gold items
    are split by whether they fall in it. Rows: ``all_gold``, ``auto_accepted``, ``reviewed``
    with n, share, accuracy, kappa, kappa_ci_low, kappa_ci_high (the analytic CI of
    :func:`textgauge.stats.kappa_summary`), confidence, n_boot. Invalid answers are errors.
    """
    queue = review_queue(predictions, review_fraction)
    queued = set(queue["id"])
    al = align_with_gold(gold, predictions, reference_col)
    codebook = list(labels) if labels is not None else sorted(set(al["reference"]))
    parts = {"all_gold": al, "auto_accepted": al[~al["id"].isin(queued)],
             "reviewed": al[al["id"].isin(queued)]}
    if design is not None and design.weighted:
        out = pd.DataFrame(_weighted_review_rows(parts, al, codebook, design, confidence,
                                                 bootstrap, seed, weights))
        out.attrs["threshold"] = queue.attrs["threshold"]
        out.attrs["review_fraction"] = review_fraction
        return out
    rows = []
    for name, part in parts.items():
        if len(part) >= 2:
            k = kappa_summary(part["reference"], part["label"], codebook,
                              confidence=confidence, bootstrap=bootstrap, seed=seed,
                              weights=weights)
            est, lo, hi = k["kappa"], k["ci_low"], k["ci_high"]
        else:
            est = lo = hi = np.nan
        rows.append({"subset": name, "n": len(part),
                     "share": len(part) / len(al) if len(al) else np.nan,
                     "accuracy": float((part["reference"] == part["label"]).mean())
                     if len(part) else np.nan,
                     "kappa": est, "kappa_ci_low": lo, "kappa_ci_high": hi,
                     "confidence": float(confidence), "n_boot": int(bootstrap)})
    out = pd.DataFrame(rows)
    out.attrs["threshold"] = queue.attrs["threshold"]
    out.attrs["review_fraction"] = review_fraction
    return out


def _weighted_review_rows(parts: dict[str, pd.DataFrame], al: pd.DataFrame,
                          codebook: list, design: AuditDesign, confidence: float,
                          bootstrap: int, seed: int, weights: str | None) -> list[dict]:
    """:func:`kappa_after_review`'s rows, design-weighted (same columns)."""
    total = float(design.weights_for(al["id"]).sum()) if len(al) else np.nan
    rows = []
    for name, part in parts.items():
        w = design.weights_for(part["id"])
        correct = (part["reference"] == part["label"]).to_numpy(dtype=float)
        est = lo = hi = np.nan
        if len(part) >= 2:
            m = weighted_metrics(part["reference"], part["label"], codebook, design_weights=w,
                                 cells=design.cells_for(part["id"]), weights=weights,
                                 n_boot=bootstrap, seed=seed, confidence=confidence)
            est = m.estimates["kappa"]
            lo, hi = m.ci("kappa")
        rows.append({"subset": name, "n": len(part),
                     "share": float(w.sum() / total) if len(al) else np.nan,
                     "accuracy": float((w * correct).sum() / w.sum()) if len(part) else np.nan,
                     "kappa": est, "kappa_ci_low": lo, "kappa_ci_high": hi,
                     "confidence": float(confidence), "n_boot": int(bootstrap)})
    return rows
