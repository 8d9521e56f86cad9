"""Plan the gold design before anything is coded: expected CI half-widths per design.

Why: whether a ``model_assisted`` gold sample pays off depends on the corpus (how rare the
rare labels are, how often the first pass errs where it is unsure), and the user must pick
a design and a size before coding a single text. The first pass's corpus predictions are
all there is at that point, so they are used twice: to *draw* each design's sample (the
same cells and allocation :mod:`textgauge.data.design` uses) and, treating the first pass
as calibrated, to *simulate the truth*: each text's true label is drawn from its
``prob_<label>`` columns (a text without probabilities keeps its predicted label as truth;
one without any valid answer gets the corpus's mean probabilities). Each simulated study
is then analysed exactly as the real one will be: ``proportional`` as drawn (it is
self-weighting), ``model_assisted`` with weights ``cell_size / n_cell`` and the bootstrap
within design cells (:func:`textgauge.stats.weighted_metrics`).

CI half-width: half the bootstrap percentile interval each simulated study would report
(``n_boot`` replicates, default 200), median over studies. This, rather than z x the SD of
the estimates over studies, because it is the interval the user will actually be shown:
it carries the skew of a rare label's F1 and the studies where that F1 is undefined (no
true and no predicted text of the label in the sample: counted in ``f1_undefined``), which
a normal approximation hides. (The SD over studies is reported as ``kappa_sd`` for a check.)

Caveat, written into the plan: a first pass that is over-confident makes the truth too
easy and both half-widths too optimistic; the *ratio* of the two designs is the robust part.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from textgauge.data.design import NO_ANSWER, answered
from textgauge.errors import InputDataError
from textgauge.stats.classification import INVALID_LABEL
from textgauge.stats.design import DESIGNS
from textgauge.stats.inputs import to_builtin
from textgauge.stats.weighted import weighted_metrics

__all__ = ["DESIGN_NAMES", "SIMULATED", "plan_designs", "plan_table", "recommendation",
           "simulate_known_truth", "simulated_corpus", "simulation_table"]

#: the two designs compared (the names ``gold.design`` takes)
DESIGN_NAMES = DESIGNS
#: replicates per simulated study's bootstrap (the half-width is a median over studies, so
#: a few hundred replicates per study are plenty)
PLAN_N_BOOT = 200
ASSUMPTION = ("the first pass is treated as calibrated: each text's truth is drawn from its "
              "prob_<label> columns; if it is over-confident both half-widths are optimistic "
              "(their ratio is the robust part)")
CI_METHOD = ("median over simulated studies of half the bootstrap percentile interval each "
             "study would report (proportional: as drawn; model_assisted: design weights, "
             "bootstrap within cells)")


def _check_predictions(first_pass: pd.DataFrame, labels: Sequence[str]) -> None:
    """Refuse predictions without the columns planning needs, naming the missing one."""
    for col in ("id", "label", "confidence"):
        if col not in first_pass.columns:
            raise InputDataError(
                f"The first-pass predictions have no '{col}' column (they have "
                f"{list(first_pass.columns)[:8]}); give a predictions file written by a "
                "coder with corpus scope (results/predictions/<model>.parquet: id, label, "
                "confidence, prob_<label>, status).")
    if first_pass["id"].astype(str).duplicated().any():
        raise InputDataError("The first-pass predictions repeat ids; one row per text.")
    if len(labels) < 2:
        raise InputDataError(f"Planning needs at least two labels, got {list(labels)}.")


def _valid_answers(first_pass: pd.DataFrame, labels: Sequence[str]) -> pd.Series:
    """The predicted label of each text, :data:`NO_ANSWER` where it has no valid one."""
    lab = first_pass["label"].astype(object)
    return lab.where(answered(first_pass, labels), NO_ANSWER).astype(str)


def truth_probabilities(first_pass: pd.DataFrame, labels: Sequence[str]) -> np.ndarray:
    """(N, K) probabilities the simulated truth is drawn from (rows sum to 1).

    ``prob_<label>`` where a text has them; else one-hot on its valid predicted label; a
    text with neither gets the mean of the others (the corpus's expected prevalence).
    """
    labels = list(labels)
    n, k = len(first_pass), len(labels)
    cols = [f"prob_{lab}" for lab in labels]
    p = np.full((n, k), np.nan)
    if all(c in first_pass.columns for c in cols):
        p = first_pass[cols].to_numpy(dtype=float)
        p = np.where(p < 0, np.nan, p)
    s = p.sum(axis=1)
    have = np.isfinite(s) & (s > 0)
    p[have] /= s[have, None]
    pred = _valid_answers(first_pass, labels).to_numpy()
    idx = pd.Index(labels).get_indexer(pred)
    onehot = ~have & (idx >= 0)
    p[onehot] = 0.0
    p[onehot, idx[onehot]] = 1.0
    rest = ~have & (idx < 0)
    if rest.any():
        known = ~rest
        p[rest] = p[known].mean(axis=0) if known.any() else 1.0 / k
    return p


def _strata(first_pass: pd.DataFrame, strata_frame: pd.DataFrame | None) -> pd.Series:
    """The combined stratum of each first-pass text ("all" without strata)."""
    if strata_frame is None:
        return pd.Series("all", index=first_pass.index)
    if "id" not in strata_frame.columns:
        raise InputDataError("strata_frame needs an 'id' column (and the strata columns).")
    cols = ["stratum"] if "stratum" in strata_frame.columns else [
        c for c in strata_frame.columns if c != "id"]
    if not cols:
        return pd.Series("all", index=first_pass.index)
    frame = strata_frame.assign(id=strata_frame["id"].astype(str)).set_index("id")[cols]
    key = frame.astype(str).agg(" | ".join, axis=1)
    out = first_pass["id"].astype(str).map(key)
    if out.isna().any():
        raise InputDataError(f"{int(out.isna().sum())} first-pass text(s) are not in the "
                             "strata table (e.g. "
                             f"{first_pass['id'][out.isna()].astype(str).iloc[:3].tolist()}).")
    return pd.Series(out.to_numpy(), index=first_pass.index)


def _proportional_cells(stratum: pd.Series, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratum code per text and items per stratum, as :func:`textgauge.data.gold.sample_gold`
    allocates them (proportional, largest remainder)."""
    from textgauge.data.gold import allocate

    codes, uniq = pd.factorize(stratum.astype(str), sort=True)
    sizes = pd.Series(np.bincount(codes, minlength=len(uniq)), index=uniq)
    return codes.astype(np.int64), allocate(sizes, size).to_numpy(dtype=np.int64)


def _model_assisted_cells(first_pass: pd.DataFrame, stratum: pd.Series, size: int,
                          n_bands: int, min_per_label: int | None
                          ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Cell code per text (aligned with ``first_pass``), items per cell and the allocation
    table, from :mod:`textgauge.data.design` itself: the same bands, cells and allocation the
    gold step draws with."""
    from textgauge.data import design as dd

    ids = first_pass["id"].astype(str)
    eligible = pd.DataFrame({"id": ids.to_numpy(), "text": "",
                             "stratum": stratum.astype(str).to_numpy()})
    frame = dd.first_pass_frame(eligible, first_pass.assign(id=ids), n_bands)
    stratified = stratum.nunique() > 1
    frame["cell"] = (frame["predicted"] + " | band " + frame["band"].astype(str)
                     + (" | " + frame["stratum"] if stratified else ""))
    alloc = dd.model_assisted_allocation(frame, size, min_per_label).reset_index(drop=True)
    cell_of = frame.set_index("id").loc[ids.to_numpy(), "cell"].to_numpy()
    codes = pd.Index(alloc["cell"].astype(str)).get_indexer(cell_of)
    if (codes < 0).any():  # pragma: no cover - the allocation is built from these cells
        raise RuntimeError("planning could not place every text in a design cell; a bug.")
    return codes.astype(np.int64), alloc["cell_n"].to_numpy(dtype=np.int64), alloc


def _draw(rng: np.random.Generator, members: list[np.ndarray], n_c: np.ndarray) -> np.ndarray:
    """A stratified simple random sample: ``n_c[h]`` of ``members[h]`` without replacement."""
    parts = [m[rng.permutation(len(m))[:n]] if n < len(m) else m
             for m, n in zip(members, n_c, strict=True) if n > 0]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def plan_designs(first_pass: pd.DataFrame, labels: Sequence[str], size: int, *,
                 strata_frame: pd.DataFrame | None = None, n_bands: int = 3,
                 min_per_label: int | None = None, studies: int = 200, seed: int = 0,
                 confidence: float = 0.95, n_boot: int = PLAN_N_BOOT) -> dict[str, Any]:
    """Expected CI half-widths of kappa and each label's F1 under each gold design.

    ``first_pass``: the first pass's predictions of the ELIGIBLE texts (id, label,
    confidence, prob_<label>, status); ``strata_frame``: id plus the user's strata columns
    (or a ``stratum`` column), None for none. Returns a JSON-ready dict: the settings, the
    corpus's predicted label counts, per design the median half-widths (``kappa``,
    ``macro_f1``, ``f1`` per label), the SD of the kappa estimates over studies, the gold
    items per predicted label and the expected gold items per true label, and
    ``recommendation``.
    """
    labels = [str(x) for x in labels]
    _check_predictions(first_pass, labels)
    if int(size) < 2:
        raise InputDataError(f"The gold size must be at least 2, got {size}.")
    if int(studies) < 1:
        raise InputDataError(f"studies must be positive, got {studies}.")
    fp = first_pass.reset_index(drop=True)
    n_texts = len(fp)
    if size > n_texts:
        raise InputDataError(f"gold size {size} exceeds the {n_texts} eligible texts.")
    pred = _valid_answers(fp, labels)
    pred_out = pred.where(pred != NO_ANSWER, INVALID_LABEL).to_numpy(dtype=object)
    probs = truth_probabilities(fp, labels)
    cum = np.cumsum(probs, axis=1)
    cum[:, -1] = 1.0
    stratum = _strata(fp, strata_frame)

    p_codes, p_n = _proportional_cells(stratum, int(size))
    m_codes, m_n, alloc = _model_assisted_cells(fp, stratum, int(size), n_bands,
                                                min_per_label)
    designs = {
        "proportional": (p_codes, p_n, False),
        "model_assisted": (m_codes, m_n, True),
    }
    lab_arr = np.asarray(labels, dtype=object)
    root = np.random.SeedSequence(seed)
    z = float(norm.ppf(0.5 + confidence / 2))
    out: dict[str, Any] = {}
    for d_i, (name, (codes, n_c, weighted)) in enumerate(designs.items()):
        members = [np.flatnonzero(codes == h) for h in range(len(n_c))]
        sizes = np.array([len(m) for m in members], dtype=float)
        ss = root.spawn(len(designs))[d_i]
        draw_rng, boot_seeds = np.random.default_rng(ss), ss.spawn(int(studies))
        half: dict[str, list[float]] = {"kappa": [], "macro_f1": []}
        f1_half = np.full((int(studies), len(labels)), np.nan)
        kappas: list[float] = []
        true_counts = np.zeros(len(labels))
        for s in range(int(studies)):
            idx = _draw(draw_rng, members, n_c)
            u = draw_rng.random(len(idx))
            truth = lab_arr[np.minimum((u[:, None] > cum[idx]).sum(axis=1), len(labels) - 1)]
            true_counts += pd.Series(truth).value_counts().reindex(labels, fill_value=0)
            w = c = None
            if weighted:
                c = codes[idx]
                w = sizes[c] / n_c[c]
            m = weighted_metrics(truth, pred_out[idx], labels, design_weights=w, cells=c,
                                 n_boot=int(n_boot), seed=boot_seeds[s],
                                 confidence=confidence)
            for st in ("kappa", "macro_f1"):
                lo, hi = m.ci(st)
                half[st].append((hi - lo) / 2)
            kappas.append(m.estimates["kappa"])
            alpha = (1 - confidence) / 2
            for j, lab in enumerate(m.scored):
                r = m.f1_replicates[:, j]
                r = r[np.isfinite(r)]
                if np.isfinite(m.f1[j]) and r.size:
                    lo, hi = np.quantile(r, [alpha, 1 - alpha])
                    f1_half[s, labels.index(str(lab))] = (hi - lo) / 2
        gold_by_pred = _items_per_predicted(pred, codes, n_c, sizes)
        out[name] = {
            "kappa": _nanmedian(half["kappa"]), "macro_f1": _nanmedian(half["macro_f1"]),
            "f1": {lab: _nanmedian(f1_half[:, j]) for j, lab in enumerate(labels)},
            "f1_undefined": {lab: float(np.isnan(f1_half[:, j]).mean())
                             for j, lab in enumerate(labels)},
            "kappa_sd": float(np.nanstd(kappas, ddof=1)) if studies > 1 else None,
            "kappa_sd_half_width": (z * float(np.nanstd(kappas, ddof=1))
                                    if studies > 1 else None),
            "gold_by_predicted": gold_by_pred,
            "expected_gold_true": {lab: float(v) for lab, v in
                                   zip(labels, true_counts / int(studies), strict=True)},
            "n_cells": int(len(n_c)), "weighted": weighted,
        }
    counts = pred.value_counts()
    plan: dict[str, Any] = {
        "size": int(size), "studies": int(studies), "n_bands": int(n_bands),
        "min_per_label": None if min_per_label is None else int(min_per_label),
        "confidence": float(confidence), "seed": int(seed), "n_boot": int(n_boot),
        "n_texts": int(n_texts), "labels": labels,
        "predicted_counts": {lab: int(counts.get(lab, 0)) for lab in [*labels, NO_ANSWER]
                             if lab in labels or counts.get(lab, 0)},
        "expected_prevalence": {lab: float(v) for lab, v in
                                zip(labels, probs.mean(axis=0), strict=True)},
        "rare_label": labels[int(np.argmin(probs.mean(axis=0)))],
        "assumption": ASSUMPTION, "ci_method": CI_METHOD,
        "allocation": alloc[[c for c in ("cell", "cell_size", "cell_n") if c in alloc]]
        .to_dict(orient="records"),
        "designs": out,
    }
    plan["recommendation"] = recommendation(plan)
    return to_builtin(plan)


def _items_per_predicted(pred: pd.Series, codes: np.ndarray, n_c: np.ndarray,
                         sizes: np.ndarray) -> dict[str, float]:
    """Expected gold items per predicted label: each cell's items spread over its texts."""
    rate = np.where(sizes > 0, n_c / np.maximum(sizes, 1), 0.0)[codes]
    return {str(k): float(v) for k, v in pd.Series(rate).groupby(pred.to_numpy()).sum()
            .round(2).items()}


