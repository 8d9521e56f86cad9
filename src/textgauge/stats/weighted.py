"""Design-weighted agreement and classification metrics, with a stratified bootstrap.

Why: a validation sample drawn with unequal inclusion probabilities (the stage-5
re-validation sample over-samples rare predicted labels and small strata, so that they get
enough items) describes the *sample*, not the corpus: its unweighted kappa and F1 over-weight
the over-sampled cells. Weighting every item by the inverse of its inclusion probability
(Horvitz & Thompson 1952) gives a confusion table that estimates the corpus's, and every
table-based statistic of it (kappa, macro-F1, per-class F1, accuracy) estimates the corpus
value consistently (a ratio estimator: Sarndal, Swensson & Wretman 1992, ch. 5 and 7).

Uncertainty: the sample was drawn independently within design strata ("cells"), so the
bootstrap resamples items *within* each cell: n_h - 1 draws from a cell of n_h, weights
rescaled by n_h / (n_h - 1) (the rescaled bootstrap of Rao & Wu 1988 with m_h = n_h - 1, as in
Rust & Rao 1996), whose variance is the unbiased one even for the small cells of a
model-assisted design (the naive n_h-draw bootstrap, McCarthy & Snowden 1985, is too narrow by
(n_h - 1) / n_h).
Percentile intervals. Resampling only matters through the weighted table, so a cell's items
are grouped by (confusion cell, weight) and each replicate's draws are one multinomial per
design cell: the loop runs over cells, never over replicates, and a replicate costs O(K^2).

Comparisons: two samples drawn independently (the re-validation sample and the gold set; one
stratum of gold and the rest of it) give independent bootstrap replicates, so the difference
of their statistics has the replicates ``a* - b*`` (:func:`independent_difference`).

With equal weights and one cell the estimates equal :func:`~textgauge.stats.kappa_summary`
and :func:`~textgauge.stats.macro_f1_summary` exactly (the same table up to a constant), and
invalid answers follow the rule of :mod:`textgauge.stats.classification` (an error: one more
column of the table, never a class of the macro average).

References
----------
Horvitz & Thompson (1952) JASA 47:663-685; Sarndal, Swensson & Wretman (1992) Model Assisted
Survey Sampling; Rao & Wu (1988) JASA 83:231-241; Efron & Tibshirani (1993) ch. 13.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from textgauge.errors import InputDataError
from textgauge.stats.bootstrap import ci_from_replicates, f1_from_tables
from textgauge.stats.classification import (
    INVALID_LABEL,
    invalid_never_agrees,
    label_weight_matrix,
    scored_labels,
    scoring_categories,
)
from textgauge.stats.inputs import (
    agreement_weights,
    check_confidence,
    to_builtin,
    weights_name,
)
from textgauge.stats.kappa import kappa_from_tables

__all__ = [
    "STATISTICS",
    "WeightedMetrics",
    "independent_difference",
    "stratified_tables",
    "weighted_confusion",
    "weighted_metrics",
]

#: the scalar statistics a :class:`WeightedMetrics` holds (per-class F1 is kept apart)
STATISTICS = ("kappa", "macro_f1", "accuracy")
#: a difference whose statistic is undefined in more than this share of the bootstrap
#: replicates gets no CI: the defined replicates are then a conditional, too-narrow picture
#: (e.g. a stratum with one text of a label: kappa is 1 or undefined in every resample)
MAX_UNDEFINED_SHARE = 0.05
#: how the design-weighted bootstrap resamples, written into every summary (methods read it)
BOOTSTRAP_WITHIN_CELLS = "within design cells (Rao-Wu rescaled, n_h - 1 draws)"


def _encode(y_true: Any, y_pred: Any, labels: Sequence[Any],
            design_weights: Any, cells: Any) -> tuple[np.ndarray, np.ndarray, list[Any],
                                                       list[Any], np.ndarray, np.ndarray]:
    """Codes of the truth and the answers, categories, scored labels, weights and cells.

    A missing answer is an invalid one (an error); a missing truth or weight is refused
    (an item without a reference is no validation item; one without a weight has no design).
    """
    yt = pd.Series(np.asarray(y_true, dtype=object))
    yp = pd.Series(np.asarray(y_pred, dtype=object))
    n = len(yt)
    if len(yp) != n:
        raise InputDataError(f"y_true has {n} items but y_pred has {len(yp)}.")
    if yt.isna().any():
        raise InputDataError(f"{int(yt.isna().sum())} item(s) have no reference label; drop "
                             "them first (and count them: they are not validation items).")
    yp = yp.where(yp.notna(), INVALID_LABEL)
    yt_a = yt.to_numpy(dtype=object)
    yp_a = invalid_never_agrees(yp.to_numpy(dtype=object), yt_a)
    labels = list(labels)
    cats = scoring_categories(labels, yt_a, yp_a)
    scored = scored_labels(yt_a, yp_a, labels)
    index = pd.Index(cats)
    c1, c2 = index.get_indexer(yt_a), index.get_indexer(yp_a)
    for name, codes, vals in (("y_true", c1, yt_a), ("y_pred", c2, yp_a)):
        if (codes < 0).any():
            bad = sorted(set(map(str, vals[codes < 0])))[:5]
            raise InputDataError(f"{name} holds values that are not codebook labels: {bad}; "
                                 f"the labels are {labels}.")
    if design_weights is None:
        w = np.ones(n)
    else:
        w = np.asarray(design_weights, dtype=float)
        if w.shape != (n,):
            raise InputDataError(f"design_weights must hold one weight per item ({n}), got "
                                 f"shape {w.shape}.")
        if not np.isfinite(w).all() or (w <= 0).any():
            raise InputDataError("design_weights must be positive and finite (inverse "
                                 "inclusion probabilities); an item that could not be drawn "
                                 "is not in the sample.")
    if cells is None:
        cell_codes = np.zeros(n, dtype=np.int64)
    else:
        cv = pd.Series(np.asarray(cells, dtype=object))
        if len(cv) != n:
            raise InputDataError(f"cells must name one design cell per item ({n}), got "
                                 f"{len(cv)}.")
        cell_codes = pd.factorize(cv.astype(str), sort=True)[0].astype(np.int64)
    return c1.astype(np.int64), c2.astype(np.int64), cats, scored, w, cell_codes


def weighted_confusion(y_true: Any, y_pred: Any, labels: Sequence[Any],
                       design_weights: Any = None) -> pd.DataFrame:
    """The design-weighted confusion table (rows = reference, columns = answer).

    Each item counts with its weight (inverse inclusion probability), so the table estimates
    the corpus's confusion counts. Invalid answers are a column (when there are any).
    """
    c1, c2, cats, _, w, _ = _encode(y_true, y_pred, labels, design_weights, None)
    k = len(cats)
    t = np.bincount(c1 * k + c2, weights=w, minlength=k * k).reshape(k, k)
    return pd.DataFrame(t, index=pd.Index(cats, name="reference"),
                        columns=pd.Index(cats, name="answer"))


def stratified_tables(codes1: np.ndarray, codes2: np.ndarray, k: int,
                      design_weights: np.ndarray, cells: np.ndarray, n_boot: int = 1000,
                      seed: Any = 0) -> np.ndarray:
    """(n_boot, K, K) weighted tables of the stratified bootstrap.

    Within each design cell (``cells``: integer codes) one item fewer than it holds is drawn
    with replacement, each weight rescaled by n_h / (n_h - 1) (Rao & Wu 1988, the survey
    bootstrap of Rust & Rao 1996); a cell of one item is kept as drawn. Items of one cell with the same confusion cell
    and the same weight are interchangeable, so a cell's draws are one Multinomial(n_h, group
    shares) per replicate, vectorised over replicates (the loop runs over cells).
    """
    if not isinstance(n_boot, int | np.integer) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}.")
    rng = np.random.default_rng(seed)
    kk = k * k
    conf = np.asarray(codes1, dtype=np.int64) * k + np.asarray(codes2, dtype=np.int64)
    w = np.asarray(design_weights, dtype=float)
    out = np.zeros((int(n_boot), kk))
    for h in np.unique(cells):
        m = cells == h
        groups = pd.DataFrame({"conf": conf[m], "w": w[m]}).value_counts(sort=False)
        counts = groups.to_numpy(dtype=float)
        gconf = groups.index.get_level_values("conf").to_numpy()
        gw = groups.index.get_level_values("w").to_numpy(dtype=float)
        n_h = int(counts.sum())
        spread = np.zeros((len(counts), kk))
        if n_h == 1:  # a cell of one item has no within-cell variance: it stays as drawn
            spread[0, gconf[0]] = gw[0]
            out += spread[0]
            continue
        # Rao & Wu (1988) rescaled bootstrap with m_h = n_h - 1: n_h - 1 draws, each weight
        # scaled by n_h / (n_h - 1), so the bootstrap variance of a weighted total is the
        # unbiased within-cell variance (the plain n_h-draw bootstrap is (n_h - 1) / n_h of
        # it: too narrow for the small cells a model-assisted design has)
        draws = rng.multinomial(n_h - 1, counts / n_h, size=int(n_boot))  # (B, G)
        spread[np.arange(len(counts)), gconf] = gw * n_h / (n_h - 1)
        out += draws @ spread
    return out.reshape(int(n_boot), k, k)


@dataclass(frozen=True, eq=False)
class WeightedMetrics:
    """Design-weighted kappa, macro-F1, accuracy and per-class F1 with bootstrap replicates.

    ``estimates`` and ``replicates`` hold :data:`STATISTICS`; ``f1`` / ``f1_replicates`` the
    per-class F1 of ``scored`` (the labels macro-F1 averages over). ``n`` is the number of
    items, ``sum_weights`` the population size they stand for, ``n_cells`` the design cells
    resampled within. ``weighted`` says whether design weights were used; ``weights`` names
    the kappa's agreement weights. The replicates feed :func:`independent_difference`.
    """

    categories: tuple
    scored: tuple
    table: np.ndarray
    estimates: dict[str, float]
    replicates: dict[str, np.ndarray] = field(repr=False)
    f1: np.ndarray
    f1_replicates: np.ndarray = field(repr=False)
    n: int
    n_cells: int
    sum_weights: float
    weighted: bool
    weights: str
    confidence: float
    n_boot: int
    seed: Any

    def ci(self, statistic: str) -> tuple[float, float]:
        """Percentile interval of one of :data:`STATISTICS`."""
        return ci_from_replicates(self.estimates[statistic], self.replicates[statistic],
                                  self.confidence, "percentile")

    def summary(self) -> dict[str, Any]:
        """JSON-ready: each statistic with its CI, per-class F1 with CIs, n, design facts."""
        out: dict[str, Any] = {}
        for s in STATISTICS:
            lo, hi = self.ci(s)
            reps = self.replicates[s]
            out[s] = {"estimate": self.estimates[s], "ci_low": lo, "ci_high": hi,
                      "n_invalid": int((~np.isfinite(reps)).sum())}
        alpha = (1 - self.confidence) / 2
        per_class = []
        for j, lab in enumerate(self.scored):
            r = self.f1_replicates[:, j]
            lo, hi = (np.quantile(r, [alpha, 1 - alpha]) if r.size else (np.nan, np.nan))
            per_class.append({"label": lab, "f1": float(self.f1[j]), "ci_low": float(lo),
                              "ci_high": float(hi)})
        out.update(per_class=per_class, n=self.n, n_cells=self.n_cells,
                   sum_weights=self.sum_weights, weighted=self.weighted,
                   weights=self.weights, confidence=self.confidence, n_boot=self.n_boot,
                   method="percentile", bootstrap=BOOTSTRAP_WITHIN_CELLS
                   if self.n_cells > 1 else "items (Rao-Wu rescaled, n - 1 draws)")
        return to_builtin(out)


def _statistics(tables: np.ndarray, w_agree: np.ndarray,
                scored_idx: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    f1 = f1_from_tables(tables)[..., scored_idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        acc = np.trace(tables, axis1=-2, axis2=-1) / tables.sum(axis=(-2, -1))
        macro = f1.mean(axis=-1) if len(scored_idx) else np.full(tables.shape[:-2], np.nan)
    return {"kappa": kappa_from_tables(tables, w_agree), "macro_f1": macro,
            "accuracy": acc}, f1


def weighted_metrics(y_true: Any, y_pred: Any, labels: Sequence[Any], *,
                     design_weights: Any = None, cells: Any = None,
                     weights: str | None = None, n_boot: int = 1000, seed: Any = 0,
                     confidence: float = 0.95) -> WeightedMetrics:
    """Design-weighted metrics of ``y_pred`` against ``y_true`` with a stratified bootstrap.

    Parameters
    ----------
    y_true, y_pred : reference labels and the coder's answers (a missing or invalid answer
        is :data:`~textgauge.stats.INVALID_LABEL`: an error).
    labels : the codebook labels, in order (the order matters for weighted kappa).
    design_weights : one weight per item, the inverse of its inclusion probability (default:
        equal weights, the sample as drawn).
    cells : the design cell of each item (the strata the sample was drawn within); the
        bootstrap resamples within them. Default: one cell (a simple random sample).
    weights : the kappa's agreement weights, None, "linear" or "quadratic" (ordinal codes).
    n_boot, seed, confidence : replicates, seed (an int or a ``numpy.random.SeedSequence``)
        and level of the percentile intervals.
    """
    confidence = check_confidence(confidence)
    c1, c2, cats, scored, w, cell_codes = _encode(y_true, y_pred, labels, design_weights,
                                                  cells)
    if len(c1) == 0:
        raise InputDataError("No items to score.")
    k = len(cats)
    # the codebook's agreement weights; an invalid answer earns no partial credit
    w_lab = label_weight_matrix(list(labels), cats, weights) if weights is not None else None
    w_agree = agreement_weights(k, None) if w_lab is None else w_lab
    scored_idx = pd.Index(cats).get_indexer(scored).astype(np.intp)
    table = np.bincount(c1 * k + c2, weights=w, minlength=k * k).reshape(k, k)
    est, f1 = _statistics(table[None], w_agree, scored_idx)
    tabs = stratified_tables(c1, c2, k, w, cell_codes, n_boot=n_boot, seed=seed)
    reps, f1_reps = _statistics(tabs, w_agree, scored_idx)
    return WeightedMetrics(
        categories=tuple(to_builtin(cats)), scored=tuple(to_builtin(scored)), table=table,
        estimates={s: float(v[0]) for s, v in est.items()},
        replicates={s: np.asarray(v, dtype=float) for s, v in reps.items()},
        f1=f1[0], f1_replicates=f1_reps, n=len(c1), n_cells=int(len(np.unique(cell_codes))),
        sum_weights=float(w.sum()), weighted=design_weights is not None,
        weights=weights_name(weights), confidence=confidence, n_boot=int(n_boot),
        seed=seed if isinstance(seed, int | None) else str(seed))


def independent_difference(first: WeightedMetrics, second: WeightedMetrics,
                           statistic: str = "kappa") -> dict[str, Any]:
    """``first - second`` for two independently drawn samples, with a percentile CI.

    The samples are independent (a re-validation sample and the gold set; one stratum and the
    rest of the set), so their bootstrap replicates are drawn independently and the
    difference's replicates are ``first* - second*``. Give the two computations different
    seeds (e.g. two children of one ``numpy.random.SeedSequence``): the same seed would
    correlate the replicates. Per-class F1: ``statistic="f1:<label>"``. When the statistic
    is undefined in more than :data:`MAX_UNDEFINED_SHARE` of the replicates the CI is NaN and
    ``ci_note`` says why.
    """
    if first.n_boot != second.n_boot:
        raise ValueError(f"Both samples need the same number of replicates ({first.n_boot} vs "
                         f"{second.n_boot}).")
    if first.confidence != second.confidence:
        raise ValueError("Both samples need the same confidence level.")
    if first.seed is not None and first.seed == second.seed:
        raise ValueError("The two samples were bootstrapped with the same seed: their "
                         "replicates would not be independent. Use different seeds.")

    def pick(m: WeightedMetrics) -> tuple[float, np.ndarray]:
        if statistic.startswith("f1:"):
            lab = statistic[3:]
            idx = [str(s) for s in m.scored].index(lab) if lab in map(str, m.scored) else None
            if idx is None:
                return float("nan"), np.full(m.n_boot, np.nan)
            return float(m.f1[idx]), m.f1_replicates[:, idx]
        if statistic not in STATISTICS:
            raise ValueError(f"statistic must be one of {STATISTICS} or 'f1:<label>', got "
                             f"{statistic!r}.")
        return m.estimates[statistic], m.replicates[statistic]

    (ea, ra), (eb, rb) = pick(first), pick(second)
    est = ea - eb
    reps = ra - rb
    n_invalid = int((~np.isfinite(reps)).sum())
    lo, hi = ci_from_replicates(est, reps, first.confidence, "percentile")
    note = ""
    if n_invalid > MAX_UNDEFINED_SHARE * len(reps):
        lo = hi = float("nan")
        note = (f"undefined in {n_invalid} of {len(reps)} bootstrap replicates (too few items "
                "of a label): no CI")
    return to_builtin({
        "statistic": statistic, "estimate": est, "ci_low": lo, "ci_high": hi,
        "first": ea, "second": eb, "n_first": first.n, "n_second": second.n,
        "confidence": first.confidence, "n_boot": first.n_boot, "method": "percentile",
        "n_invalid": n_invalid, "ci_note": note})
