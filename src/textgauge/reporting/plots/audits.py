"""Figures of the audit, confidence and prevalence results: one function per figure.

Each function takes the table produced by the matching library function and returns a
:class:`matplotlib.figure.Figure` built without pyplot on an Agg canvas (no global backend
switch, no GUI, nothing left open), to be saved with ``fig.savefig(path)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from textgauge.stats import OVERALL


def _figure(width: float = 5.5, height: float = 4.0) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def plot_reliability_diagram(bins: pd.DataFrame, ece: float | None = None,
                             title: str = "Reliability diagram") -> Figure:
    """Accuracy vs mean confidence per bin (from :func:`confidence.calibration_bins`)."""
    fig, ax = _figure()
    used = bins[bins["n"] > 0]
    width = (bins["upper"] - bins["lower"]).to_numpy()
    ax.bar(bins["lower"], bins["accuracy"].fillna(0), width=width, align="edge",
           edgecolor="black", color="#4c72b0", alpha=0.8, label="accuracy")
    ax.bar(used["lower"], used["mean_confidence"] - used["accuracy"],
           bottom=used["accuracy"], width=(used["upper"] - used["lower"]), align="edge",
           color="#dd8452", alpha=0.5, hatch="//", label="gap")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence", ylabel="accuracy", title=title)
    if ece is not None:
        ax.text(0.04, 0.92, f"ECE = {ece:.3f}", transform=ax.transAxes)
    ax.legend(loc="lower right", fontsize="small")
    return fig


def plot_coverage_accuracy(curve: pd.DataFrame, review_fraction: float | None = None,
                           title: str = "Coverage vs accuracy") -> Figure:
    """Accuracy of the auto-accepted items by coverage (:func:`coverage_accuracy_curve`)."""
    fig, ax = _figure()
    ax.plot(curve["coverage"], curve["accuracy"], drawstyle="steps-post", color="#4c72b0")
    if review_fraction is not None:
        ax.axvline(1 - review_fraction, ls="--", color="#c44e52",
                   label=f"review {review_fraction:.0%} least confident")
        ax.legend(loc="lower left", fontsize="small")
    ax.set(xlim=(0, 1.01), xlabel="coverage (share auto-accepted)",
           ylabel="accuracy among accepted", title=title)
    return fig


def plot_positional_selection(selection: pd.DataFrame, p_value: float | None = None,
                              title: str = "Chosen label by position") -> Figure:
    """Observed vs neutral-expected selection rate per position (:func:`positional_audit`)."""
    fig, ax = _figure()
    x = np.arange(len(selection))
    obs = selection["observed_rate"].to_numpy()
    err = None
    if "observed_ci_low" in selection.columns:
        err = np.vstack([obs - selection["observed_ci_low"], selection["observed_ci_high"] - obs])
        # a Wilson bound can sit a rounding error beyond the rate (e.g. at 0 or 1)
        err = np.clip(np.nan_to_num(err.astype(float)), 0, None)
    ax.bar(x - 0.2, obs, 0.4, yerr=err, capsize=3, color="#4c72b0", label="observed")
    ax.bar(x + 0.2, selection["expected_rate"], 0.4, color="#bbbbbb",
           label="expected if position-neutral")
    ax.set_xticks(x, [str(p) for p in selection["position"]])
    ax.set(xlabel="position in the label list", ylabel="share of answers", title=title)
    if p_value is not None:
        ax.text(0.98, 0.95, f"chi-square p = {p_value:.2g}", transform=ax.transAxes,
                ha="right", va="top")
    ax.legend(loc="upper center", fontsize="small")
    return fig


def plot_prevalence(estimates: pd.DataFrame, stratum_col: str = OVERALL,
                    title: str = "Class prevalence: naive vs corrected") -> Figure:
    """Prevalence per class and method with CIs (:func:`prevalence.corrected_prevalence`).

    ``stratum_col`` picks the overall rows (default) or one strata column (one panel row per
    stratum value, stacked on the y axis as 'stratum: label').
    """
    df = estimates[estimates["stratum_col"] == stratum_col]
    methods = list(dict.fromkeys(df["method"]))
    keys = list(dict.fromkeys(zip(df["stratum"], df["label"], strict=True)))
    fig, ax = _figure(6.0, max(2.5, 0.45 * len(keys) * max(1, len(methods)) / 2 + 1))
    colours = {"naive": "#bbbbbb", "ppi": "#4c72b0", "dsl": "#55a868"}
    step = 0.8 / max(len(methods), 1)
    for j, m in enumerate(methods):
        part = df[df["method"] == m].set_index(["stratum", "label"]).reindex(keys)
        y = np.arange(len(keys)) + (j - (len(methods) - 1) / 2) * step
        est = part["estimate"].to_numpy(dtype=float)
        lo = np.clip(est - part["ci_low"].to_numpy(dtype=float), 0, None)
        hi = np.clip(part["ci_high"].to_numpy(dtype=float) - est, 0, None)
        ax.errorbar(est, y, xerr=np.vstack([lo, hi]), fmt="o", capsize=3,
                    color=colours.get(m, None), label=m)
    names = [lab if stratum_col == OVERALL else f"{s}: {lab}" for s, lab in keys]
    ax.set_yticks(np.arange(len(keys)), names)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="prevalence", title=title)
    ax.legend(fontsize="small", loc="best")
    return fig


def plot_stratum_forest(table: pd.DataFrame, metric: str = "kappa",
                        threshold: float | None = 0.70,
                        title: str | None = None) -> Figure:
    """Forest plot of a metric with CIs per stratum (the table of
    :func:`textgauge.stats.per_stratum`); flagged strata in red."""
    keys = list(zip(table["stratum_col"], table["stratum"], strict=True))
    fig, ax = _figure(6.0, max(2.5, 0.35 * len(keys) + 1))
    est = table[metric].to_numpy(dtype=float)
    lo = table[f"{metric}_ci_low"].to_numpy(dtype=float)
    hi = table[f"{metric}_ci_high"].to_numpy(dtype=float)
    y = np.arange(len(keys))
    flagged = table["flagged"].to_numpy(dtype=bool) if "flagged" in table.columns else \
        np.zeros(len(keys), bool)
    for i in range(len(keys)):
        colour = "#c44e52" if flagged[i] else ("black" if keys[i][0] == OVERALL else "#4c72b0")
        if np.isfinite(lo[i]) and np.isfinite(hi[i]):
            ax.plot([lo[i], hi[i]], [y[i], y[i]], color=colour)
        ax.plot(est[i], y[i], "D" if keys[i][0] == OVERALL else "o", color=colour)
    overall = est[[k[0] == OVERALL for k in keys]]
    if overall.size:
        ax.axvline(overall[0], color="grey", ls=":", label="overall")
    if threshold is not None:
        ax.axvline(threshold, color="#c44e52", ls="--", label=f"threshold {threshold:g}")
    names = [str(s) if c == OVERALL else f"{c} = {s}" for c, s in keys]
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    level = (f"{100 * float(table['confidence'].iloc[0]):g}% CI" if "confidence" in table
             and len(table) else "CI")
    ax.set(xlabel=metric, title=title or f"{metric} by stratum ({level})")
    ax.legend(fontsize="small", loc="lower left")
    return fig


def plot_difference_forest(rows: pd.DataFrame, metrics: tuple[str, ...] = ("kappa",),
                           title: str = "Difference with CI",
                           xlabel: str = "difference") -> Figure:
    """Forest plot of differences with CIs around a 0 line (no threshold: a difference says
    whether two parts differ, not whether either passes).

    ``rows``: one row per comparison with ``name`` and, per metric, ``{metric}``,
    ``{metric}_ci_low``, ``{metric}_ci_high`` (e.g. the per-stratum shift of
    :func:`textgauge.audits.strata.stratum_shift`: each stratum minus the rest of gold; or
    stage 5: re-validation minus gold). A CI that excludes 0 is drawn in red.
    """
    n = len(rows)
    fig, ax = _figure(6.0, max(2.5, 0.4 * n * len(metrics) + 1.2))
    y = np.arange(n, dtype=float)
    offsets = np.linspace(-0.15, 0.15, len(metrics)) if len(metrics) > 1 else [0.0]
    markers = ("o", "s", "^", "D")
    for j, metric in enumerate(metrics):
        est = rows[metric].to_numpy(dtype=float)
        lo = rows[f"{metric}_ci_low"].to_numpy(dtype=float)
        hi = rows[f"{metric}_ci_high"].to_numpy(dtype=float)
        for i in range(n):
            off = np.isfinite(lo[i]) and np.isfinite(hi[i]) and (lo[i] > 0 or hi[i] < 0)
            colour = "#c44e52" if off else ("#4c72b0" if j == 0 else "#55a868")
            yi = y[i] + offsets[j]
            if np.isfinite(lo[i]) and np.isfinite(hi[i]):
                ax.plot([lo[i], hi[i]], [yi, yi], color=colour)
            ax.plot(est[i], yi, markers[j % len(markers)], color=colour,
                    label=metric if i == 0 else None)
    ax.axvline(0, color="black", lw=1, label="no difference")
    ax.set_yticks(y, [str(s) for s in rows["name"]])
    ax.invert_yaxis()
    ax.set(xlabel=xlabel, title=title)
    ax.legend(fontsize="small", loc="lower left")
    return fig
