"""Dry-run time of the workflow with many shards: `snakemake -n` with 1,000 vs 10 shards.

Target: < 15 s for 1,000 shards on 2 cores. Uses the bundled SYNTHETIC example (3,000
texts; the dry run never reads it) in a temporary run folder linked to this checkout.

Run: python bench/bench_dryrun.py [--shards 1000] [--baseline 10]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from textgauge.planning.jobs import parse_job_stats  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LINKED = ["Snakefile", "workflow", "scripts", "prompts", "resources", "config.yaml", "config",
          "envs", "profiles"]


def dry_run(run: Path, shards: int) -> tuple[float, int]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    extra = run / f"shards-{shards}.yaml"
    extra.write_text(f"inference:\n  shards: {shards}\n")
    cmd = [sys.executable, "-m", "snakemake", "-n", "--quiet", "rules", "--configfile",
           "config/test.yaml", str(extra)]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=run, env=env, capture_output=True, text=True, timeout=300)
    dt = time.perf_counter() - t0
    if res.returncode != 0:
        raise SystemExit(f"snakemake -n failed:\n{(res.stdout + res.stderr)[-3000:]}")
    return dt, sum(parse_job_stats(res.stdout + res.stderr).values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shards", type=int, default=1000)
    ap.add_argument("--baseline", type=int, default=10)
    ap.add_argument("--limit", type=float, default=15.0, help="seconds allowed (exit 1 above)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="textgauge-bench-") as tmp:
        run = Path(tmp)
        for name in LINKED:
            (run / name).symlink_to(REPO / name)
        dry_run(run, args.baseline)  # warm caches (imports, source cache)
        t_base, n_base = dry_run(run, args.baseline)
        t_big, n_big = dry_run(run, args.shards)
    print(f"snakemake -n, {args.baseline:>5} shards: {t_base:6.2f} s, {n_base} jobs")
    print(f"snakemake -n, {args.shards:>5} shards: {t_big:6.2f} s, {n_big} jobs")
    print(f"ratio {args.shards}/{args.baseline} shards: time x{t_big / t_base:.2f}, "
          f"jobs x{n_big / n_base:.1f}")
    ok = t_big < args.limit
    print(f"{'OK' if ok else 'TOO SLOW'}: {t_big:.2f} s {'<' if ok else '>='} {args.limit:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
