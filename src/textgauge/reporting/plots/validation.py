"""Figures of the validation report: one function per figure, each returns the Figure."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def to_data_uri(fig: Figure) -> str:
    """PNG as a data URI, so the report is one self-contained file that works offline."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def confusion_heatmap(cm: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> Figure:
    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{int(cm[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center",
                    fontsize=7, color="white" if norm[i, j] > 0.6 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference (gold)")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046, label="row share")
    return fig


def per_class_f1(per_class: Mapping[str, pd.DataFrame]) -> Figure:
    """F1 per label, one bar group per label, a bar per model."""
    models = list(per_class)
    labels = list(next(iter(per_class.values()))["label"]) if models else []
    fig, ax = plt.subplots(figsize=(6, 3.2))
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(labels))
    for i, m in enumerate(models):
        df = per_class[m].set_index("label").reindex(labels)
        bars = ax.bar(x + i * width, df["f1"], width, label=m)
        if {"f1_ci_low", "f1_ci_high"} <= set(df.columns):
            ax.errorbar(x + i * width, df["f1"], yerr=[df["f1"] - df["f1_ci_low"],
                        df["f1_ci_high"] - df["f1"]], fmt="none", ecolor="black", capsize=2)
        for b, s in zip(bars, df["support"], strict=True):
            ax.text(b.get_x() + b.get_width() / 2, 0.02, f"n={int(s)}", ha="center",
                    fontsize=6, rotation=90, color="white")
    ax.set_xticks(x + width * (len(models) - 1) / 2, labels)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1 on the gold set")
    ax.legend(fontsize=7)
    return fig


def kappa_forest(rows: Sequence[Mapping[str, Any]], threshold: float,
                 ceiling: tuple[float, float] | None = None, title: str = "",
                 confidence: float = 0.95, statistic: str = "Cohen's kappa",
                 ceiling_label: str = "human-human kappa (CI)") -> Figure:
    """Kappa with CI per coder pair; the threshold line and the human-ceiling band."""
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    if ceiling is not None:
        ax.axvspan(ceiling[0], ceiling[1], color="tab:green", alpha=0.15,
                   label=ceiling_label)
    ax.axvline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:.2f}")
    for yi, r in zip(y, rows, strict=True):
        color = "tab:green" if r.get("human") else "tab:blue"
        ax.errorbar(r["kappa"], yi, xerr=[[r["kappa"] - r["ci_low"]], [r["ci_high"] - r["kappa"]]],
                    fmt="o", color=color, capsize=3)
        ax.text(1.02, yi, f"{r['kappa']:.2f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}] n={r['n']}",
                va="center", fontsize=7, transform=ax.get_yaxis_transform())
    ax.set_yticks(y, [r["name"] for r in rows], fontsize=8)
    ax.set_xlim(min(0, min((r["ci_low"] for r in rows), default=0)), 1)
    ax.set_xlabel(f"{statistic} ({100 * confidence:g}% CI)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="lower left")
    return fig


def training_curves(history: Sequence[Mapping[str, Any]], title: str) -> Figure:
    h = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(5, 3))
    for col, style in (("train_loss", "-o"), ("val_loss", "-s")):
        if col in h:
            ax.plot(h["epoch"], h[col], style, label=col.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    if "val_macro_f1" in h:
        ax2 = ax.twinx()
        ax2.plot(h["epoch"], h["val_macro_f1"], "-^", color="tab:green", label="val macro-F1")
        ax2.set_ylabel("validation macro-F1")
        ax2.set_ylim(0, 1)
        ax2.legend(fontsize=7, loc="upper right")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title, fontsize=9)
    return fig


def difference_forest(rows: Sequence[Mapping[str, Any]], title: str = "",
                      confidence: float = 0.95, statistic: str = "Cohen's kappa") -> Figure:
    """Paired differences (A - B) with CIs, one row per comparison, and the line of no
    difference: a CI that crosses it shows no difference between the two coders."""
    fig, ax = plt.subplots(figsize=(6.4, 0.42 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    ax.axvline(0, color="black", lw=1)
    for yi, r in zip(y, rows, strict=True):
        d, lo, hi = (float(r[k]) if r[k] is not None else np.nan
                     for k in ("difference", "ci_low", "ci_high"))
        color = "tab:green" if r.get("human") else "tab:blue"
        if np.isfinite(lo) and np.isfinite(hi):
            ax.errorbar(d, yi, xerr=[[d - lo], [hi - d]], fmt="o", color=color, capsize=3)
        else:
            ax.plot(d, yi, "o", color=color)
        ax.text(1.02, yi, f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}] n={r['n']}", va="center",
                fontsize=7, transform=ax.get_yaxis_transform())
    ax.set_yticks(y, [r["name"] for r in rows], fontsize=8)
    lim = max([0.1] + [abs(float(r[k])) for r in rows for k in ("ci_low", "ci_high")
                       if r[k] is not None and np.isfinite(float(r[k]))])
    ax.set_xlim(-1.05 * lim, 1.05 * lim)
    ax.set_xlabel(f"difference in {statistic} ({100 * confidence:g}% paired bootstrap CI)")
    ax.set_title(title, fontsize=9)
    return fig
