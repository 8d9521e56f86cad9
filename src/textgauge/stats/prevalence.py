"""Corrected class prevalence from a classified corpus and a (stratified) gold sample.

The naive share of predicted labels inherits every misclassification: a classifier that
over-predicts one class biases the estimate, and its binomial CI is centred on the wrong
value. Two estimators correct it with a human-coded sample:

* **Prediction-powered inference** (Angelopoulos, Bates, Fannjiang, Jordan & Zrnic 2023,
  *Science* 382:669), mean estimator::

      theta_PP = mean_N(f(X)) + mean_n(Y - f(X)),
      SE^2 = Var_N(f) / N + Var_n(Y - f) / n,      CI = theta_PP +- z SE  (CLT)

  That interval is for the superpopulation mean; for the prevalence of *this* corpus (the
  default, ``finite_population=True``) the first term drops and the second gets the
  finite-population correction (see :func:`ppi_mean`).

  With known inclusion probabilities pi_i (stratified gold) the rectifier is the Hajek
  weighted mean with weights 1/pi_i and its linearisation variance.
* **Design-based supervised learning** (Egami, Hinck, Stewart & Wei 2023, NeurIPS), for a
  mean: pseudo-outcomes for every corpus item ``Y~_i = f_i + (R_i / pi_i) (Y_i - f_i)`` with
  ``R_i`` = 1 when item i was sampled into the gold set with known probability ``pi_i``;
  theta_DSL = mean_N(Y~), SE^2 = Var_N(Y~) / N. Needs the gold ids to be corpus ids.

Here f(X) is 1[predicted = c] (or the predicted probability of c with ``use_probs``) and Y is
1[gold = c]. Invalid/failed predictions count as f = 0 in both corrections (the rectifier
absorbs them); the naive share is over valid predictions. The stage-5 re-validation sample
(:func:`revalidation_sample`) records the inclusion probabilities these estimators need.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from textgauge.audits.core import (
    INVALID_LABEL,
    OVERALL,
    prediction_labels,
    require_columns,
    wilson_ci,
)
from textgauge.errors import InputDataError, format_rows

METHODS = ("naive", "ppi", "dsl")


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def ppi_mean(
    f_corpus: np.ndarray,
    y_gold: np.ndarray,
    f_gold: np.ndarray,
    weights: np.ndarray | None = None,
    level: float = 0.95,
    finite_population: bool = True,
) -> dict[str, np.ndarray]:
    """PPI mean estimate and CLT interval (Angelopoulos et al. 2023), vectorised.

    Arrays may carry leading batch dimensions (e.g. simulations); the mean is over the last
    axis. ``weights`` (1 / inclusion probability, shape of ``y_gold``) gives the Hajek
    weighted rectifier with linearisation variance sum w^2 (d - d_bar)^2 / (sum w)^2 *
    n / (n - 1).

    ``finite_population=False`` is the paper's interval for the superpopulation mean:
    SE^2 = Var(f) / N + Var(d) / n. ``True`` (default) targets the prevalence *in this corpus*
    (the gold set being a sample of it): the corpus mean of f is then known exactly, so the
    Var(f) / N term drops and the rectifier variance gets the finite-population correction
    (1 - n / N), or (1 - pi_i) per item with weights: the difference estimator of survey
    sampling (Sarndal, Swensson & Wretman 1992, sec. 6.3). Returns estimate, se, ci_low,
    ci_high (CI not clipped).
    """
    f_corpus = np.asarray(f_corpus, dtype=float)
    d = np.asarray(y_gold, dtype=float) - np.asarray(f_gold, dtype=float)
    N, n = f_corpus.shape[-1], d.shape[-1]
    mean_f = f_corpus.mean(-1)
    var_f = f_corpus.var(-1, ddof=1) if N > 1 else np.zeros_like(mean_f)
    with np.errstate(invalid="ignore", divide="ignore"):
        if weights is None:
            rect = d.mean(-1)
            fpc = max(1 - n / N, 0.0) if finite_population else 1.0
            var_r = fpc * d.var(-1, ddof=1) / n if n > 1 else np.full_like(rect, np.nan)
        else:
            w = np.broadcast_to(np.asarray(weights, dtype=float), d.shape)
            fpc = np.clip(1 - 1 / w, 0, 1) if finite_population else 1.0
            sw = w.sum(-1)
            rect = (w * d).sum(-1) / sw
            resid = d - rect[..., None]
            var_r = (fpc * w**2 * resid**2).sum(-1) / sw**2 * n / (n - 1) if n > 1 else \
                np.full_like(rect, np.nan)
    est = mean_f + rect
    se = np.sqrt(var_r) if finite_population else np.sqrt(var_f / N + var_r)
    z = _z(level)
    return {"estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se}


def dsl_mean(
    f_corpus: np.ndarray,
    y_corpus: np.ndarray,
    sampled: np.ndarray,
    pi: np.ndarray,
    level: float = 0.95,
) -> dict[str, np.ndarray]:
    """DSL mean estimate (Egami et al. 2023) with known sampling probabilities, vectorised.

    ``y_corpus`` holds the gold outcome where ``sampled`` is True (anything elsewhere, e.g.
    NaN); ``pi`` the probability each item had of being sampled (> 0 for every item).
    Pseudo-outcome Y~ = f + R (Y - f) / pi; estimate mean(Y~), SE sd(Y~) / sqrt(N).
    """
    f = np.asarray(f_corpus, dtype=float)
    r = np.asarray(sampled, dtype=bool)
    y = np.where(r, np.nan_to_num(np.asarray(y_corpus, dtype=float)), 0.0)
    pi = np.asarray(pi, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        pseudo = f + np.where(r, (y - f) / pi, 0.0)
    N = f.shape[-1]
    est = pseudo.mean(-1)
    se = pseudo.std(-1, ddof=1) / np.sqrt(N) if N > 1 else np.full_like(est, np.nan)
    z = _z(level)
    return {"estimate": est, "se": se, "ci_low": est - z * se, "ci_high": est + z * se}


def _merge_metadata(pred: pd.DataFrame, metadata: pd.DataFrame | None,
                    strata: Sequence[str]) -> pd.DataFrame:
    df = pred.copy()
    df["id"] = df["id"].astype(str)
    if metadata is not None:
        require_columns(metadata, ["id", *strata], "corpus metadata")
        meta = metadata[["id", *strata]].assign(id=metadata["id"].astype(str))
        df = df.drop(columns=[c for c in strata if c in df.columns]).merge(meta, on="id",
                                                                          how="left")
    require_columns(df, list(strata), "corpus predictions")
    return df


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
    level: float = 0.95,
    finite_population: bool = True,
) -> pd.DataFrame:
    """Class prevalence over the whole corpus, overall and per stratum: naive, PPI and DSL.

    ``corpus_predictions`` is one coder's predictions for every corpus item (gold items
    included); ``gold`` has id and ``reference`` and, when it was a stratified/unequal
    probability sample, the inclusion probability of each item in ``inclusion_col`` (as
    written by :func:`revalidation_sample`). Without it the gold set is taken as a simple
    random sample of the corpus (pi = n / N). Strata come from ``metadata`` (id + strata
    columns) or from columns of ``corpus_predictions``.

    ``finite_population`` is passed to :func:`ppi_mean` (the DSL interval is the paper's,
    conservative for fixed-size samples). Returns a long table: stratum_col, stratum, label, method, estimate, se, ci_low, ci_high
    (clipped to [0, 1]), n_corpus, n_gold. The naive row is the share of valid predictions
    with a Wilson CI (which ignores misclassification).
    """
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown methods {bad}; use {METHODS}")
    require_columns(corpus_predictions, ["id", "label"], "corpus predictions")
    require_columns(gold, ["id", reference_col], "gold")
    corpus = _merge_metadata(corpus_predictions, metadata, strata)
    if corpus["id"].duplicated().any():
        raise InputDataError("The corpus predictions repeat ids; keep one row per item.")
    corpus["_pred"] = prediction_labels(corpus, invalid="drop")
    g = gold.assign(id=gold["id"].astype(str)).drop_duplicates("id")
    g = g[g[reference_col].notna()]
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
    z = _z(level)
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
                k, nv = f[valid].sum(), int(valid.sum())
                lo, hi = wilson_ci(k, nv, level) if not use_probs else (np.nan, np.nan)
                est = k / nv if nv else np.nan
                if use_probs and nv > 1:
                    se = f[valid].std(ddof=1) / np.sqrt(nv)
                    lo, hi = est - z * se, est + z * se
                rows.append({**base, "method": "naive", "estimate": est,
                             "se": np.sqrt(est * (1 - est) / nv) if nv else np.nan,
                             "ci_low": float(lo), "ci_high": float(hi)})
            if "ppi" in methods:
                if n_g >= 2:
                    w = 1 / part["_pi"].to_numpy()[gmask] if weighted else None
                    r = ppi_mean(f, y[gmask], f[gmask], weights=w, level=level,
                                 finite_population=finite_population)
                    rows.append({**base, "method": "ppi",
                                 **{k: float(v) for k, v in r.items()}})
                else:
                    rows.append({**base, "method": "ppi", "estimate": np.nan, "se": np.nan,
                                 "ci_low": np.nan, "ci_high": np.nan})
            if "dsl" in methods:
                if n_g >= 1:
                    pi = part["_pi"].fillna(1.0).to_numpy()
                    r = dsl_mean(f, y, gmask, pi, level=level)
                    rows.append({**base, "method": "dsl",
                                 **{k: float(v) for k, v in r.items()}})
                else:
                    rows.append({**base, "method": "dsl", "estimate": np.nan, "se": np.nan,
                                 "ci_low": np.nan, "ci_high": np.nan})
    out = pd.DataFrame(rows)
    out["ci_low"] = out["ci_low"].clip(0, 1)
    out["ci_high"] = out["ci_high"].clip(0, 1)
    out["note"] = np.where(out["n_gold"] < 30, "few gold items: CLT interval unreliable", "")
    cols = ["stratum_col", "stratum", "label", "method", "estimate", "se", "ci_low", "ci_high",
            "n_corpus", "n_gold", "note"]
    return out[cols]


# --------------------------------------------------------------------------------------------
# stage-5 re-validation sample
# --------------------------------------------------------------------------------------------


def _allocate(sizes: np.ndarray, n: int, weights: np.ndarray,
              rng: np.random.Generator) -> np.ndarray:
    """Integer allocation proportional to ``weights``, capped by ``sizes`` (water-filling)."""
    alloc = np.zeros(len(sizes), dtype=np.int64)
    remaining = int(min(n, sizes.sum()))
    while remaining > 0:
        open_ = alloc < sizes
        share = np.where(open_, weights, 0.0)
        share = remaining * share / share.sum()
        add = np.minimum(np.floor(share).astype(np.int64), sizes - alloc)
        if add.sum() == 0:  # hand out single units: largest remainder, ties at random
            frac = np.where(open_, share - np.floor(share), -1.0)
            order = np.lexsort((rng.random(len(sizes)), -frac))
            for i in order[:remaining]:
                if alloc[i] < sizes[i]:
                    alloc[i] += 1
            remaining = int(min(n, sizes.sum())) - int(alloc.sum())
            continue
        alloc += add
        remaining -= int(add.sum())
    return alloc


def revalidation_sample(
    predictions: pd.DataFrame,
    n: int = 300,
    strata: Sequence[str] = (),
    metadata: pd.DataFrame | None = None,
    exclude_ids: Iterable[str] = (),
    allocation: str = "equal",
    seed: int = 0,
) -> pd.DataFrame:
    """Stage-5 sample: a fresh stratified sample of the classified corpus for re-validation.

    Cells are predicted label x every strata column (invalid answers form their own cell).
    ``exclude_ids`` (the earlier gold set, training items) are never drawn and are left out
    of the sampling frame. ``allocation='equal'`` gives every cell the same share (capped by
    its size, the rest spread over larger cells) so rare classes and small subgroups get
    enough items; ``'proportional'`` follows cell sizes. Items are drawn without replacement
    with a seeded generator. Columns: id, label (predicted), strata..., cell, cell_size,
    cell_n, inclusion_prob (= cell_n / cell_size, for :func:`corrected_prevalence`), weight
    (= 1 / inclusion_prob). ``attrs['design']`` holds the per-cell allocation.
    """
    require_columns(predictions, ["id", "label"], "predictions")
    df = _merge_metadata(predictions, metadata, strata)
    if df["id"].duplicated().any():
        raise InputDataError("The predictions repeat ids; keep one row per item.")
    df["label"] = prediction_labels(df, invalid="as_error").astype(str)
    excl = {str(i) for i in exclude_ids}
    frame = df[~df["id"].isin(excl)].sort_values("id").reset_index(drop=True)
    keys = ["label", *strata]
    frame["cell"] = frame[keys].astype(str).agg(" | ".join, axis=1)
    design = frame.groupby("cell", sort=True).size().rename("cell_size").reset_index()
    sizes = design["cell_size"].to_numpy()
    if allocation == "equal":
        w = np.ones(len(sizes))
    elif allocation == "proportional":
        w = sizes.astype(float)
    else:
        raise ValueError("allocation must be 'equal' or 'proportional'")
    rng = np.random.default_rng(seed)
    design["cell_n"] = _allocate(sizes, n, w, rng)
    design["inclusion_prob"] = design["cell_n"] / design["cell_size"]
    picked = []
    for cell, k in zip(design["cell"], design["cell_n"], strict=True):
        if k == 0:
            continue
        idx = frame.index[frame["cell"] == cell].to_numpy()
        picked.append(rng.choice(idx, size=int(k), replace=False))
    chosen = np.sort(np.concatenate(picked)) if picked else np.array([], dtype=int)
    out = frame.loc[chosen, ["id", *keys, "cell"]].merge(design, on="cell", how="left")
    out["weight"] = 1 / out["inclusion_prob"]
    out = out.sort_values(["cell", "id"]).reset_index(drop=True)
    out.attrs["design"] = design
    out.attrs["seed"] = seed
    return out
