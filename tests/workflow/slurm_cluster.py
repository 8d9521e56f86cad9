"""A real single-node SLURM cluster for tests: install, configure, start, stop.

Used by tests/workflow/test_slurm.py. Needs root (CI runs as root on a fresh Debian 12 machine):
``apt-get install -y slurm-wlm munge`` when ``sbatch`` is missing, then munged, slurmctld and
slurmd are started without systemd, with a slurm.conf/gres.conf written to a temporary folder
(``SLURM_CONF`` points at it). The node advertises one fake GPU (gres ``gpu:1`` backed by
/dev/null) so that GPU requests (``--gpus=1``) are accepted and scheduled.

Only daemons started here are stopped, by the PIDs they wrote; a munged that was already
running is reused and left alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SLURM_PACKAGES = ["slurm-wlm", "munge"]
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
# The jobstep plugin drops every SLURM_* variable (SLURM_CONF too) before its nested `srun`,
# so srun inside a job only finds the configuration at the default path: link it there.
SYSTEM_CONF_DIR = Path("/etc/slurm")
CONF_MARK = "# Single-node test cluster written by tests/workflow/slurm_cluster.py"


class SlurmUnavailable(RuntimeError):
    """SLURM cannot be installed or started here (the reason is the message)."""


def _run(cmd: list[str], timeout: float = 60, check: bool = True,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check,
                          env=env)


def ensure_installed(timeout: float = 240) -> None:
    """Install slurm-wlm + munge with apt when sbatch is missing, else raise SlurmUnavailable."""
    if all(shutil.which(x) for x in ("sbatch", "slurmctld", "slurmd", "munged")):
        return
    if os.geteuid() != 0:
        raise SlurmUnavailable("sbatch is missing and installing slurm-wlm needs root")
    if not shutil.which("apt-get"):
        raise SlurmUnavailable("sbatch is missing and apt-get is unavailable")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        res = _run(["apt-get", "install", "-y", "--no-install-recommends", *SLURM_PACKAGES],
                   timeout=timeout, check=False, env=env)
        if res.returncode != 0:  # stale package lists on a fresh machine
            _run(["apt-get", "update"], timeout=timeout, check=False, env=env)
            res = _run(["apt-get", "install", "-y", "--no-install-recommends",
                        *SLURM_PACKAGES], timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired as exc:
        raise SlurmUnavailable(f"apt-get install {' '.join(SLURM_PACKAGES)} timed out") from exc
    if res.returncode != 0 or not shutil.which("sbatch"):
        raise SlurmUnavailable(f"apt-get install {' '.join(SLURM_PACKAGES)} failed: "
                               f"{(res.stderr or res.stdout).strip()[-500:]}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _real_memory_mb() -> int:
    try:
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
        return max(1000, kb // 1024 - 1024)
    except (OSError, StopIteration, ValueError):
        return 4000


SLURM_CONF = CONF_MARK + """
ClusterName=textgauge-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
LaunchParameters=enable_nss_slurm
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# squeue must still see finished jobs when Snakemake polls (plugin: MinJobAge >= 120)
MinJobAge=300
SchedulerParameters=defer_batch=0
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={mem} Gres=gpu:1 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""

GRES_CONF = "NodeName=localhost Name=gpu File=/dev/null Count=1\n"


@dataclass
class SlurmCluster:
    root: Path
    conf: Path
    pids: dict[str, int] = field(default_factory=dict)
    links: list[Path] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def log_tail(self, n: int = 30) -> str:
        out = []
        for name in ("slurmctld.log", "slurmd.log"):
            p = self.root / name
            if p.exists():
                out.append(f"--- {name}\n" + "\n".join(p.read_text(errors="replace")
                                                         .splitlines()[-n:]))
        return "\n".join(out)


def _munge_works() -> bool:
    if not (shutil.which("munge") and shutil.which("unmunge")):
        return False
    try:
        cred = _run(["munge", "-n"], timeout=10)
        return subprocess.run(["unmunge"], input=cred.stdout, capture_output=True, text=True,
                              timeout=10).returncode == 0
    except (subprocess.SubprocessError, OSError):
        return False


def _read_pid(path: Path, timeout: float = 10) -> int | None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError, ValueError):
            return int(path.read_text().strip())
        time.sleep(0.1)
    return None


