"""Bias audits of a machine coder: the validity threats of the course's Module 3.

* **Positional bias** (:func:`positional_audit`): the same items coded under different label
  orders (fixed / reversed / rotated). Flip rates and Cohen's kappa between orders, and a
  chi-square goodness-of-fit test of the *position* of the chosen label against the positions
  expected under position-neutrality (Zheng et al. 2024, "Large language models are not robust
  multiple choice selectors", ICLR; Wang et al. 2023, "Large language models are not fair
  evaluators").
* **Sycophancy / asymmetry** (:func:`class_asymmetry`): per-class recall and predicted vs gold
  prevalence with Wilson intervals (Wilson 1927) and a paired CI of their difference.
* **Distribution shift** (:func:`stratum_performance`): kappa and macro-F1 with percentile
  bootstrap CIs (Efron & Tibshirani 1993) per stratum of every strata column.
* **Temporal instability** (:func:`test_retest`): agreement of a coder with its own stored
  earlier run on the gold set, the flips, and what changed in the run manifest.
* **Prompt stability** (:func:`prompt_stability`): Krippendorff's alpha (nominal; Krippendorff
  2019, *Content Analysis*, ch. 12) across paraphrased prompt variants and repeated runs.

Shared helpers used by the other audit modules live here too: :func:`align_with_gold`,
:func:`kappa_ci` (Cohen 1960 kappa via :func:`sklearn.metrics.cohen_kappa_score` with a
vectorised bootstrap; the one seam to swap for ``textgauge.agreement`` later) and
:func:`wilson_ci`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import cohen_kappa_score, f1_score

from textgauge.errors import InputDataError, format_rows

#: label given to invalid/failed predictions when they are kept as errors
INVALID_LABEL = "__invalid__"
#: the pseudo-stratum holding the whole gold set in per-stratum tables
OVERALL = "(overall)"


# --------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------


def require_columns(df: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise :class:`InputDataError` naming the columns of ``columns`` missing from ``df``."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputDataError(
            f"The {what} table lacks the column(s) {', '.join(missing)}; it has "
            f"{', '.join(map(str, df.columns))}. Add or rename the column(s)."
        )


def _require_unique(df: pd.DataFrame, cols: list[str], what: str) -> None:
    dup = df.duplicated(cols, keep=False)
    if dup.any():
        ids = df.loc[dup, cols].astype(str).agg("/".join, axis=1).unique().tolist()
        raise InputDataError(
            f"The {what} table has more than one row for {'/'.join(cols)} "
            f"{format_rows(ids)}; keep one row per item (filter one model or run first)."
        )


def prediction_labels(predictions: pd.DataFrame, invalid: str = "as_error") -> pd.Series:
    """Predicted labels with invalid/failed answers mapped to :data:`INVALID_LABEL` (or NaN).

    ``invalid='as_error'`` keeps unusable answers as a wrong label (conservative: they lower
    agreement); ``'drop'`` turns them into NaN so callers can drop them.
    """
    label = predictions["label"].astype(object)
    bad = label.isna()
    if "status" in predictions.columns:
        bad |= predictions["status"].fillna("ok").astype(str) != "ok"
    fill = INVALID_LABEL if invalid == "as_error" else np.nan
    if invalid not in ("as_error", "drop"):
        raise ValueError("invalid must be 'as_error' or 'drop'")
    return label.where(~bad, fill)


def align_with_gold(
    gold: pd.DataFrame,
    predictions: pd.DataFrame,
    reference_col: str = "reference",
    invalid: str = "as_error",
) -> pd.DataFrame:
    """Join gold references to one coder's predictions by ``id``.

    Returns the gold rows (all their columns, e.g. strata) with ``reference``, ``label``
    (predicted; see :func:`prediction_labels`) and ``confidence``. Gold items the coder never
    answered count as invalid (``as_error``) or are dropped (``drop``).
    """
    require_columns(gold, ["id", reference_col], "gold")
    require_columns(predictions, ["id", "label"], "predictions")
    _require_unique(gold, ["id"], "gold")
    _require_unique(predictions, ["id"], "predictions")
    g = gold.copy()
    g["id"] = g["id"].astype(str)
    g = g.rename(columns={reference_col: "reference"})
    g = g[g["reference"].notna()]
    p = pd.DataFrame({"id": predictions["id"].astype(str).to_numpy(),
                      "label": prediction_labels(predictions, invalid).to_numpy()})
    conf = predictions["confidence"] if "confidence" in predictions.columns else np.nan
    p["confidence"] = pd.to_numeric(pd.Series(conf, index=predictions.index),
                                    errors="coerce").to_numpy()
    g = g.drop(columns=[c for c in ("label", "confidence") if c in g.columns])
    out = g.merge(p, on="id", how="left")
    if invalid == "as_error":
        out["label"] = out["label"].fillna(INVALID_LABEL)
    else:
        out = out[out["label"].notna()]
    out["reference"] = out["reference"].astype(str)
    out["label"] = out["label"].astype(str)
    return out.reset_index(drop=True)


def wilson_ci(k: Any, n: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson (1927) score interval for binomial proportions ``k/n`` (vectorised)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    z = stats.norm.ppf(0.5 + level / 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    return centre - half, centre + half


def _encode(*arrays: Sequence[Any]) -> tuple[list[np.ndarray], list[str]]:
    labels = sorted(set().union(*[set(map(str, a)) for a in arrays]))
    index = {lab: i for i, lab in enumerate(labels)}
    return [np.fromiter((index[str(x)] for x in a), dtype=np.int64, count=len(a))
            for a in arrays], labels


def _boot_confusions(a: np.ndarray, b: np.ndarray, k: int, n_boot: int,
                     rng: np.random.Generator, chunk: int = 200) -> np.ndarray:
    """Confusion matrices (n_boot, k, k) of item-resampled pairs, without a Python loop/item."""
    n = len(a)
    pair = a * k + b
    out = np.empty((n_boot, k, k), dtype=np.int64)
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(m, n))
        flat = pair[idx] + (np.arange(m) * k * k)[:, None]
        out[start:start + m] = np.bincount(flat.ravel(), minlength=m * k * k).reshape(m, k, k)
    return out


def kappa_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Cohen's (1960) kappa from confusion matrices ``(..., k, k)`` (NaN when p_e = 1)."""
    conf = np.asarray(conf, dtype=float)
    n = conf.sum(axis=(-1, -2))
    po = np.trace(conf, axis1=-2, axis2=-1) / n
    pe = (conf.sum(-1) * conf.sum(-2)).sum(-1) / n**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pe < 1, (po - pe) / (1 - pe), np.nan)


