"""Job plan of a run before it starts (``textgauge plan-jobs``): jobs per rule, GPU jobs, hours.

Runs ``snakemake -n`` in a subprocess with the arguments you would run the workflow with
(``--configfile``, ``--workflow-profile profiles/slurm`` for the cluster's resources, ...)
and summarises the jobs it would run: count per rule, GPU jobs, GPU-hours (sum of
``runtime`` x ``gpu`` over GPU jobs; ``runtime`` in minutes as Snakemake/SLURM use it) and
CPU-hours (threads x runtime), i.e. the walltime you would request, an upper bound of use.

The rules of this workflow carry ``message:`` lines, which make Snakemake's dry run print the
message instead of each job's resources; the subprocess therefore wraps Snakemake's log
formatter so that every planned job is also printed as one JSON line (``TEXTGAUGE_JOB ...``).
Where that fails (another Snakemake version), the plan falls back to the job-stats table:
counts per rule, hours unknown. Token and money costs of prompted API models: ``textgauge
plan`` (textgauge.planning.cost).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

MARK = "TEXTGAUGE_JOB "

# Run Snakemake's CLI with a formatter that also prints each job's rule/wildcards/resources.
_RUNNER = r"""
import json, sys
import snakemake.logging as L
_orig = L.DefaultFormatter.format_job_info
def _res(r):
    try:
        items = dict(r).items()
    except Exception:
        items = getattr(r, "items", lambda: [])()
    out = {}
    for k, v in items:
        if k.startswith("_"):
            continue
        out[k] = v if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
    return out
def format_job_info(self, msg):
    try:
        line = json.dumps({"rule": msg.get("rule_name"), "jobid": msg.get("jobid"),
                           "wildcards": {k: str(v) for k, v in dict(msg.get("wildcards") or {}).items()},
                           "threads": msg.get("threads"), "local": msg.get("local"),
                           "resources": _res(msg.get("resources") or {})})
    except Exception as exc:
        line = json.dumps({"error": repr(exc)})
    return "%s%s\n%s" % (MARK, line, _orig(self, msg))