def _nanmedian(x: Any) -> float:
    a = np.asarray(x, dtype=float)
    return float(np.nanmedian(a)) if np.isfinite(a).any() else float("nan")


def recommendation(plan: dict[str, Any]) -> str:
    """One sentence: which design gives the narrower CI for the rarest label's F1, by how
    much, and what kappa's half-widths are under each."""
    rare = plan["rare_label"]
    p, m = plan["designs"]["proportional"], plan["designs"]["model_assisted"]
    hp, hm = p["f1"][rare], m["f1"][rare]
    kp, km = p["kappa"], m["kappa"]
    level = f"{plan['confidence']:.0%}"
    if not np.isfinite(hm) and not np.isfinite(hp):
        return (f"Neither design gives the rare label '{rare}' a defined F1 interval at "
                f"size {plan['size']}: raise gold.size.")
    if not np.isfinite(hp) or (np.isfinite(hm) and hm < hp):
        better, worse, hb, hw = "model_assisted", "proportional", hm, hp
    else:
        better, worse, hb, hw = "proportional", "model_assisted", hp, hm
    ratio = (f"{hw / hb:.1f}x narrower" if np.isfinite(hw) and hb > 0
             else f"undefined under {worse}")
    return (f"{better} gives the narrower {level} CI for the F1 of the rarest label '{rare}' "
            f"(expected half-width {hb:.3f} vs {hw:.3f} under {worse}: {ratio}); kappa's "
            f"half-width is {km:.3f} under model_assisted vs {kp:.3f} under proportional "
            f"({plan['size']} gold items, {plan['studies']} simulated studies, assuming a "
            "calibrated first pass: an over-confident one makes both half-widths too small, "
            "so read them as lower bounds; on the manifesto data the real widths were 2.5-4x "
            "these, and the gain of model_assisted smaller than planned).")