def start(root: Path, cpus: int | None = None) -> SlurmCluster:
    """Write the configuration under ``root`` and start munged (if needed), slurmctld, slurmd."""
    if os.geteuid() != 0:
        raise SlurmUnavailable("starting slurmctld/slurmd as configured here needs root")
    root.mkdir(parents=True, exist_ok=True)
    for d in ("state", "spool"):
        (root / d).mkdir(exist_ok=True)
    cpus = cpus or os.cpu_count() or 2
    conf = root / "slurm.conf"
    conf.write_text(SLURM_CONF.format(root=root, cpus=cpus, mem=_real_memory_mb(),
                                      ctld_port=_free_port(), slurmd_port=_free_port()))
    (root / "gres.conf").write_text(GRES_CONF)
    cluster = SlurmCluster(root=root, conf=conf)
    env = cluster.env
    try:
        _link_system_conf(cluster)
        if not _munge_works():
            key = Path("/etc/munge/munge.key")
            if not key.exists():
                _run(["/usr/sbin/mungekey", "--create"], check=False)
                with contextlib.suppress(OSError):
                    shutil.chown(key, "munge", "munge")
            _run(["install", "-d", "-o", "munge", "-g", "munge", "-m", "0755", "/run/munge"])
            _run(["runuser", "-u", "munge", "--", "/usr/sbin/munged"], timeout=20)
            pid = _read_pid(Path("/run/munge/munged.pid"))
            if pid:
                cluster.pids["munged"] = pid
            if not _munge_works():
                raise SlurmUnavailable("munged did not start")
        # -i: ignore saved state from an earlier run in this folder
        _run(["/usr/sbin/slurmctld", "-i", "-f", str(conf)], env=env, timeout=30)
        pid = _read_pid(root / "slurmctld.pid")
        if pid:
            cluster.pids["slurmctld"] = pid
        _run(["/usr/sbin/slurmd", "-N", "localhost", "-f", str(conf)], env=env, timeout=30)
        pid = _read_pid(root / "slurmd.pid")
        if pid:
            cluster.pids["slurmd"] = pid
        wait_idle(cluster)
    except (subprocess.SubprocessError, OSError, SlurmUnavailable) as exc:
        detail = getattr(exc, "stderr", "") or ""
        log = cluster.log_tail()
        stop(cluster)
        raise SlurmUnavailable(f"SLURM did not start: {exc} {detail}\n{log}") from exc
    return cluster


def _ours(p: Path) -> bool:
    """A file at the system path that a test wrote (possibly left by an interrupted run)."""
    if p.is_symlink():
        target = Path(os.readlink(p))
        return not target.exists() or (target.name in ("slurm.conf", "gres.conf") and
                                       CONF_MARK in (target.parent / "slurm.conf")
                                       .read_text(errors="replace"))
    return False


def _link_system_conf(cluster: SlurmCluster) -> None:
    SYSTEM_CONF_DIR.mkdir(parents=True, exist_ok=True)
    for name in ("slurm.conf", "gres.conf"):
        dst = SYSTEM_CONF_DIR / name
        if dst.exists() or dst.is_symlink():
            if not _ours(dst):
                raise SlurmUnavailable(f"{dst} exists (a real SLURM configuration?): the test "
                                       "cluster does not overwrite it")
            dst.unlink()
        dst.symlink_to(cluster.root / name)
        cluster.links.append(dst)


def wait_idle(cluster: SlurmCluster, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    state = ""
    while time.monotonic() < end:
        res = _run(["sinfo", "-h", "-N", "-o", "%T"], env=cluster.env, check=False, timeout=10)
        state = res.stdout.strip()
        if state.startswith(("idle", "mixed", "allocated")):
            return
        if state.startswith(("drain", "down")):
            _run(["scontrol", "update", "NodeName=localhost", "State=RESUME"], env=cluster.env,
                 check=False, timeout=10)
        time.sleep(0.5)
    raise SlurmUnavailable(f"node not idle after {timeout:.0f}s (state {state!r})")


def stop(cluster: SlurmCluster, timeout: float = 15) -> None:
    """Stop the daemons this module started (by PID): slurmd, slurmctld, then munged."""
    for name in ("slurmd", "slurmctld", "munged"):
        pid = cluster.pids.pop(name, None)
        if not pid:
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            end = time.monotonic() + timeout
            while time.monotonic() < end:
                os.kill(pid, 0)
                time.sleep(0.1)
            os.kill(pid, signal.SIGKILL)
    for link in cluster.links:
        with contextlib.suppress(OSError):
            if link.is_symlink() and Path(os.readlink(link)).parent == cluster.root:
                link.unlink()
    cluster.links.clear()


@contextlib.contextmanager
def running_cluster(root: Path) -> Iterator[SlurmCluster]:
    ensure_installed()
    cluster = start(root)
    try:
        yield cluster
    finally:
        stop(cluster)


# ---------------------------------------------------------------- workflow run folders
REPO = Path(__file__).resolve().parents[2]
LINKED = ["Snakefile", "workflow", "scripts", "prompts", "resources", "config.yaml", "config",
          "envs"]


def workflow_dir(tmp: Path, n_texts: int = 600, n_labelled: int = 240) -> tuple[Path, Path]:
    """A run folder (links to the workflow files; results land in it) and a config file that
    points the tiny config/test.yaml at a smaller generated SYNTHETIC example (fast on 2 CPUs).

    Use: snakemake --configfile config/test.yaml <returned config> (run in the folder).
    """
    run = tmp / "run"
    run.mkdir(parents=True)
    for name in LINKED:
        (run / name).symlink_to(REPO / name)
    ex = tmp / "example"
    from textgauge.data.example import ExampleSpec, write_example

    paths = write_example(str(ex), ExampleSpec(n_texts=n_texts, n_labelled=n_labelled,
                                               seed=20261129))
    cfg = {"corpus": {"path": str(paths["corpus"])},
           "training": {"labelled": str(paths["labelled"])},
           "gold": {"simulate": {"truth": str(paths["truth"]), "coders": str(paths["coders"]),
                                 "adjudicator_accuracy": 0.95}},
           # the SLURM test is about job submission: the audit jobs add nothing new there
           "audits": {"enabled": False, "positional_orders": [], "ensemble": False,
                      "revalidation_size": 0}}
    import yaml

    small = tmp / "small.yaml"
    small.write_text(yaml.safe_dump(cfg))
    return run, small