def macro_f1_from_confusion(conf: np.ndarray) -> np.ndarray:
    """Macro-averaged F1 over the classes present in either margin (as scikit-learn does)."""
    conf = np.asarray(conf, dtype=float)
    tp = np.diagonal(conf, axis1=-2, axis2=-1)
    denom = conf.sum(-1) + conf.sum(-2)  # 2tp + fp + fn
    present = denom > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * tp / denom, 0.0)
    return f1.sum(-1) / present.sum(-1)


@dataclass
class MetricCI:
    """A point estimate with a percentile bootstrap interval."""

    estimate: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self, name: str = "estimate") -> dict[str, float]:
        """``{name: estimate, name_ci_low: ..., name_ci_high: ..., n: ...}``."""
        return {name: self.estimate, f"{name}_ci_low": self.ci_low,
                f"{name}_ci_high": self.ci_high, "n": self.n}


def _percentile(boot: np.ndarray, level: float) -> tuple[float, float]:
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return float("nan"), float("nan")
    lo, hi = np.percentile(boot, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def agreement_metrics_ci(
    y1: Sequence[Any], y2: Sequence[Any], n_boot: int = 1000, level: float = 0.95,
    seed: int = 0,
) -> dict[str, MetricCI]:
    """Cohen's kappa and macro-F1 (``y1`` = reference) with percentile bootstrap CIs.

    Point estimates come from :func:`sklearn.metrics.cohen_kappa_score` and
    :func:`sklearn.metrics.f1_score`; the bootstrap resamples items (Efron & Tibshirani 1993)
    with vectorised confusion matrices. A set of fewer than two items gives NaN.
    """
    y1 = list(map(str, y1))
    y2 = list(map(str, y2))
    n = len(y1)
    if n != len(y2):
        raise ValueError("y1 and y2 differ in length")
    if n < 2:
        nan = float("nan")
        return {"kappa": MetricCI(nan, nan, nan, n), "macro_f1": MetricCI(nan, nan, nan, n)}
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = float(cohen_kappa_score(y1, y2)) if len(set(y1) | set(y2)) > 1 else float("nan")
    mf1 = float(f1_score(y1, y2, average="macro", zero_division=0))
    (a, b), labels = _encode(y1, y2)
    if n_boot > 0:
        conf = _boot_confusions(a, b, len(labels), n_boot, np.random.default_rng(seed))
        k_lo, k_hi = _percentile(kappa_from_confusion(conf), level)
        f_lo, f_hi = _percentile(macro_f1_from_confusion(conf), level)
    else:
        k_lo = k_hi = f_lo = f_hi = float("nan")
    return {"kappa": MetricCI(kappa, k_lo, k_hi, n), "macro_f1": MetricCI(mf1, f_lo, f_hi, n)}


def kappa_ci(y1: Sequence[Any], y2: Sequence[Any], n_boot: int = 1000, level: float = 0.95,
             seed: int = 0) -> MetricCI:
    """Cohen's kappa with a percentile bootstrap CI.

    This is the single seam to replace by ``textgauge.agreement`` once it exists: every audit
    in this package that needs a kappa interval calls it (or accepts ``kappa_fn``).
    """
    return agreement_metrics_ci(y1, y2, n_boot=n_boot, level=level, seed=seed)["kappa"]


KappaFn = Callable[..., MetricCI]


# --------------------------------------------------------------------------------------------
# positional bias
# --------------------------------------------------------------------------------------------


def _parse_order(value: Any) -> list[str]:
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(v) for v in value]
    if isinstance(value, str):
        s = value.strip()
        if s.startswith("["):
            return [str(v) for v in json.loads(s)]
        sep = "|" if "|" in s else ","
        return [v.strip() for v in s.split(sep)]
    raise InputDataError(f"Cannot read the label order {value!r}: give a list or 'a|b|c'.")


