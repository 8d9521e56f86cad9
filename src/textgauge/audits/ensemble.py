"""Ensemble coding: majority vote across coders and self-consistency across samples.

Running a text through two or three models (or one model several times at temperature > 0)
and taking the majority vote catches model-specific errors that one model's confidence does
not reveal; disagreement routes the text to human review (course Module 3; self-consistency:
Wang et al. 2023, ICLR). Ties are flagged and resolved by the highest mean confidence of the
tied labels (then alphabetically, flagged as unresolved).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import prediction_labels, require_columns
from textgauge.errors import InputDataError

REASON_DISAGREEMENT = "ensemble_disagreement"
REASON_TIE = "ensemble_tie"


def _to_long(tables: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame]) -> pd.DataFrame:
    if isinstance(tables, Mapping):
        items = list(tables.items())
    else:
        items = []
        for i, t in enumerate(tables):
            name = (str(t["model"].iloc[0]) if "model" in t.columns and len(t)
                    and t["model"].nunique() == 1 else f"coder{i + 1}")
            items.append((name, t))
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        names = [f"{n}#{i + 1}" for i, n in enumerate(names)]
    parts = []
    for name, t in zip(names, (t for _, t in items), strict=True):
        require_columns(t, ["id", "label"], f"predictions of {name}")
        if t["id"].astype(str).duplicated().any():
            raise InputDataError(f"The predictions of {name} repeat ids; keep one row per item.")
        conf = (pd.to_numeric(t["confidence"], errors="coerce") if "confidence" in t.columns
                else pd.Series(np.nan, index=t.index))
        parts.append(pd.DataFrame({"id": t["id"].astype(str).to_numpy(), "coder": name,
                                   "label": prediction_labels(t, "drop").to_numpy(),
                                   "confidence": conf.to_numpy()}))
    if not parts:
        raise InputDataError("No prediction tables given to the ensemble.")
    return pd.concat(parts, ignore_index=True)


def vote_long(long: pd.DataFrame, coder_col: str = "coder") -> pd.DataFrame:
    """Majority vote over a long table (id, ``coder_col``, label, confidence).

    Rows with a missing label (invalid/failed) are abstentions. Returns one row per id:
    label (the vote), n_votes (for it), n_coders (that answered), n_total, agreement
    (n_votes / n_coders), unanimous, tie (several labels share the top count), tie_resolved
    (the tie was broken by a strictly higher mean confidence), mean_confidence (of the voters
    for the winning label), votes ('a:2;b:1'), plus ``label_<coder>`` columns.
    """
    require_columns(long, ["id", coder_col, "label"], "ensemble")
    df = long.copy()
    df["id"] = df["id"].astype(str)
    if df.duplicated(["id", coder_col]).any():
        raise InputDataError(f"The ensemble table repeats (id, {coder_col}) pairs; keep one "
                             "answer per coder and item.")
    if "confidence" not in df.columns:
        df["confidence"] = np.nan
    coders = list(dict.fromkeys(df[coder_col].astype(str)))
    wide = df.assign(_c="label_" + df[coder_col].astype(str)).pivot(
        index="id", columns="_c", values="label")
    wide = wide[[f"label_{c}" for c in coders]]
    n_total = df.groupby("id")[coder_col].nunique()
    ok = df[df["label"].notna()]
    g = ok.groupby(["id", "label"]).agg(n=("label", "size"),
                                        mean_conf=("confidence", "mean")).reset_index()
    g["mean_conf_key"] = g["mean_conf"].fillna(-np.inf)
    g["top"] = g.groupby("id")["n"].transform("max")
    g["is_top"] = g["n"] == g["top"]
    g["n_top"] = g.groupby("id")["is_top"].transform("sum")
    tops = g[g["is_top"]].sort_values(["id", "mean_conf_key", "label"],
                                      ascending=[True, False, True])
    rank = tops.groupby("id").cumcount()
    best = tops[rank == 0].set_index("id")
    second = tops[rank == 1].set_index("id")["mean_conf_key"]
    votes = (g.sort_values(["id", "n", "label"], ascending=[True, False, True])
             .assign(_v=lambda x: x["label"].astype(str) + ":" + x["n"].astype(str))
             .groupby("id")["_v"].agg(";".join))
    n_coders = ok.groupby("id").size()
    out = pd.DataFrame(index=wide.index)
    out["label"] = best["label"]
    out["n_votes"] = best["n"].reindex(out.index).fillna(0).astype(int)
    out["n_coders"] = n_coders.reindex(out.index).fillna(0).astype(int)
    out["n_total"] = n_total.reindex(out.index).astype(int)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["agreement"] = out["n_votes"] / out["n_coders"].replace(0, np.nan)
    out["tie"] = best["n_top"].reindex(out.index).fillna(0).astype(int) > 1
    sec = second.reindex(out.index)
    out["tie_resolved"] = out["tie"] & (best["mean_conf_key"].reindex(out.index) > sec)
    out["unanimous"] = (out["n_votes"] == out["n_total"]) & (out["n_coders"] > 0)
    out["mean_confidence"] = best["mean_conf"].reindex(out.index)
    out["votes"] = votes.reindex(out.index).fillna("")
    out = out.join(wide)
    return out.reset_index().rename(columns={"index": "id"})


def majority_vote(tables: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame]) -> pd.DataFrame:
    """Majority vote across several coders' prediction tables (see :func:`vote_long`).

    ``tables`` maps coder name -> predictions table (or is a list; names then come from the
    ``model`` column or are coder1, coder2, ...). Ties are flagged (``tie``) and resolved by
    the highest mean confidence among the tied labels.
    """
    return vote_long(_to_long(tables))


def agreement_rate(tables: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame]) -> dict:
    """How often the coders agree: unanimity rate, mean pairwise agreement, per-pair table.

    Returns a dict with ``unanimous_rate`` (share of items where every coder gave the same
    valid label), ``mean_pairwise_agreement`` and ``pairs`` (DataFrame coder_a, coder_b, n,
    agreement over the items both answered), and ``n_items``.
    """
    long = _to_long(tables)
    return _agreement_from_long(long, "coder")


def _agreement_from_long(long: pd.DataFrame, coder_col: str) -> dict:
    wide = long.pivot(index="id", columns=coder_col, values="label")
    rows = []
    for a, b in combinations(wide.columns, 2):
        both = wide[[a, b]].dropna()
        rows.append({"coder_a": a, "coder_b": b, "n": len(both),
                     "agreement": float((both[a] == both[b]).mean()) if len(both) else np.nan})
    pairs = pd.DataFrame(rows, columns=["coder_a", "coder_b", "n", "agreement"])
    complete = wide.notna().all(axis=1)
    unanimous = complete & (wide.nunique(axis=1) == 1)
    return {"n_items": len(wide), "unanimous_rate": float(unanimous.mean()) if len(wide) else
            np.nan, "mean_pairwise_agreement": float(pairs["agreement"].mean()) if len(pairs)
            else np.nan, "pairs": pairs}


def disagreements_to_review(vote: pd.DataFrame, queue: pd.DataFrame | None = None) -> pd.DataFrame:
    """Items the ensemble did not agree on (any dissent, abstention or tie), for review.

    With ``queue`` (a :func:`textgauge.audits.review_queue.review_queue`), returns the union: queue rows
    first, then ensemble disagreements not already queued; ``reason`` says why.
    """
    bad = vote[~vote["unanimous"] | vote["tie"]].copy()
    bad["reason"] = np.where(bad["tie"], REASON_TIE, REASON_DISAGREEMENT)
    cols = ["id", "label", "mean_confidence", "agreement", "votes", "reason"]
    bad = bad[cols].rename(columns={"mean_confidence": "confidence"})
    if queue is None:
        return bad.reset_index(drop=True)
    q = queue.drop(columns=["rank"], errors="ignore")
    extra = bad[~bad["id"].isin(set(q["id"]))]
    out = pd.concat([q, extra], ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def self_consistency(samples: pd.DataFrame, sample_col: str = "sample") -> dict:
    """Vote over k samples of one model at temperature > 0 (self-consistency).

    ``samples`` is long: id, label, confidence (optional), ``sample_col`` (1..k). Returns
    ``{'vote': vote table (see :func:`vote_long`), 'agreement': dict as in
    :func:`agreement_rate`}``; a row's ``agreement`` is the share of samples for the winner.
    """
    require_columns(samples, ["id", "label", sample_col], "samples")
    df = samples.copy()
    df["label"] = prediction_labels(df, "drop")
    df[sample_col] = df[sample_col].astype(str)
    if df.duplicated(["id", sample_col]).any():
        raise InputDataError("The samples repeat (id, sample) pairs; keep one row per sample.")
    vote = vote_long(df, coder_col=sample_col)
    return {"vote": vote, "agreement": _agreement_from_long(df.assign(
        id=df["id"].astype(str)), sample_col)}
