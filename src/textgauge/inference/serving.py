"""A managed local OpenAI-compatible server for a prompted coder (``serve: true``).

A coder with ``backend: openai`` and ``serve: true`` is answered by a server the workflow
starts for it (rule ``serve_model``, workflow/rules/serve.smk): vLLM's OpenAI server on the
coder's ``model`` by default, or any ``serve_command`` that speaks the OpenAI API. The rule's
output is a Snakemake ``service``: the server runs beside the predict jobs that consume it
(one group, so on a cluster one job on one node) and is ended when they are done.

The pieces, used by :mod:`textgauge.steps.serve` (the server side) and
:mod:`textgauge.steps.infer` (each predict job):

* :func:`serve_argv` -- the command for a coder and a port;
* :class:`ManagedServer` -- start it (own process group, output to the rule's log), wait
  until ``GET /v1/models`` answers, stop it (SIGTERM, then SIGKILL of its whole group). A
  small watcher process holds a pipe to the process that started the server: when that
  process dies in any way (SIGKILL included: Snakemake kills a service whose consumers
  failed) the watcher sees end-of-file and stops the server group, so no server outlives
  its job;
* the address file (the service output): ``{"state": "starting" | "ready" | "failed", ...}``,
  written by the server side; :func:`wait_for_server` is how a predict job waits for
  ``ready`` and takes the ``base_url`` (a ``failed`` file stops it at once with the reason).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from textgauge.errors import BackendError, ConfigError

HOST = "127.0.0.1"
PLACEHOLDERS = ("port", "host", "model", "model_path")

#: the watcher: wait for end-of-file on stdin (the starter died or stopped the server), then
#: stop the server's process group (argv[1]): SIGTERM, 15 s grace, SIGKILL
_WATCHER = """
import os, signal, sys, time
pgid = int(sys.argv[1])
sys.stdin.buffer.read()
def gone():
    try:
        os.killpg(pgid, 0)
        return False
    except (ProcessLookupError, PermissionError):
        return True
if not gone():
    os.killpg(pgid, signal.SIGTERM)
    t = time.monotonic()
    while time.monotonic() - t < 15 and not gone():
        time.sleep(0.2)
    if not gone():
        os.killpg(pgid, signal.SIGKILL)