@dataclass
class PositionalAudit:
    """Result of :func:`positional_audit`.

    ``selection`` has one row per position (1 = first listed): observed count and rate of
    chosen labels there, and the rate expected under position-neutrality. ``effect_w`` is
    Cohen's (1988) w = sqrt(sum((p_obs - p_exp)^2 / p_exp)); 0.1 small, 0.3 medium, 0.5 large.
    """

    pairs: pd.DataFrame
    selection: pd.DataFrame
    any_flip_rate: float
    chi2: float
    dof: int
    p_value: float
    effect_w: float
    first_position_excess: float
    expected_basis: str
    flagged: bool
    alpha: float
    min_effect_w: float
    notes: list[str] = field(default_factory=list)


def positional_audit(
    predictions: pd.DataFrame,
    order_col: str = "order",
    label_order_col: str = "label_order",
    position_col: str = "position",
    reference: pd.DataFrame | Mapping[str, str] | None = None,
    reference_col: str = "reference",
    expected: str = "auto",
    alpha: float = 0.01,
    min_effect_w: float = 0.3,
    n_boot: int = 0,
    seed: int = 0,
) -> PositionalAudit:
    """Audit positional bias: does the coder's answer depend on where a label is listed?

    ``predictions`` is long: one row per (``id``, order condition) with the chosen ``label``,
    the condition name in ``order_col`` (e.g. fixed / reversed / rotated_1 ...) and either the
    label order shown (``label_order_col``: a list, JSON list or ``'a|b|c'``) or the 1-based
    position of the chosen label (``position_col``).

    * Flip rate and Cohen's kappa between every pair of conditions (same items).
    * Selection rate by position, tested with a chi-square goodness-of-fit test against the
      rate expected under position-neutrality (Zheng et al. 2024). The expectation accounts
      for the label distribution: ``expected='gold'`` places each item's gold label in the
      order shown on that row; ``'consensus'`` places the item's modal label across conditions
      (a neutral coder picks the same label whatever the order); ``'uniform'`` (only valid
      for balanced rotations) spreads 1/k. ``'auto'`` picks gold, else consensus, else uniform.
    * Flagged when p < ``alpha`` (default 0.01) **and** Cohen's w >= ``min_effect_w``
      (default 0.3: a large sample makes trivial deviations significant).

    Invalid/failed answers are left out of the position test and count as flips.
    """
    require_columns(predictions, ["id", "label", order_col], "positional predictions")
    df = predictions.copy()
    df["id"] = df["id"].astype(str)
    df["label"] = prediction_labels(df, invalid="drop")
    _require_unique(df, ["id", order_col], "positional predictions")
    notes: list[str] = []

    # ---- flips between conditions
    wide = df.pivot(index="id", columns=order_col, values="label")
    conds = list(wide.columns)
    if len(conds) < 2:
        notes.append("only one order condition: no flip rates")
    rows = []
    for c1, c2 in combinations(conds, 2):
        both = wide[[c1, c2]].dropna(how="all")
        x = both[c1].fillna(INVALID_LABEL).astype(str)
        y = both[c2].fillna(INVALID_LABEL).astype(str)
        kap = (kappa_ci(x, y, n_boot=n_boot, seed=seed) if len(x) >= 2
               else MetricCI(np.nan, np.nan, np.nan, len(x)))
        rows.append({"order_a": c1, "order_b": c2, "n": len(x),
                     "flip_rate": float((x != y).mean()) if len(x) else np.nan,
                     "kappa": kap.estimate, "kappa_ci_low": kap.ci_low,
                     "kappa_ci_high": kap.ci_high})
    pairs = pd.DataFrame(rows, columns=["order_a", "order_b", "n", "flip_rate", "kappa",
                                        "kappa_ci_low", "kappa_ci_high"])
    filled = wide.fillna(INVALID_LABEL)
    any_flip = float((filled.nunique(axis=1) > 1).mean()) if len(conds) > 1 else np.nan

    # ---- positions of chosen labels
    ok = df[df["label"].notna()].copy()
    has_order = label_order_col in ok.columns
    if has_order:
        orders = ok[label_order_col].map(_parse_order)
        k = int(orders.map(len).max())
        chosen_pos = np.array([o.index(lab) if lab in o else -1
                               for o, lab in zip(orders, ok["label"], strict=True)])
        if (chosen_pos < 0).any():
            bad = ok.loc[chosen_pos < 0, "id"].tolist()
            raise InputDataError(
                f"Items {format_rows(bad)} have a chosen label that is not in the label order "
                f"shown ({label_order_col}); check the order column.")
    elif position_col in ok.columns:
        chosen_pos = ok[position_col].astype(int).to_numpy() - 1
        k = int(chosen_pos.max()) + 1
    else:
        raise InputDataError(
            f"The positional predictions need either a '{label_order_col}' column (the label "
            f"order shown) or a '{position_col}' column (1-based position of the chosen label).")
    observed = np.bincount(chosen_pos, minlength=k).astype(float)

    ref_map: dict[str, str] | None = None
    if reference is not None:
        if isinstance(reference, pd.DataFrame):
            require_columns(reference, ["id", reference_col], "gold")
            ref_map = dict(zip(reference["id"].astype(str), reference[reference_col].astype(str),
                               strict=True))
        else:
            ref_map = {str(a): str(b) for a, b in reference.items()}
    basis = expected
    if basis == "auto":
        basis = "gold" if (ref_map and has_order) else ("consensus" if has_order else "uniform")
    if basis in ("gold", "consensus") and not has_order:
        raise InputDataError(f"expected='{basis}' needs the '{label_order_col}' column.")
    if basis == "gold":
        if not ref_map:
            raise InputDataError("expected='gold' needs the reference labels.")
        target = ok["id"].map(ref_map)
        if target.isna().any():
            notes.append(f"{int(target.isna().sum())} rows without gold left out of expectation")
    elif basis == "consensus":
        modal = (ok.groupby("id")["label"]
                 .agg(lambda s: sorted(s.value_counts().pipe(lambda v: v[v == v.max()]).index)[0]))
        target = ok["id"].map(modal)
    elif basis == "uniform":
        target = None
    else:
        raise ValueError("expected must be 'auto', 'gold', 'consensus' or 'uniform'")
    if target is None:
        exp_counts = np.full(k, 1.0)
    else:
        exp_pos = np.array([o.index(t) if isinstance(t, str) and t in o else -1
                            for o, t in zip(orders, target, strict=True)])
        exp_counts = np.bincount(exp_pos[exp_pos >= 0], minlength=k).astype(float)
    exp_prop = (exp_counts + 0.5) / (exp_counts.sum() + 0.5 * k)  # no empty expected cell
    n_obs = observed.sum()
    chi = stats.chisquare(observed, exp_prop * n_obs)
    obs_prop = observed / n_obs
    w = float(np.sqrt(((obs_prop - exp_prop) ** 2 / exp_prop).sum()))
    selection = pd.DataFrame({
        "position": np.arange(1, k + 1), "observed_n": observed.astype(int),
        "observed_rate": obs_prop, "expected_rate": exp_prop,
        "excess": obs_prop - exp_prop,
    })
    lo, hi = wilson_ci(observed, n_obs)
    selection["observed_ci_low"], selection["observed_ci_high"] = lo, hi
    p = float(chi.pvalue)
    return PositionalAudit(
        pairs=pairs, selection=selection, any_flip_rate=any_flip, chi2=float(chi.statistic),
        dof=k - 1, p_value=p, effect_w=w, first_position_excess=float(obs_prop[0] - exp_prop[0]),
        expected_basis=basis, flagged=bool(p < alpha and w >= min_effect_w), alpha=alpha,
        min_effect_w=min_effect_w, notes=notes,
    )


