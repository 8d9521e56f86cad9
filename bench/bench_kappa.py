"""Benchmark: kappa + 1,000-resample bootstrap CI, vectorised vs a scikit-learn loop.

The loop calls ``sklearn.metrics.cohen_kappa_score`` once per resample; it is timed on a few
resamples and scaled to 1,000. Run: ``python bench/bench_kappa.py`` (1,000,000 items) or
``python bench/bench_kappa.py --quick`` (100,000 items).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from sklearn.metrics import cohen_kappa_score  # noqa: E402

from textgauge.agreement import bootstrap_kappa, cohen_kappa  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="100,000 items instead of 1,000,000")
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--loop-reps", type=int, default=20)
    args = ap.parse_args()
    n = args.n or (100_000 if args.quick else 1_000_000)
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, n)
    b = np.where(rng.random(n) < 0.7, a, rng.integers(0, 4, n))

    t0 = time.perf_counter()
    k = cohen_kappa(a, b)
    res = bootstrap_kappa(a, b, n_boot=args.n_boot, seed=0, engine="indices")
    t_vec = time.perf_counter() - t0

    t0 = time.perf_counter()
    res_m = bootstrap_kappa(a, b, n_boot=args.n_boot, seed=0, engine="multinomial")
    t_mult = time.perf_counter() - t0

    loop_rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    cohen_kappa_score(a, b)
    for _ in range(args.loop_reps):
        idx = loop_rng.integers(0, n, n)
        cohen_kappa_score(a[idx], b[idx])
    t_loop = (time.perf_counter() - t0) / (args.loop_reps + 1) * (args.n_boot + 1)

    print(f"items={n:,} resamples={args.n_boot}")
    print(f"kappa={k.estimate:.4f} analytic CI=({k.ci_low:.4f}, {k.ci_high:.4f})")
    print(f"bootstrap CI (indices)     =({res.ci_low:.4f}, {res.ci_high:.4f})")
    print(f"bootstrap CI (multinomial) =({res_m.ci_low:.4f}, {res_m.ci_high:.4f})")
    print(f"vectorised (indices):     {t_vec:8.2f} s")
    print(f"vectorised (multinomial): {t_mult:8.3f} s")
    print(f"sklearn loop (scaled from {args.loop_reps}): {t_loop:8.2f} s")
    print(f"speed-up indices: {t_loop / t_vec:6.1f}x   multinomial: {t_loop / t_mult:8.0f}x")


if __name__ == "__main__":
    main()