L.DefaultFormatter.format_job_info = format_job_info
from snakemake.cli import main
sys.argv = ["snakemake"] + sys.argv[1:]
main()
""".replace("MARK", repr(MARK))


@dataclass
class RulePlan:
    rule: str
    jobs: int = 0
    gpu_jobs: int = 0
    gpus: float = 0.0
    runtime_min: float = 0.0        # summed over jobs
    gpu_hours: float = 0.0
    cpu_hours: float = 0.0


@dataclass
class JobPlan:
    total_jobs: int
    rules: dict[str, RulePlan]
    gpu_jobs: int = 0
    gpu_hours: float = 0.0
    cpu_hours: float = 0.0
    resources_known: bool = True
    command: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rules"] = {k: asdict(v) for k, v in self.rules.items()}
        return d


def parse_job_stats(text: str) -> dict[str, int]:
    """The per-rule 'Job stats' table of a dry run -> {rule: count} (without 'total')."""
    counts: dict[str, int] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Job stats:":
            for row in lines[i + 3:]:
                m = re.fullmatch(r"\s*(\S+)\s+(\d+)\s*", row)
                if not m:
                    break
                if m.group(1) != "total":
                    counts[m.group(1)] = int(m.group(2))
            break
    return counts


def parse_jobs(text: str) -> list[dict[str, Any]]:
    jobs = []
    for line in text.splitlines():
        i = line.find(MARK)
        if i >= 0:
            with _suppress():
                rec = json.loads(line[i + len(MARK):])
                if "rule" in rec:
                    jobs.append(rec)
    return jobs


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], ValueError)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def summarise(counts: Mapping[str, int], jobs: Sequence[Mapping[str, Any]]) -> JobPlan:
    rules = {r: RulePlan(r) for r in counts}
    known = bool(jobs) or not counts
    if jobs:
        for j in jobs:
            rp = rules.setdefault(j["rule"], RulePlan(j["rule"]))
            rp.jobs += 1
            res = j.get("resources", {})
            runtime = _num(res.get("runtime"))
            gpu = _num(res.get("gpu")) or _num(res.get("gpus"))
            if not gpu and "gpu" in str(res.get("gres", "")):
                m = re.search(r"gpu(?::\w+)?:(\d+)", str(res["gres"]))
                gpu = float(m.group(1)) if m else 1.0
            rp.runtime_min += runtime
            rp.cpu_hours += (j.get("threads") or 1) * runtime / 60
            if gpu > 0:
                rp.gpu_jobs += 1
                rp.gpus += gpu
                rp.gpu_hours += gpu * runtime / 60
    else:
        for r, n in counts.items():
            rules[r].jobs = n
    plan = JobPlan(total_jobs=sum(r.jobs for r in rules.values()), rules=rules,
                   resources_known=known)
    plan.gpu_jobs = sum(r.gpu_jobs for r in rules.values())
    plan.gpu_hours = sum(r.gpu_hours for r in rules.values())
    plan.cpu_hours = sum(r.cpu_hours for r in rules.values())
    if counts and jobs and {r: p.jobs for r, p in rules.items() if p.jobs} != dict(counts):
        plan.notes.append("per-job records and the job-stats table disagree; counts are from "
                          "the per-job records")
    if not known:
        plan.notes.append("per-job resources were not available from this Snakemake; counts "
                          "only")
    return plan


def plan_jobs(snakemake_args: Sequence[str] = (), cwd: str | None = None,
              python: str | None = None, timeout: float = 600) -> JobPlan:
    """Dry-run the workflow with ``snakemake_args`` and return the plan."""
    args = list(snakemake_args)
    capped = not any(a in ("-c", "--cores") or a.startswith("--cores=") for a in args)
    if capped:  # a dry run caps threads at the local cores: plan the rules' own requests
        args += ["--cores", "1024"]
    cmd = [python or sys.executable, "-c", _RUNNER, "-n", *args]
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    text = res.stdout + "\n" + res.stderr
    if res.returncode != 0:
        raise RuntimeError(f"snakemake -n failed (exit {res.returncode}):\n{text[-3000:]}")
    counts = parse_job_stats(text)
    plan = summarise(counts, parse_jobs(text))
    plan.command = ["snakemake", "-n", *snakemake_args]
    if not counts and not plan.total_jobs:
        plan.notes.append("nothing to be done (all outputs exist); use --all to plan a full run")
    return plan


def format_plan(plan: JobPlan) -> str:
    w = max([len(r) for r in plan.rules] + [len("rule"), len("total")])
    lines = [f"{'rule':<{w}}  {'jobs':>6}  {'gpu jobs':>8}  {'gpu-h':>8}  {'cpu-h':>8}"]
    for r in sorted(plan.rules.values(), key=lambda r: (-r.gpu_hours, r.rule)):
        lines.append(f"{r.rule:<{w}}  {r.jobs:>6}  {r.gpu_jobs:>8}  {r.gpu_hours:>8.1f}  "
                     f"{r.cpu_hours:>8.1f}")
    lines.append(f"{'total':<{w}}  {plan.total_jobs:>6}  {plan.gpu_jobs:>8}  "
                 f"{plan.gpu_hours:>8.1f}  {plan.cpu_hours:>8.1f}")
    lines.append("gpu-h: sum of runtime x gpu over GPU jobs (requested walltime, an upper "
                 "bound); cpu-h: threads x runtime.")
    lines += [f"note: {n}" for n in plan.notes]
    return "\n".join(lines)


def jobplan_cli(argv: Sequence[str] | None = None) -> int:
    """``textgauge plan-jobs [--json] [--all] [-- SNAKEMAKE ARGS]``."""
    ap = argparse.ArgumentParser(
        prog="textgauge plan-jobs",
        description="Jobs per rule, GPU jobs and GPU-hours of a run (snakemake -n). Pass the "
                    "arguments you run the workflow with, e.g. --configfile my.yaml "
                    "--workflow-profile profiles/slurm.")
    ap.add_argument("--json", action="store_true", help="print the plan as JSON")
    ap.add_argument("--all", action="store_true",
                    help="plan every job, also those whose outputs exist (snakemake -F)")
    ap.add_argument("--directory", "-d", default=None, help="workflow directory (default: .)")
    args, rest = ap.parse_known_args(argv)
    rest = [a for a in rest if a != "--"]
    if args.all:
        rest = ["--forceall", *rest]
    try:
        plan = plan_jobs(rest, cwd=args.directory)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    print(json.dumps(plan.to_dict(), indent=2) if args.json else format_plan(plan))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(jobplan_cli())
