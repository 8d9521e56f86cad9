"""How many items must humans and the model code? Sample-size planning for Cohen's kappa.

Why: a validation study that is too small ends "inconclusive" (the CI straddles the
threshold). Planning uses the large-sample variance of kappa (Fleiss, Cohen & Everitt 1969)
evaluated at the *expected* joint distribution of the two ratings. Both raters are assumed to
share the category prevalences ``p`` and to agree beyond chance by ``kappa``:

    P(i, j) = p_i p_j (1 - kappa) + kappa p_i [i == j],

whose margins are ``p`` and whose kappa is exactly ``kappa`` (the common-marginal model used by
Donner & Eliasziw 1992 for two categories and by Flack et al. 1988 / Cantor 1996 for K).

* Precision: n = z^2 Q(kappa) / h^2 for a CI half-width h, with Q = n Var(kappa_hat).
* Test of H0: kappa <= kappa0 against kappa1 (Cantor 1996, eq. 3):
  n = (z_alpha sqrt(Q(kappa0)) + z_beta sqrt(Q(kappa1)))^2 / (kappa1 - kappa0)^2.
* Two categories, Donner & Eliasziw (1992) goodness-of-fit formula:
  n = (z_alpha + z_beta)^2 / sum_l (P_l(kappa1) - P_l(kappa0))^2 / P_l(kappa0), l over the
  three outcomes (both positive, discordant, both negative).

References
----------
Cantor (1996) Psychol Methods 1:150-153; Donner & Eliasziw (1992) Stat Med 11:1511-1519;
Flack, Afifi, Lachenbruch & Schouten (1988) Psychometrika 53:321-325; Fleiss, Cohen & Everitt
(1969) Psychol Bull 72:323-327.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

import numpy as np
from scipy import stats

from textgauge.stats.inputs import agreement_weights
from textgauge.stats.kappa import kappa_parts

__all__ = [
    "cell_probabilities",
    "kappa_n_for_ci",
    "kappa_n_for_test",
    "kappa_variance_per_item",
    "samplesize_cli",
]


def _prevalences(prevalences: Sequence[float] | None, n_categories: int | None) -> np.ndarray:
    if prevalences is None:
        if n_categories is None or n_categories < 2:
            raise ValueError("give prevalences or n_categories >= 2.")
        return np.full(n_categories, 1.0 / n_categories)
    p = np.asarray(prevalences, dtype=float)
    if p.ndim != 1 or p.size < 2 or (p <= 0).any() or not np.isclose(p.sum(), 1.0):
        raise ValueError("prevalences must be >= 2 positive proportions summing to 1, "
                         f"got {list(p)}.")
    if n_categories is not None and n_categories != p.size:
        raise ValueError(f"n_categories={n_categories} but {p.size} prevalences given.")
    return p


def cell_probabilities(kappa: float, prevalences: Sequence[float] | None = None,
                       n_categories: int | None = None) -> np.ndarray:
    """Joint K x K rating distribution with common margins ``prevalences`` and given kappa."""
    p = _prevalences(prevalences, n_categories)
    if not -1 < kappa <= 1:
        raise ValueError(f"kappa must be in (-1, 1], got {kappa}.")
    cells = np.outer(p, p) * (1 - kappa) + kappa * np.diag(p)
    if (cells < -1e-12).any():
        raise ValueError(f"kappa={kappa} is impossible with these prevalences (negative cell "
                         "probabilities); the lower bound is -min(p_i/(1-p_i)).")
    return np.clip(cells, 0, None)


def kappa_variance_per_item(kappa: float, prevalences: Sequence[float] | None = None,
                            n_categories: int | None = None, weights: object = None) -> float:
    """Q = n Var(kappa_hat): the Fleiss–Cohen–Everitt variance for one item."""
    cells = cell_probabilities(kappa, prevalences, n_categories)
    w = agreement_weights(cells.shape[0], weights)
    return float(kappa_parts(cells, w)["var"])  # table of proportions: n = 1


def _z(level: float) -> float:
    return float(stats.norm.ppf(level))


def kappa_n_for_ci(kappa: float, half_width: float, prevalences: Sequence[float] | None = None,
                   n_categories: int | None = None, confidence: float = 0.95) -> int:
    """Items needed so that the Wald CI of kappa has the given expected half-width.

    Example: ``kappa_n_for_ci(0.7, 0.1, n_categories=3)``.
    """
    if not 0 < half_width < 1:
        raise ValueError(f"half_width must be in (0, 1), got {half_width}.")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}.")
    q = kappa_variance_per_item(kappa, prevalences, n_categories)
    return max(2, math.ceil(_z(0.5 + confidence / 2) ** 2 * q / half_width**2))


def kappa_n_for_test(kappa0: float, kappa1: float, prevalences: Sequence[float] | None = None,
                     n_categories: int | None = None, alpha: float = 0.05, power: float = 0.8,
                     sides: int = 1, method: str = "cantor") -> int:
    """Items needed to show kappa > kappa0 when the true kappa is kappa1.

    ``method="cantor"`` (any K; Cantor 1996) or ``"donner-eliasziw"`` (K = 2; Donner &
    Eliasziw 1992). ``sides=2`` uses alpha/2.
    """
    if not kappa1 > kappa0:
        raise ValueError(f"kappa1 must exceed kappa0, got kappa0={kappa0}, kappa1={kappa1}.")
    if sides not in (1, 2):
        raise ValueError(f"sides must be 1 or 2, got {sides}.")
    if not (0 < alpha < 1 and 0 < power < 1):
        raise ValueError("alpha and power must be in (0, 1).")
    za = _z(1 - alpha / sides)
    zb = _z(power)
    if method == "cantor":
        q0 = kappa_variance_per_item(kappa0, prevalences, n_categories)
        q1 = kappa_variance_per_item(kappa1, prevalences, n_categories)
        n = (za * math.sqrt(q0) + zb * math.sqrt(q1)) ** 2 / (kappa1 - kappa0) ** 2
    elif method == "donner-eliasziw":
        c0 = cell_probabilities(kappa0, prevalences, n_categories)
        c1 = cell_probabilities(kappa1, prevalences, n_categories)
        if c0.shape != (2, 2):
            raise ValueError("method='donner-eliasziw' is for two categories.")
        p0 = np.array([c0[0, 0], c0[0, 1] + c0[1, 0], c0[1, 1]])
        p1 = np.array([c1[0, 0], c1[0, 1] + c1[1, 0], c1[1, 1]])
        n = (za + zb) ** 2 / float(np.sum((p1 - p0) ** 2 / p0))
    else:
        raise ValueError(f"method must be 'cantor' or 'donner-eliasziw', got {method!r}.")
    return max(2, math.ceil(n))


def samplesize_cli(argv: Sequence[str] | None = None) -> int:
    """``textgauge samplesize``: print the number of items to code.

    Examples::

        textgauge samplesize ci --kappa 0.7 --half-width 0.1 --prevalences 0.2 0.3 0.5
        textgauge samplesize test --kappa0 0.6 --kappa1 0.8 --n-categories 3 --power 0.8
        textgauge samplesize design --predictions results/predictions/baseline.parquet \
            --size 300 --bands 3 --studies 200

    ``design`` compares the gold designs (proportional vs model_assisted) by simulation from
    a first-pass coder's corpus predictions (:mod:`textgauge.planning.gold_design`).
    """
    ap = argparse.ArgumentParser(prog="textgauge samplesize",
                                 description="Items needed for a kappa validation study.")
    sub = ap.add_subparsers(dest="mode", required=True)
    for name in ("ci", "test"):
        sp = sub.add_parser(name)
        g = sp.add_mutually_exclusive_group(required=True)
        g.add_argument("--prevalences", type=float, nargs="+",
                       help="expected category proportions (sum to 1)")
        g.add_argument("--n-categories", type=int, help="K equally common categories")
        if name == "ci":
            sp.add_argument("--kappa", type=float, required=True, help="expected kappa")
            sp.add_argument("--half-width", type=float, required=True)
            sp.add_argument("--confidence", type=float, default=0.95)
        else:
            sp.add_argument("--kappa0", type=float, required=True, help="kappa under H0")
            sp.add_argument("--kappa1", type=float, required=True, help="expected kappa")
            sp.add_argument("--alpha", type=float, default=0.05)
            sp.add_argument("--power", type=float, default=0.8)
            sp.add_argument("--sides", type=int, default=1, choices=(1, 2))
            sp.add_argument("--method", default="cantor",
                            choices=("cantor", "donner-eliasziw"))
    dp = sub.add_parser("design", help="expected CI half-widths under each gold design, "
                        "simulated from a first-pass coder's predictions")
    dp.add_argument("--predictions", required=True,
                    help="first-pass predictions (.parquet or .csv: id, label, confidence, "
                    "prob_<label>) of the texts the gold sample may be drawn from")
    dp.add_argument("--size", type=int, required=True, help="gold sample size")
    dp.add_argument("--bands", type=int, default=3, help="confidence bands per label")
    dp.add_argument("--min-per-label", type=int, default=None,
                    help="minimum items per predicted label (default size // (2 x labels))")
    dp.add_argument("--studies", type=int, default=200, help="simulated studies per design")
    dp.add_argument("--seed", type=int, default=0)
    dp.add_argument("--labels", default=None,
                    help="codebook labels, comma-separated (default: from the prob_ columns)")
    dp.add_argument("--confidence", type=float, default=0.95)
    args = ap.parse_args(list(argv) if argv is not None else None)
    if args.mode == "design":
        return _design_cli(args)
    try:
        if args.mode == "ci":
            n = kappa_n_for_ci(args.kappa, args.half_width, args.prevalences,
                               args.n_categories, args.confidence)
            print(f"{n} items give an expected {args.confidence:.0%} CI of kappa="
                  f"{args.kappa} +/- {args.half_width}")
        else:
            n = kappa_n_for_test(args.kappa0, args.kappa1, args.prevalences,
                                 args.n_categories, args.alpha, args.power, args.sides,
                                 args.method)
            print(f"{n} items give {args.power:.0%} power to reject kappa <= {args.kappa0} "
                  f"when kappa = {args.kappa1} (alpha={args.alpha}, {args.sides}-sided, "
                  f"{args.method})")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _design_cli(args: argparse.Namespace) -> int:
    """``samplesize design``: read the predictions, plan both designs, print the table."""
    from pathlib import Path

    import pandas as pd

    from textgauge.errors import TextgaugeError
    from textgauge.planning.gold_design import plan_designs, plan_table

    path = Path(args.predictions)
    try:
        if not path.is_file():
            raise TextgaugeError(f"No predictions file at {path}.")
        preds = (pd.read_csv(path) if path.suffix.lower() in (".csv", ".tsv")
                 else pd.read_parquet(path))
        if args.labels:
            labels = [x.strip() for x in args.labels.split(",") if x.strip()]
        else:
            labels = [c[len("prob_"):] for c in preds.columns if str(c).startswith("prob_")]
            if not labels and "label" in preds.columns:
                labels = sorted(map(str, preds["label"].dropna().unique()))
        plan = plan_designs(preds, labels, args.size, n_bands=args.bands,
                            min_per_label=args.min_per_label, studies=args.studies,
                            seed=args.seed, confidence=args.confidence)
    except (TextgaugeError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(plan_table(plan))
    print(plan["recommendation"])
    return 0