# --------------------------------------------------------------------------------------------
# sycophancy / class asymmetry
# --------------------------------------------------------------------------------------------


def class_asymmetry(
    gold: pd.DataFrame,
    predictions: pd.DataFrame,
    reference_col: str = "reference",
    level: float = 0.95,
    min_difference: float = 0.02,
    invalid: str = "as_error",
) -> pd.DataFrame:
    """Per-class recall and predicted vs gold prevalence: over/under-prediction audit.

    For every class: gold and predicted prevalence on the gold set with Wilson (1927) CIs,
    recall and precision with Wilson CIs, and the difference predicted - gold prevalence with
    a paired normal CI (the items are the same, so d_i = 1[pred=c] - 1[gold=c] is averaged;
    equivalent to the McNemar comparison of the two margins), plus the exact McNemar p-value.
    ``flag`` is 'over' ('under') when the whole CI lies above (below) 0 and the difference is
    at least ``min_difference`` (default 0.02: two percentage points) in size, else ''. A 'positive' class with over-prediction and much higher
    recall than the others is the course's signature of sycophancy. ``recall_gap`` is the
    class recall minus the mean recall of the other classes.
    """
    al = align_with_gold(gold, predictions, reference_col, invalid=invalid)
    n = len(al)
    if n == 0:
        raise InputDataError("No gold item has a prediction; nothing to audit.")
    z = stats.norm.ppf(0.5 + level / 2)
    classes = sorted(set(al["reference"]) | (set(al["label"]) - {INVALID_LABEL}))
    rows = []
    for c in classes:
        g = (al["reference"] == c).to_numpy()
        p = (al["label"] == c).to_numpy()
        tp = int((g & p).sum())
        d = p.astype(float) - g.astype(float)
        diff = d.mean()
        se = d.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        b, c_ = int((p & ~g).sum()), int((g & ~p).sum())
        mcn = stats.binomtest(b, b + c_, 0.5).pvalue if b + c_ > 0 else 1.0
        glo, ghi = wilson_ci(g.sum(), n, level)
        plo, phi = wilson_ci(p.sum(), n, level)
        rlo, rhi = wilson_ci(tp, g.sum(), level)
        rows.append({
            "label": c, "n_gold": int(g.sum()), "n_predicted": int(p.sum()),
            "gold_prevalence": g.mean(), "gold_ci_low": float(glo), "gold_ci_high": float(ghi),
            "predicted_prevalence": p.mean(), "predicted_ci_low": float(plo),
            "predicted_ci_high": float(phi),
            "difference": diff, "difference_ci_low": diff - z * se,
            "difference_ci_high": diff + z * se, "mcnemar_p": float(mcn),
            "ratio": p.mean() / g.mean() if g.any() else np.inf,
            "recall": tp / g.sum() if g.any() else np.nan,
            "recall_ci_low": float(rlo), "recall_ci_high": float(rhi),
            "precision": tp / p.sum() if p.any() else np.nan,
        })
    out = pd.DataFrame(rows)
    rec = out["recall"].to_numpy()
    others = np.array([np.nanmean(np.delete(rec, i)) if len(rec) > 1 else np.nan
                       for i in range(len(rec))])
    out["recall_gap"] = rec - others
    big = out["difference"].abs() >= min_difference
    out["flag"] = np.where(big & (out["difference_ci_low"] > 0), "over",
                           np.where(big & (out["difference_ci_high"] < 0), "under", ""))
    return out