def plan_table(plan: dict[str, Any]) -> str:
    """The plan as a plain-text table: one row per design, kappa, macro-F1 and each label's
    F1 half-width, then the expected gold items per predicted label."""
    labels = plan["labels"]
    head = ["design", "kappa", "macro_f1", *[f"F1 {lab}" for lab in labels]]
    rows = [head]
    for name in DESIGN_NAMES:
        d = plan["designs"][name]
        rows.append([name, f"{d['kappa']:.3f}", f"{d['macro_f1']:.3f}",
                     *[f"{d['f1'][lab]:.3f}" for lab in labels]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"Expected {plan['confidence']:.0%} CI half-widths, gold size {plan['size']}, "
             f"{plan['n_texts']} eligible texts, {plan['studies']} simulated studies:"]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.append("Gold items per predicted label: " + "; ".join(
        f"{name}: " + ", ".join(f"{k} {v:.0f}" for k, v in
                                plan["designs"][name]["gold_by_predicted"].items())
        for name in DESIGN_NAMES))
    lines.append("Predicted label counts (corpus): " + ", ".join(
        f"{k} {v}" for k, v in plan["predicted_counts"].items()))
    return "\n".join(lines)


#: the three analyses of :func:`simulate_known_truth`
SIMULATED = ("proportional", "model_assisted", "model_assisted_unweighted")


def simulated_corpus(n_texts: int = 20_000, prevalence: Sequence[float] = (0.03, 0.57, 0.40),
                     signal: float = 2.5, seed: int = 0,
                     labels: Sequence[str] = ("rare", "a", "b")) -> pd.DataFrame:
    """A corpus with known truth and a class-balanced first pass.

    Truth ~ ``prevalence``; the first pass's probabilities are softmax(N(0, 1) logits +
    ``signal`` on the true class), with no prior term: a classifier trained with
    inverse-frequency class weights, as encoders are, which over-predicts the rare class.
    Columns: id, text, truth, label (argmax), confidence (max), prob_<label>, status.
    """
    rng = np.random.default_rng(seed)
    k = len(prevalence)
    truth = rng.choice(k, size=n_texts, p=np.asarray(prevalence, dtype=float))
    logit = rng.normal(0, 1, (n_texts, k))
    logit[np.arange(n_texts), truth] += signal
    p = np.exp(logit)
    p /= p.sum(axis=1, keepdims=True)
    lab = np.asarray(labels, dtype=object)
    df = pd.DataFrame({"id": [f"t{i:06d}" for i in range(n_texts)], "text": "",
                       "truth": lab[truth], "label": lab[p.argmax(axis=1)],
                       "confidence": p.max(axis=1)})
    for j, name in enumerate(labels):
        df[f"prob_{name}"] = p[:, j]
    df["status"] = "ok"
    return df


def simulate_known_truth(corpus: pd.DataFrame, labels: Sequence[str], *, size: int = 300,
                         studies: int = 1000, n_bands: int = 3, n_boot: int = 500,
                         seed: int = 1000, confidence: float = 0.95,
                         rare: str | None = None) -> dict[str, Any]:
    """Repeated gold studies on a corpus with known truth, the first pass as the coder.

    Each study draws ``size`` texts twice, with the gold step's own samplers: a simple
    random sample (:func:`textgauge.data.gold.sample_gold`, the proportional design without
    strata) and a model-assisted sample (:func:`textgauge.data.design.sample_model_assisted`).
    The first pass is scored against the truth as the analysis scores it:
    proportional as drawn; model_assisted with :func:`textgauge.stats.design.gold_design`'s
    weights and cells; and the same model-assisted sample unweighted (what forgetting the
    weights gives). Returns the corpus values and, per analysis, CI coverage of the corpus
    values, median CI widths and the mean estimates (with their standard error).
    """
    from textgauge.data.design import sample_model_assisted
    from textgauge.data.gold import sample_gold
    from textgauge.stats.design import gold_design

    labels = list(labels)
    rare = rare or str(corpus["truth"].value_counts().reindex(labels).idxmin())
    full = weighted_metrics(corpus["truth"], corpus["label"], labels, n_boot=1)
    target = {"kappa": full.estimates["kappa"], "macro_f1": full.estimates["macro_f1"],
              "rare_f1": float(full.f1[list(full.scored).index(rare)])}
    pos = pd.Series(np.arange(len(corpus)), index=corpus["id"].astype(str))
    truth = corpus["truth"].to_numpy(dtype=object)
    pred = corpus["label"].to_numpy(dtype=object)
    eligible = corpus[["id", "text"]]
    fp = corpus[["id", "label", "confidence", "status"]]
    stats_ = ("kappa", "macro_f1", "rare_f1")
    rec = {a: {s: np.full((studies, 3), np.nan) for s in stats_} for a in SIMULATED}
    n_rare = {a: np.zeros(studies) for a in SIMULATED}
    alpha = (1 - confidence) / 2
    for s in range(int(studies)):
        prop = sample_gold(eligible, size, [], seed + s)
        ma, _ = sample_model_assisted(eligible, fp, size, [], seed + s, n_bands=n_bands)
        d = gold_design(ma, ma)
        runs = {"proportional": (prop, None, None),
                "model_assisted": (ma, d.weights, d.cells),
                "model_assisted_unweighted": (ma, None, d.cells)}
        for a_i, (name, (smp, w, cells)) in enumerate(runs.items()):
            idx = pos.index.get_indexer(smp["id"].astype(str))
            m = weighted_metrics(truth[idx], pred[idx], labels, design_weights=w, cells=cells,
                                 n_boot=int(n_boot), seed=[seed + s, a_i],
                                 confidence=confidence)
            n_rare[name][s] = float((truth[idx] == rare).sum())
            for st in ("kappa", "macro_f1"):
                rec[name][st][s] = (m.estimates[st], *m.ci(st))
            if rare in m.scored:
                j = list(m.scored).index(rare)
                lo, hi = np.quantile(m.f1_replicates[:, j], [alpha, 1 - alpha])
                rec[name]["rare_f1"][s] = (float(m.f1[j]), lo, hi)
    out: dict[str, Any] = {"corpus": target, "n_texts": int(len(corpus)), "size": int(size),
                           "studies": int(studies), "n_boot": int(n_boot), "rare": rare,
                           "corpus_predicted_rare": float((pred == rare).mean()),
                           "analyses": {}}
    for name in SIMULATED:
        res: dict[str, Any] = {"mean_true_rare_in_sample": float(n_rare[name].mean())}
        for st in stats_:
            est, lo, hi = rec[name][st].T
            t = target[st]
            covered = (lo <= t) & (t <= hi)  # an undefined CI covers nothing
            se = float(np.nanstd(est, ddof=1) / np.sqrt(np.isfinite(est).sum()))
            res[st] = {"coverage": float(covered.mean()),
                       "median_width": float(np.nanmedian(hi - lo)),
                       "mean_estimate": float(np.nanmean(est)), "se_of_mean": se,
                       "bias_in_se": float((np.nanmean(est) - t) / se) if se > 0 else None}
        out["analyses"][name] = res
    return to_builtin(out)


def simulation_table(sim: dict[str, Any]) -> str:
    """The must-show figures of :func:`simulate_known_truth` as a plain-text table."""
    c = sim["corpus"]
    lines = [f"Corpus: {sim['n_texts']} texts, rare label '{sim['rare']}'; first pass predicts "
             f"it for {sim['corpus_predicted_rare']:.1%}. Corpus kappa {c['kappa']:.3f}, "
             f"macro-F1 {c['macro_f1']:.3f}, rare F1 {c['rare_f1']:.3f}.",
             f"{sim['studies']} studies of {sim['size']} gold items, bootstrap {sim['n_boot']} "
             "replicates, 95% percentile CIs.",
             f"{'analysis':<26} {'cov kappa':>9} {'cov macro':>9} {'cov rare':>8} "
             f"{'w kappa':>8} {'w macro':>8} {'w rare':>7} {'mean kappa':>10} "
             f"{'bias/SE':>8} {'mean rareF1':>11} {'rare n':>6}"]
    for name in SIMULATED:
        a = sim["analyses"][name]
        k, m, r = a["kappa"], a["macro_f1"], a["rare_f1"]
        lines.append(f"{name:<26} {k['coverage']:>9.3f} {m['coverage']:>9.3f} "
                     f"{r['coverage']:>8.3f} {k['median_width']:>8.3f} "
                     f"{m['median_width']:>8.3f} {r['median_width']:>7.3f} "
                     f"{k['mean_estimate']:>10.3f} {k['bias_in_se']:>8.1f} "
                     f"{r['mean_estimate']:>11.3f} {a['mean_true_rare_in_sample']:>6.1f}")
    p = sim["analyses"]["proportional"]["rare_f1"]["median_width"]
    w = sim["analyses"]["model_assisted"]["rare_f1"]["median_width"]
    lines.append(f"Rare-label F1 CI: model_assisted (weighted) is {p / w:.2f}x narrower than "
                 "proportional (median widths).")
    return "\n".join(lines)
