"""Rule serve_model of workflow/rules/serve.smk: a served coder's local server.

The rule is a Snakemake ``service``: it runs beside the predict jobs that consume its output
(the address file) and Snakemake ends it when they are done. Snakemake signals only
``shell:`` jobs (a ``script:`` service would never be stopped), so the rule's shell command
``exec``-s ``python -m textgauge.steps.serve`` with the step's arguments (:func:`main`).

:func:`serve_model` writes the address file at once (``starting``; Snakemake waits only
``--latency-wait`` seconds for a consumer's input), starts the server, waits until it
answers (``ready`` with its ``base_url``, or ``failed`` with the reason and the log's last
lines, which every waiting predict job then raises), and keeps it running until a signal
(SIGTERM from Snakemake when the consumers are done, SIGINT/SIGHUP), until the server dies,
or until the job's parent is gone. The server is stopped on every way out; a SIGKILL of this
process is covered by the server's watcher (:class:`textgauge.inference.serving.ManagedServer`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger("textgauge")


#: seconds the failed state stays readable before the step exits
FAILED_LINGER = 3.0


class _Stop(BaseException):
    """Raised by the signal handler: leave every wait, stop the server."""


def serve_model(*, server: str, settings: Mapping[str, Any], limits: Any, model: str,
                log_file: str, poll: float = 0.5, benchmark: str | None = None) -> None:
    """Serve ``model`` until told to stop; ``server`` is the address file (the service
    output), ``log_file`` the rule's log (the server's own output goes there too)."""
    from textgauge.errors import BackendError, ConfigError
    from textgauge.inference.serving import log_tail, managed_server, write_state
    from textgauge.options import PromptModel, run_settings

    parent = os.getppid()
    started = time.monotonic()
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    Path(log_file).write_text("")  # this run's server log (the server appends to it)
    stopping: list[str] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.append(signal.Signals(signum).name)
        raise _Stop

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)

    srv = None
    try:
        opts = run_settings(settings, limits, name=model)
        if not isinstance(opts, PromptModel) or not opts.serve:
            raise ConfigError(f"models.{model}: rule serve_model serves prompted coders with "
                              "serve: true only.")
        srv = managed_server(opts, model, log_file)
        info = {"model": opts.model, "base_url": srv.base_url, "log": str(log_file),
                "supervisor_pid": os.getpid()}
        write_state(server, "starting", **info)
        srv.start()
        write_state(server, "starting", **info, server_pid=srv.pid)
        seconds = srv.wait_ready()
        write_state(server, "ready", **info, server_pid=srv.pid,
                    startup_seconds=round(seconds, 1))
        log.info("%s: server ready at %s after %.1f s", model, srv.base_url, seconds)
        while True:
            if not srv.alive():
                code = srv.proc.returncode if srv.proc else None
                raise BackendError(f"models.{model}: the server exited (code {code}) while "
                                   f"its predict jobs ran. Last lines of its log {log_file}:\n"
                                   f"{log_tail(log_file)}")
            if os.getppid() != parent:
                srv.note("the job that started the server is gone: stopping it")
                return
            time.sleep(poll)
    except _Stop:
        if srv is not None:  # Snakemake ends a service with SIGTERM when its consumers are done
            why = stopping[0] if stopping else "a signal"
            srv.note(f"{why}: the predict jobs are done; stopping the server" if why == "SIGTERM"
                     else f"{why}: interrupted; stopping the server")
    except (BackendError, ConfigError) as exc:
        write_state(server, "failed", error=str(exc), log=str(log_file))
        with open(log_file, "a", encoding="utf-8") as fh:
            fh.write(f"[textgauge] {exc}\n")
        # a moment for the waiting predict jobs to read the reason: Snakemake deletes the
        # address file of a failed job (they then read the log: wait_for_server)
        time.sleep(FAILED_LINGER)
        raise
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # stopping is not interrupted
        if srv is not None:
            srv.stop()
        if benchmark:
            write_wall_time(benchmark, time.monotonic() - started)


def write_wall_time(path: str, seconds: float) -> None:
    """The server's wall time as a Snakemake benchmark file (columns ``s`` and ``h:m:s``,
    read by :func:`textgauge.planning.runtime.read_benchmark`): Snakemake writes none for
    a service job it terminates, and the wall time is the served coder's GPU time."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    whole = int(seconds)
    hms = f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"
    Path(path).write_text(f"s\th:m:s\n{seconds:.4f}\t{hms}\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m textgauge.steps.serve --model M --server FILE --log FILE --spec JSON``;
    ``--spec`` holds the model's ``settings`` and ``limits`` (the rule's params)."""
    from textgauge.logs import friendly_errors

    ap = argparse.ArgumentParser(prog="python -m textgauge.steps.serve",
                                 description="Rule serve_model: serve a coder until stopped.")
    ap.add_argument("--model", required=True, help="the coder's name (models.<name>)")
    ap.add_argument("--server", required=True, help="the address file (the service output)")
    ap.add_argument("--log", required=True, help="the rule's log file")
    ap.add_argument("--spec", required=True, help='JSON {"settings": {...}, "limits": {...}}')
    ap.add_argument("--benchmark", help="where to write the server's wall time (benchmark form)")
    args = ap.parse_args(argv)
    spec = json.loads(args.spec)
    # messages to stderr only: the log file is the server's (appended to by both)
    with friendly_errors(f"serve {args.model}"):
        serve_model(server=args.server, settings=spec["settings"], limits=spec.get("limits"),
                    model=args.model, log_file=args.log, benchmark=args.benchmark)
    return 0


if __name__ == "__main__":
    sys.exit(main())