# --------------------------------------------------------------------------------------------
# per-stratum shift
# --------------------------------------------------------------------------------------------


def stratum_performance(
    gold: pd.DataFrame,
    predictions: pd.DataFrame,
    strata: Sequence[str] = (),
    reference_col: str = "reference",
    metric: str = "kappa",
    threshold: float = 0.70,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    min_n: int = 10,
    invalid: str = "as_error",
) -> pd.DataFrame:
    """Kappa and macro-F1 with bootstrap CIs overall and per stratum of every strata column.

    Validating on each stratum separately is the course's mitigation for distribution shift.
    A stratum is flagged when its ``metric`` (``'kappa'`` or ``'macro_f1'``) lies below
    ``threshold`` (default 0.70, a common bar in political science) or when its whole CI lies
    below the overall point estimate. Strata with fewer than ``min_n`` gold items are
    reported with ``note='small'`` and not flagged on the threshold alone.
    """
    if metric not in ("kappa", "macro_f1"):
        raise ValueError("metric must be 'kappa' or 'macro_f1'")
    al = align_with_gold(gold, predictions, reference_col, invalid=invalid)
    require_columns(al, list(strata), "gold")
    rows = []

    def add(col: str, value: Any, part: pd.DataFrame) -> None:
        m = agreement_metrics_ci(part["reference"], part["label"], n_boot=n_boot, level=level,
                                 seed=seed)
        rows.append({
            "stratum_col": col, "stratum": value, "n": len(part),
            "accuracy": float((part["reference"] == part["label"]).mean()) if len(part) else np.nan,
            "kappa": m["kappa"].estimate, "kappa_ci_low": m["kappa"].ci_low,
            "kappa_ci_high": m["kappa"].ci_high, "macro_f1": m["macro_f1"].estimate,
            "macro_f1_ci_low": m["macro_f1"].ci_low, "macro_f1_ci_high": m["macro_f1"].ci_high,
        })

    add(OVERALL, OVERALL, al)
    for col in strata:
        for value, part in al.groupby(col, sort=True, dropna=False):
            add(col, value, part)
    out = pd.DataFrame(rows)
    overall = out.loc[0, metric]
    small = out["n"] < min_n
    out["below_threshold"] = (out[metric] < threshold) & ~small
    out["below_overall"] = (out[f"{metric}_ci_high"] < overall) & (out["stratum_col"] != OVERALL)
    out["flagged"] = (out["below_threshold"] | out["below_overall"]) & (
        out["stratum_col"] != OVERALL)
    out["note"] = np.where(small, "small", "")
    out.attrs.update(metric=metric, threshold=threshold, overall=overall)
    return out