"""


def served_problem(opts: Any, name: str = "model") -> str | None:
    """Why a ``serve: true`` coder cannot be served as configured (a message), or None."""
    where = f"models.{name}"
    if opts.backend != "openai":
        return (f"{where}: serve: true starts an OpenAI-compatible server and talks to it with "
                f"backend: openai, not backend: {opts.backend}. Set backend: openai (the "
                "default server is vLLM's OpenAI server on `model`), or leave serve out to run "
                f"the {opts.backend} engine inside each predict job.")
    if opts.base_url or opts.unix_socket:
        return (f"{where}: serve: true gives the coder the managed server's address; leave "
                "base_url and unix_socket out (or set serve: false to use a server you started "
                "yourself at base_url).")
    if opts.limits.batch_api:
        return (f"{where}: serve: true and limits.batch_api: true do not go together: a local "
                "server answers at once, the batch API is a provider's. Set one of them.")
    cmd = opts.serve_command
    if cmd is not None:
        parts = shlex.split(cmd) if isinstance(cmd, str) else list(cmd)
        if not parts:
            return f"{where}.serve_command is empty: give the command that starts the server."
        if not any("{port}" in p for p in parts) and not opts.limits.serve_port:
            return (f"{where}.serve_command has no {{port}}: put {{port}} where the server "
                    "takes its port (e.g. --port {port}), or set limits.serve_port to the "
                    "port it listens on.")
    return None


def _model_path(model: str) -> str:
    """An alias resolved to its local folder; anything else as written."""
    from textgauge.inference.aliases import resolve

    try:
        return str(resolve(model))
    except Exception:  # noqa: BLE001 - a hub id or a served name: the command gets it as is
        return model


def _flag(key: str, value: Any) -> list[str]:
    name = "--" + key.replace("_", "-")
    if value is True:
        return [name]
    if value is False:
        return ["--no-" + key.replace("_", "-")]
    if isinstance(value, (dict, list)):
        return [name, json.dumps(value)]
    return [name, str(value)]


def serve_argv(opts: Any, port: int, host: str = HOST) -> list[str]:
    """The argv that starts ``opts``' server on ``host:port``.

    ``serve_command`` (a string, split like a shell would, or a list) gets its placeholders
    filled in; without one, vLLM's OpenAI server (:func:`vllm_server.server_command`) serves
    ``model`` under the name ``model``, with the coder's engine settings.
    """
    fields = {"port": port, "host": host, "model": opts.model}
    cmd = opts.serve_command
    if cmd is not None:
        parts = shlex.split(cmd) if isinstance(cmd, str) else [str(p) for p in cmd]
        if any("{model_path}" in p for p in parts):
            fields["model_path"] = _model_path(opts.model)
        try:
            return [p.format(**fields) for p in parts]
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(f"serve_command {cmd!r}: cannot fill in {exc}: the placeholders "
                              f"are {', '.join('{' + k + '}' for k in PLACEHOLDERS)} (write "
                              "other braces twice: {{ }}).") from exc
    from textgauge.inference.backends.vllm_server import server_command

    lim = opts.limits
    extra: list[str] = []
    for key in ("gpu_memory_utilization", "tensor_parallel_size", "max_num_seqs",
                "max_lora_rank", "max_loras"):
        if getattr(lim, key) is not None:
            extra += _flag(key, getattr(lim, key))
    if lim.enable_prefix_caching is False:
        extra += ["--no-enable-prefix-caching"]
    if opts.revision:
        extra += ["--revision", opts.revision]
    if opts.trust_remote_code:
        extra += ["--trust-remote-code"]
    for key, value in (opts.engine_args or {}).items():
        extra += _flag(key, value)
    structured = {"backend": opts.structured_backend or "xgrammar",
                  "disable_any_whitespace": True}
    return server_command(_model_path(opts.model), port, host, served_model_name=opts.model,
                          dtype=None if opts.dtype in (None, "auto") else opts.dtype,
                          max_model_len=lim.max_model_len or 2048,
                          kv_cache_memory_bytes=lim.kv_cache_memory_bytes,
                          enforce_eager=lim.enforce_eager, adapter=opts.adapter,
                          structured=structured, extra_args=extra)


def served_models(base_url: str, api_key: str | None = None, timeout: float = 2.0
                  ) -> list[str] | None:
    """The model ids ``GET {base_url}/models`` lists, or None while nothing answers there."""
    req = urllib.request.Request(base_url.rstrip("/") + "/models")
    if api_key:
        req.add_header("Authorization", f"Bearer {api_key}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - local http
            body = json.loads(r.read().decode("utf-8", errors="replace") or "{}")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    data = body.get("data") if isinstance(body, Mapping) else None
    return [str(m.get("id")) for m in data or [] if isinstance(m, Mapping)]


def log_tail(path: str | Path | None, n: int = 30) -> str:
    if not path or not Path(path).exists():
        return "(no log)"
    lines = Path(path).read_text(errors="replace").splitlines()
    return "\n".join(lines[-n:]) or "(empty log)"


class ManagedServer:
    """An OpenAI-compatible server in its own process group; a context manager.

    ``name`` (the coder) and ``timeout_option`` name the config option in messages.
    """

    def __init__(self, argv: Sequence[str], base_url: str, served_model: str,
                 log_path: str | Path, startup_timeout: float = 600.0, name: str = "model",
                 api_key: str | None = None, env: Mapping[str, str] | None = None):
        self.argv = [str(a) for a in argv]
        self.base_url = base_url
        self.served_model = served_model
        self.log_path = Path(log_path)
        self.startup_timeout = float(startup_timeout)
        self.name = name
        self.api_key = api_key
        self.env = dict(env or {})
        self.proc: subprocess.Popen | None = None
        self.watcher: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._log: Any = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def note(self, message: str) -> None:
        """A line of ours in the server's log (the rule's log)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as fh:
            fh.write(f"[textgauge {time.strftime('%H:%M:%S')}] {message}\n")

    def start(self) -> ManagedServer:
        """Start the command (output appended to the log) and its watcher; returns at once."""
        if self.proc is not None:
            return self
        env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"),
               "VLLM_NO_USAGE_STATS": "1", **self.env}
        self.note(f"starting {self.name}'s server: {shlex.join(self.argv)}")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        try:
            self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        except OSError as exc:
            self._log.close()
            self._log = None
            raise BackendError(f"models.{self.name}: the server command could not be started "
                               f"({exc}): {shlex.join(self.argv)}. Check serve_command (or "
                               "that vllm is installed for the default server).") from exc
        self.watcher = subprocess.Popen([sys.executable, "-c", _WATCHER, str(self.proc.pid)],
                                        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        self.note(f"server pid {self.proc.pid} (its process group), watcher pid "
                  f"{self.watcher.pid}")
        return self

    def wait_ready(self) -> float:
        """Block until ``/v1/models`` answers and lists the served model; the seconds taken.

        Raises :class:`BackendError` (after stopping the server) when the command exits
        first, when the answer does not list the model, or after ``startup_timeout``."""
        assert self.proc is not None, "start() first"
        t0 = time.monotonic()
        while True:
            code = self.proc.poll()
            if code is not None:
                self.stop()
                raise BackendError(
                    f"models.{self.name}: the server exited with code {code} before it "
                    f"answered. Last lines of its log {self.log_path}:\n{log_tail(self.log_path)}")
            ids = served_models(self.base_url, self.api_key)
            if ids is not None:
                if self.served_model not in ids:
                    self.stop()
                    raise BackendError(
                        f"models.{self.name}: the server at {self.base_url} serves {ids}, not "
                        f"{self.served_model!r}: set `model` to the served name (or give the "
                        "server that name, e.g. vLLM's --served-model-name {model}).")
                self.startup_seconds = time.monotonic() - t0
                self.note(f"answering at {self.base_url} after {self.startup_seconds:.1f} s")
                return self.startup_seconds
            if time.monotonic() - t0 > self.startup_timeout:
                self.stop()
                raise BackendError(
                    f"models.{self.name}: the server did not answer {self.base_url}/models "
                    f"within {self.startup_timeout:.0f} s (models.{self.name}.limits."
                    "serve_timeout; raise it when loading the weights takes longer). Last "
                    f"lines of its log {self.log_path}:\n{log_tail(self.log_path)}")
            time.sleep(0.5)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM the server, wait up to ``timeout``, then SIGKILL whatever is left of its
        process group (engine workers included); the watcher is released."""
        from textgauge.inference.backends.vllm_server import stop_pid

        if self.proc is not None:
            pid = self.proc.pid
            stop_pid(pid, timeout)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            try:  # stragglers of the group (workers the server started)
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.note("stopped")
            self.proc = None
        if self.watcher is not None:
            try:
                if self.watcher.stdin:
                    self.watcher.stdin.close()
                self.watcher.wait(timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.watcher = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ManagedServer:
        self.start()
        self.wait_ready()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def managed_server(opts: Any, name: str, log_path: str | Path) -> ManagedServer:
    """The :class:`ManagedServer` of a ``serve: true`` coder (a free port unless
    ``limits.serve_port``)."""
    from textgauge.inference.backends.vllm_server import free_port

    problem = served_problem(opts, name)
    if problem:
        raise ConfigError(problem)
    port = opts.limits.serve_port or free_port(HOST)
    key_env = opts.limits.api_key_env or "OPENAI_API_KEY"
    return ManagedServer(serve_argv(opts, port), f"http://{HOST}:{port}/v1", opts.model,
                         log_path, opts.limits.serve_timeout, name=name,
                         api_key=os.environ.get(key_env))


#: seconds a predict job tolerates a missing address file before it calls the server gone
GONE_AFTER = 2.0


def write_state(path: str | Path, state: str, **info: Any) -> None:
    """The address file (atomic: a reader never sees half a file)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"state": state, **info}, indent=1))
    os.replace(tmp, p)


