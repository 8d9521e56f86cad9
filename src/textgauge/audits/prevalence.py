"""Corrected class prevalence over a classified corpus: naive share, PPI and DSL per stratum.

The estimators are :func:`textgauge.stats.ppi_mean` and :func:`textgauge.stats.dsl_mean`
(see :mod:`textgauge.stats.prevalence` for the formulas and references); this audit applies
them to one coder's corpus predictions and the gold sample, overall and per stratum.
Invalid/failed predictions count as f = 0 in both corrections (the rectifier absorbs them:
they are errors); the naive share is over valid predictions.

The estimates are for the population the gold sample was drawn from: texts the gold sampler
could not draw (the labelled training data, inclusion probability 0) are passed as
``exclude_ids`` and left out, because the human codes say nothing about the coder's errors on
them (a fine-tuned coder is most accurate on the texts it was fit on, and those texts may
differ in prevalence). The counts go into the table's ``attrs["population"]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from textgauge.audits.gold_alignment import INVALID_LABEL, prediction_labels, require_columns
from textgauge.errors import InputDataError, format_rows
from textgauge.stats import OVERALL, dsl_mean, naive_share, ppi_mean

__all__ = ["METHODS", "corrected_prevalence", "merge_metadata", "population_counts"]

METHODS = ("naive", "ppi", "dsl")


def merge_metadata(pred: pd.DataFrame, metadata: pd.DataFrame | None,
                   strata: Sequence[str]) -> pd.DataFrame:
    """Predictions with the ``strata`` columns of ``metadata`` (id + strata) joined by id."""
    df = pred.copy()
    df["id"] = df["id"].astype(str)
    if metadata is not None:
        require_columns(metadata, ["id", *strata], "corpus metadata")
        meta = metadata[["id", *strata]].assign(id=metadata["id"].astype(str))
        df = df.drop(columns=[c for c in strata if c in df.columns]).merge(meta, on="id",
                                                                          how="left")
    require_columns(df, list(strata), "corpus predictions")
    return df


def population_counts(corpus_ids: Sequence[str], exclude_ids: Sequence[str] = ()) -> dict:
    """How many corpus texts the estimates cover: ``{corpus, excluded_training, population}``
    (``excluded_training`` counts the corpus texts among ``exclude_ids``)."""
    ids = pd.Series(list(corpus_ids), dtype=object).astype(str)
    excluded = int(ids.isin(set(map(str, exclude_ids))).sum())
    return {"corpus": int(len(ids)), "excluded_training": excluded,
            "population": int(len(ids)) - excluded}


def corrected_prevalence(
    corpus_predictions: pd.DataFrame,
    gold: pd.DataFrame,
    strata: Sequence[str] = (),
    metadata: pd.DataFrame | None = None,
    reference_col: str = "reference",
    inclusion_col: str = "inclusion_prob",
    methods: Sequence[str] = METHODS,
    labels: Sequence[str] | None = None,
    use_probs: bool = False,
    confidence: float = 0.95,
    finite_population: bool = True,
    exclude_ids: Sequence[str] = (),
) -> pd.DataFrame:
    """Class prevalence in the sampled population, overall and per stratum: naive, PPI, DSL.

    ``corpus_predictions`` is one coder's predictions for every corpus item (gold items
    included); ``exclude_ids`` the ids the gold sample could not include (the labelled
    training data: inclusion probability 0). Those texts are left out of every estimate,
    naive share included, so all rows describe the same population: the corpus less
    ``exclude_ids`` (counts in ``attrs["population"]``, see :func:`population_counts`). Every
    variable in ``strata`` gets its own rows; ``gold`` has id and ``reference`` and, when it was a stratified/unequal
    probability sample, the inclusion probability of each item in ``inclusion_col`` (as
    written by :func:`textgauge.data.gold.sample_gold` or
    :func:`textgauge.audits.revalidation.revalidation_sample`). Without it the gold set is
    taken as a simple random sample of the population (pi = n / N). Strata come from ``metadata`` (id + strata
    columns) or from columns of ``corpus_predictions``.

    ``finite_population`` is passed to :func:`ppi_mean` (the DSL interval is the paper's,
    conservative for fixed-size samples). Returns a long table: stratum_col, stratum, label,
    method, estimate, se, ci_low, ci_high (clipped to [0, 1]; at level ``confidence``),
    n_corpus (texts of the population in the row's stratum), n_gold. The naive row is the share of valid predictions
    with a Wilson CI (which ignores misclassification).
    """
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown methods {bad}; use {METHODS}")
    require_columns(corpus_predictions, ["id", "label"], "corpus predictions")
    require_columns(gold, ["id", reference_col], "gold")
    corpus = merge_metadata(corpus_predictions, metadata, strata)
    if corpus["id"].duplicated().any():
        raise InputDataError("The corpus predictions repeat ids; keep one row per item.")
    g = gold.assign(id=gold["id"].astype(str)).drop_duplicates("id")
    g = g[g[reference_col].notna()]
    population = population_counts(corpus["id"], exclude_ids)
    if population["excluded_training"]:
        excluded = set(map(str, exclude_ids))
        inside = sorted(excluded & set(g["id"]))
        if inside:
            raise InputDataError(
                f"Gold items {format_rows(inside)} are among the texts excluded from the "
                f"prevalence population (the labelled training data), which the gold sample "
                f"cannot include; was the training data changed after the gold sample was "
                f"drawn? Redraw the gold sample or restore the training data.")
        corpus = corpus.loc[~corpus["id"].isin(excluded)].reset_index(drop=True)
    if not len(corpus):
        raise InputDataError("No corpus text is left for the prevalence estimates once the "
                             "labelled training data are set aside.")
    corpus["_pred"] = prediction_labels(corpus, invalid="drop")
    missing = sorted(set(g["id"]) - set(corpus["id"]))
    if missing:
        raise InputDataError(
            f"Gold items {format_rows(missing)} are not in the classified corpus; the "
            f"corrected estimates need the classifier's prediction for every gold item.")
    N = len(corpus)
    if inclusion_col in g.columns:
        pi = pd.to_numeric(g[inclusion_col], errors="coerce")
        if pi.isna().any() or ((pi <= 0) | (pi > 1)).any():
            rows = g.loc[pi.isna() | (pi <= 0) | (pi > 1), "id"].tolist()
            raise InputDataError(f"Gold items {format_rows(rows)} have an inclusion "
                                 f"probability outside (0, 1] in '{inclusion_col}'.")
        pi_map = dict(zip(g["id"], pi, strict=True))
        weighted = True
    else:
        pi_map = dict.fromkeys(g["id"], len(g) / N)
        weighted = False
    corpus["_gold"] = corpus["id"].map(dict(zip(g["id"], g[reference_col].astype(str),
                                                strict=True)))
    corpus["_sampled"] = corpus["_gold"].notna()
    corpus["_pi"] = corpus["id"].map(pi_map)
    if labels is None:
        labels = sorted((set(corpus["_pred"].dropna()) | set(corpus["_gold"].dropna()))
                        - {INVALID_LABEL})
    prob_cols = {c: f"prob_{c}" for c in labels}
    if use_probs:
        require_columns(corpus, list(prob_cols.values()), "corpus predictions")

    groups: list[tuple[str, object, pd.DataFrame]] = [(OVERALL, OVERALL, corpus)]
    for col in strata:
        for value, part in corpus.groupby(col, sort=True, dropna=False):
            groups.append((col, value, part))
    rows = []
    for col, value, part in groups:
        n_c, gmask = len(part), part["_sampled"].to_numpy()
        n_g = int(gmask.sum())
        valid = part["_pred"].notna().to_numpy()
        for c in labels:
            if use_probs:
                f = pd.to_numeric(part[prob_cols[c]], errors="coerce").fillna(0).to_numpy()
                f = np.where(valid, f, 0.0)
            else:
                f = (part["_pred"] == c).to_numpy(dtype=float)
            y = (part["_gold"] == c).to_numpy(dtype=float)
            base = {"stratum_col": col, "stratum": value, "label": c,
                    "n_corpus": n_c, "n_gold": n_g}
            if "naive" in methods:
                rows.append({**base, "method": "naive", **naive_share(
                    f[valid], level=confidence, scores=use_probs)})
            if "ppi" in methods:
                if n_g >= 2:
                    w = 1 / part["_pi"].to_numpy()[gmask] if weighted else None
                    r = ppi_mean(f, y[gmask], f[gmask], weights=w, level=confidence,
                                 finite_population=finite_population)
                    rows.append({**base, "method": "ppi",
                                 **{k: float(v) for k, v in r.items()}})
                else:
                    rows.append({**base, "method": "ppi", "estimate": np.nan, "se": np.nan,
                                 "ci_low": np.nan, "ci_high": np.nan})
            if "dsl" in methods:
                if n_g >= 1:
                    pi = part["_pi"].fillna(1.0).to_numpy()
                    r = dsl_mean(f, y, gmask, pi, level=confidence)
                    rows.append({**base, "method": "dsl",
                                 **{k: float(v) for k, v in r.items()}})
                else:
                    rows.append({**base, "method": "dsl", "estimate": np.nan, "se": np.nan,
                                 "ci_low": np.nan, "ci_high": np.nan})
    out = pd.DataFrame(rows)
    out["ci_low"] = out["ci_low"].clip(0, 1)
    out["ci_high"] = out["ci_high"].clip(0, 1)
    out["note"] = np.where(out["n_gold"] < 30, "few gold items: CLT interval unreliable", "")
    out["confidence"] = float(confidence)
    out["n_boot"] = 0  # analytic (CLT / Wilson) intervals
    cols = ["stratum_col", "stratum", "label", "method", "estimate", "se", "ci_low", "ci_high",
            "n_corpus", "n_gold", "note", "confidence", "n_boot"]
    out = out[cols]
    out.attrs["population"] = population
    return out