# --------------------------------------------------------------------------------------------
# temporal test-retest
# --------------------------------------------------------------------------------------------

#: manifest keys reported first in a diff (model revision, provider, date)
KEY_MANIFEST_FIELDS = ("model", "model_id", "revision", "model_revision", "provider", "backend",
                       "date", "run_timestamp", "prompt_hash", "temperature")


def _flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def manifest_diff(earlier: Mapping[str, Any], current: Mapping[str, Any]) -> pd.DataFrame:
    """Keys (nested keys dotted) whose values differ between two run manifests.

    Columns key, earlier, current, key_field (True for model/revision/provider/date-like keys,
    listed first).
    """
    a, b = _flatten(earlier or {}), _flatten(current or {})
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if va != vb:
            leaf = key.rsplit(".", 1)[-1]
            rows.append({"key": key, "earlier": va, "current": vb,
                         "key_field": leaf in KEY_MANIFEST_FIELDS})
    out = pd.DataFrame(rows, columns=["key", "earlier", "current", "key_field"])
    return out.sort_values(["key_field", "key"], ascending=[False, True]).reset_index(drop=True)


@dataclass
class TestRetest:
    """Result of :func:`test_retest`."""

    n_common: int
    agreement: float
    kappa: MetricCI
    flips: pd.DataFrame
    manifest_diff: pd.DataFrame
    accuracy_earlier: float | None = None
    accuracy_current: float | None = None
    only_earlier: list[str] = field(default_factory=list)
    only_current: list[str] = field(default_factory=list)

    __test__ = False  # not a pytest class