def read_state(path: str | Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def wait_for_server(path: str | Path, opts: Any, name: str, poll: float = 0.5,
                    grace: float = 60.0) -> str:
    """A predict job's wait for its managed server: the ``base_url`` once the address file
    says ``ready`` and the server answers; a ``failed`` file stops the job with the reason.

    Waits ``limits.serve_timeout`` plus ``grace`` seconds (the server side gives up first
    and says why in the file)."""
    timeout = float(opts.limits.serve_timeout) + grace
    key = os.environ.get(opts.limits.api_key_env or "OPENAI_API_KEY")
    t0 = time.monotonic()
    info: dict[str, Any] = {}
    log_path: str | None = None
    while time.monotonic() - t0 < timeout:
        info = read_state(path)
        log_path = str(info.get("log") or log_path or "") or None
        if not info and not Path(path).exists() and time.monotonic() - t0 > GONE_AFTER:
            # Snakemake deletes the output of a service job that failed: the server side
            # ended before it answered (a file that was never written: the same)
            raise BackendError(
                f"models.{name}: the managed server's job (rule serve_model) ended before "
                f"the server answered. Last lines of its log "
                f"{log_path or 'under results/logs/serve/'}:\n{log_tail(log_path)}")
        if info.get("state") == "failed":
            reason = str(info.get("error") or "(no reason given)")
            reason = reason.removeprefix(f"models.{name}: ")
            raise BackendError(f"models.{name}: the managed server did not start: {reason}")
        if info.get("state") == "ready":
            ids = served_models(info["base_url"], key)
            if ids is not None and opts.model in ids:
                return str(info["base_url"])
        time.sleep(poll)
    raise BackendError(f"models.{name}: the managed server (rule serve_model, address file "
                       f"{path}) was not ready within {timeout:.0f} s (models.{name}.limits."
                       f"serve_timeout + {grace:.0f} s; last state: {info.get('state', 'none')}). See "
                       f"its log {info.get('log') or 'under results/logs/serve/'}.")