def test_retest(
    current: pd.DataFrame,
    earlier: pd.DataFrame,
    current_manifest: Mapping[str, Any] | None = None,
    earlier_manifest: Mapping[str, Any] | None = None,
    gold: pd.DataFrame | None = None,
    reference_col: str = "reference",
    n_boot: int = 1000,
    seed: int = 0,
) -> TestRetest:
    """Test-retest reliability of one coder: a stored earlier run against a current run.

    Closed models change without notice (temporal instability); re-running the gold set and
    comparing it with the stored run measures the drift. Returns percent agreement and Cohen's
    kappa (bootstrap CI) on the common ids (invalid answers kept as a label of their own), the
    flip list (with the gold label when ``gold`` is given) and the manifest diff
    (:func:`manifest_diff`). When ``gold`` is given only gold ids are compared.
    """
    require_columns(current, ["id", "label"], "current predictions")
    require_columns(earlier, ["id", "label"], "earlier predictions")
    _require_unique(current, ["id"], "current predictions")
    _require_unique(earlier, ["id"], "earlier predictions")

    def prep(df: pd.DataFrame) -> pd.DataFrame:
        conf = df["confidence"] if "confidence" in df.columns else np.nan
        return pd.DataFrame({"id": df["id"].astype(str).to_numpy(),
                             "label": prediction_labels(df).astype(str).to_numpy(),
                             "confidence": pd.to_numeric(pd.Series(conf, index=df.index),
                                                         errors="coerce").to_numpy()})

    a, b = prep(earlier), prep(current)
    if gold is not None:
        require_columns(gold, ["id", reference_col], "gold")
        gids = set(gold["id"].astype(str))
        a, b = a[a["id"].isin(gids)], b[b["id"].isin(gids)]
    m = a.merge(b, on="id", suffixes=("_earlier", "_current"))
    only_e = sorted(set(a["id"]) - set(b["id"]))
    only_c = sorted(set(b["id"]) - set(a["id"]))
    kap = kappa_ci(m["label_earlier"], m["label_current"], n_boot=n_boot, seed=seed)
    flips = m[m["label_earlier"] != m["label_current"]].copy()
    acc_e = acc_c = None
    if gold is not None:
        ref = dict(zip(gold["id"].astype(str), gold[reference_col].astype(str), strict=True))
        flips["reference"] = flips["id"].map(ref)
        acc_e = float((m["label_earlier"] == m["id"].map(ref)).mean()) if len(m) else np.nan
        acc_c = float((m["label_current"] == m["id"].map(ref)).mean()) if len(m) else np.nan
    return TestRetest(
        n_common=len(m),
        agreement=float((m["label_earlier"] == m["label_current"]).mean()) if len(m) else np.nan,
        kappa=kap, flips=flips.reset_index(drop=True),
        manifest_diff=manifest_diff(earlier_manifest or {}, current_manifest or {}),
        accuracy_earlier=acc_e, accuracy_current=acc_c, only_earlier=only_e, only_current=only_c,
    )


# --------------------------------------------------------------------------------------------
# prompt stability
# --------------------------------------------------------------------------------------------


def krippendorff_alpha_nominal(
    table: pd.DataFrame, n_boot: int = 0, level: float = 0.95, seed: int = 0,
) -> MetricCI:
    """Krippendorff's alpha (nominal) of a units x coders label table (NaN = missing).

    Uses the ``krippendorff`` package; the optional CI is a percentile bootstrap over units.
    """
    import krippendorff

    vals = table.to_numpy(dtype=object)
    mask = pd.isna(vals)
    labels = sorted({str(v) for v in vals[~mask]})
    index = {lab: float(i) for i, lab in enumerate(labels)}
    codes = np.full(vals.shape, np.nan)
    codes[~mask] = [index[str(v)] for v in vals[~mask]]
    data = codes.T  # coders x units
    pairable = (~np.isnan(data)).sum(0) >= 2
    data = data[:, pairable]
    n_units = data.shape[1]
    nan = float("nan")
    if n_units == 0 or len(labels) < 2:
        est = 1.0 if (n_units > 0 and len(labels) == 1) else nan
        return MetricCI(est, nan, nan, n_units)
    domain = list(index.values())

    def alpha(d: np.ndarray) -> float:
        try:
            return float(krippendorff.alpha(reliability_data=d, level_of_measurement="nominal",
                                            value_domain=domain))
        except (ValueError, ZeroDivisionError):
            return nan

    est = alpha(data)
    lo = hi = nan
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        boot = np.array([alpha(data[:, rng.integers(0, n_units, n_units)])
                         for _ in range(n_boot)])
        lo, hi = _percentile(boot, level)
    return MetricCI(est, lo, hi, n_units)


@dataclass
class PromptStability:
    """Result of :func:`prompt_stability`."""

    alpha_all: MetricCI
    alpha_variants: MetricCI
    per_variant: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def prompt_stability(
    predictions: pd.DataFrame,
    variant_col: str = "prompt_variant",
    run_col: str | None = "run",
    gold: pd.DataFrame | None = None,
    reference_col: str = "reference",
    n_boot: int = 200,
    seed: int = 0,
) -> PromptStability:
    """Reliability of a coder across paraphrased prompt variants and repeated runs.

    ``predictions`` is long: ``id``, ``label``, the variant in ``variant_col`` (e.g. the
    prompt hash) and optionally the repetition in ``run_col``. Krippendorff's alpha, nominal:

    * ``alpha_all``: every (variant, run) is a coder;
    * ``alpha_variants``: coders are the variants, each represented by its modal label over
      runs (ties: alphabetically first);
    * ``per_variant``: per variant the within-variant alpha across runs (run-to-run noise),
      the share of items where it differs from the modal label over all variants, and the
      accuracy against ``gold`` when given.

    Invalid/failed answers are missing values (not a category).
    """
    require_columns(predictions, ["id", "label", variant_col], "prompt-variant predictions")
    df = predictions.copy()
    df["id"] = df["id"].astype(str)
    df["label"] = prediction_labels(df, invalid="drop")
    df[variant_col] = df[variant_col].astype(str)
    notes: list[str] = []
    use_runs = run_col is not None and run_col in df.columns
    keys = ["id", variant_col] + ([run_col] if use_runs else [])
    _require_unique(df, keys, "prompt-variant predictions")
    coder = (df[variant_col] + "#" + df[run_col].astype(str)) if use_runs else df[variant_col]
    all_table = df.assign(_coder=coder).pivot(index="id", columns="_coder", values="label")
    a_all = krippendorff_alpha_nominal(all_table, n_boot=n_boot, seed=seed)

    def modal(s: pd.Series) -> Any:
        s = s.dropna()
        if s.empty:
            return np.nan
        vc = s.value_counts()
        return sorted(vc[vc == vc.max()].index)[0]

    var_table = df.groupby(["id", variant_col])["label"].agg(modal).unstack(variant_col)
    a_var = krippendorff_alpha_nominal(var_table, n_boot=n_boot, seed=seed)
    overall_modal = var_table.apply(modal, axis=1)
    ref = None
    if gold is not None:
        require_columns(gold, ["id", reference_col], "gold")
        ref = dict(zip(gold["id"].astype(str), gold[reference_col].astype(str), strict=True))
    rows = []
    for v, part in df.groupby(variant_col):
        within = (krippendorff_alpha_nominal(
            part.pivot(index="id", columns=run_col, values="label")).estimate
            if use_runs and part[run_col].nunique() > 1 else np.nan)
        col = var_table[v]
        have = col.notna() & overall_modal.notna()
        row = {"variant": v, "n_items": int(col.notna().sum()),
               "n_runs": int(part[run_col].nunique()) if use_runs else 1,
               "alpha_within_runs": within,
               "deviation_from_modal": float((col[have] != overall_modal[have]).mean())}
        if ref is not None:
            r = col.index.map(ref)
            ok = r.notna()
            row["accuracy"] = float((col[ok] == r[ok]).mean()) if ok.any() else np.nan
        rows.append(row)
    if var_table.shape[1] < 2:
        notes.append("fewer than two prompt variants: alpha_variants is undefined")
    return PromptStability(alpha_all=a_all, alpha_variants=a_var,
                           per_variant=pd.DataFrame(rows), notes=notes)


test_retest.__test__ = False  # type: ignore[attr-defined]  # a library function, not a test
