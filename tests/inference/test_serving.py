"""textgauge.inference.serving and the serve_model step (textgauge.steps.serve): a managed
OpenAI-compatible server started, waited for and stopped, with a tiny fake server
(tests/fake_openai_server.py) so that no vLLM is needed; the failure paths (the command exits
early, never answers, serves another name) and the ways the server is stopped (SIGTERM, the
step killed with SIGKILL: the watcher stops the server)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from textgauge.errors import BackendError, ConfigError
from textgauge.inference.serving import (
    ManagedServer,
    managed_server,
    read_state,
    serve_argv,
    served_models,
    served_problem,
    wait_for_server,
    write_state,
)
from textgauge.options import PromptModel
from textgauge.planning.runtime import read_benchmark
from textgauge.steps.infer import served_url

FAKE = Path(__file__).resolve().parents[1] / "fake_openai_server.py"
ROOT = Path(__file__).resolve().parents[2]


def fake_command(*extra: str) -> list[str]:
    return [sys.executable, str(FAKE), "--port", "{port}", "--model", "{model}", *extra]


def coder(**kw) -> PromptModel:
    d = {"kind": "prompt", "backend": "openai", "model": "fake-model", "prompt": "p.jinja",
         "serve": True, "serve_command": fake_command(),
         "limits": {"serve_timeout": 20.0}}
    limits = kw.pop("limits", {})
    d.update(kw)
    d["limits"] = {**d["limits"], **limits}
    return PromptModel.from_dict(d, "models.fake")


def gone(pid: int, within: float = 20.0) -> bool:
    """True once ``pid`` no longer runs (a zombie of ours counts as gone)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return True
        except ChildProcessError:
            stat = Path(f"/proc/{pid}/stat")
            if stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z":
                return True
        time.sleep(0.1)
    return False


def logged_pid(log: Path, what: str = "server pid") -> int:
    line = next(ln for ln in log.read_text().splitlines() if what in ln)
    return int(line.split(what)[1].split()[0])


# ------------------------------------------------------------------ options and commands
def test_command_placeholders_and_the_default_vllm_command():
    opts = coder(serve_command="my-server --port {port} --name {model} --host {host}")
    assert serve_argv(opts, 8123) == ["my-server", "--port", "8123", "--name", "fake-model",
                                      "--host", "127.0.0.1"]
    with pytest.raises(ConfigError, match=r"\{port\}, \{host\}, \{model\}, \{model_path\}"):
        serve_argv(coder(serve_command="srv --port {port} --gpu {gpu}"), 1)
    vllm = serve_argv(coder(serve_command=None, model="some/hub-model", dtype="float32",
                            limits={"max_model_len": 512, "gpu_memory_utilization": 0.8},
                            engine_args={"max_num_batched_tokens": 4096}), 9001)
    assert vllm[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(vllm)
    for part in ("--model some/hub-model", "--port 9001", "--served-model-name some/hub-model",
                 "--dtype float32", "--max-model-len 512", "--gpu-memory-utilization 0.8",
                 "--max-num-batched-tokens 4096", "--host 127.0.0.1"):
        assert part in joined


def test_served_coders_are_refused_where_serving_cannot_work():
    assert served_problem(coder(), "fake") is None
    assert "backend: openai" in served_problem(coder(backend="vllm"), "fake")
    assert "leave base_url" in served_problem(coder(base_url="http://x/v1"), "fake")
    assert "no {port}" in served_problem(coder(serve_command="srv --model m"), "fake")
    assert served_problem(coder(serve_command="srv", limits={"serve_port": 8000}), "fake") is None
    assert "batch_api" in served_problem(coder(limits={"batch_api": True}), "fake")


def test_the_managed_address_is_not_an_answer_setting():
    """A new port every start must not change the checkpoint fingerprint or rerun anything;
    the backend still gets the address."""
    opts = coder()
    before = opts.answer_settings()
    opts.base_url = "http://127.0.0.1:4242/v1"
    assert opts.answer_settings() == before and "base_url" not in before
    assert opts.backend_config()["base_url"] == "http://127.0.0.1:4242/v1"
    plain = coder(serve=False, base_url="http://127.0.0.1:1/v1")
    assert plain.answer_settings()["base_url"] == "http://127.0.0.1:1/v1"


# ------------------------------------------------------------------ start, wait, stop
def test_start_wait_answer_stop(tmp_path):
    log = tmp_path / "serve.log"
    requests = tmp_path / "requests.jsonl"
    srv = managed_server(coder(serve_command=fake_command("--requests", str(requests))),
                         "fake", log)
    with srv:
        assert srv.startup_seconds is not None and srv.alive()
        assert served_models(srv.base_url) == ["fake-model"]
        from textgauge.inference.backends.base import PromptRequest
        from textgauge.inference.backends.registry import make_backend

        opts = coder()
        opts.base_url = srv.base_url
        out = []
        make_backend(opts.backend_config()).classify(
            [PromptRequest(id="a", messages=[{"role": "user", "content": "hello"}],
                           labels=["x", "y"])], out.extend)
        assert out[0].status == "ok" and out[0].label in {"x", "y"}
        pid = srv.pid
    assert gone(pid) and srv.proc is None
    assert len(requests.read_text().splitlines()) == 1
    text = log.read_text()
    assert "fake server for fake-model" in text and "answering at" in text and "stopped" in text


def test_command_that_exits_early_names_its_code_and_log_tail(tmp_path):
    log = tmp_path / "serve.log"
    srv = managed_server(coder(serve_command=fake_command("--exit-code", "3")), "fake", log)
    with pytest.raises(BackendError) as err:
        srv.start().wait_ready()
    msg = str(err.value)
    assert "exited with code 3 before it answered" in msg
    assert "cannot load the weights (on purpose)" in msg and str(log) in msg


def test_a_server_that_never_answers_times_out_naming_the_option(tmp_path):
    srv = managed_server(coder(serve_command=fake_command("--silent"),
                               limits={"serve_timeout": 1.5}), "fake", tmp_path / "s.log")
    srv.start()
    pid = srv.pid
    with pytest.raises(BackendError, match=r"within 2 s \(models\.fake\.limits\.serve_timeout"):
        srv.wait_ready()
    assert gone(pid)


def test_a_server_under_another_name_is_refused(tmp_path):
    cmd = [sys.executable, str(FAKE), "--port", "{port}", "--model", "other-name"]
    srv = managed_server(coder(serve_command=cmd), "fake", tmp_path / "s.log")
    with pytest.raises(BackendError, match=r"serves \['other-name'\], not 'fake-model'"):
        srv.start().wait_ready()


def test_a_command_that_does_not_exist(tmp_path):
    srv = ManagedServer(["/nonexistent/server-binary"], "http://127.0.0.1:1/v1", "m",
                        tmp_path / "s.log", name="fake")
    with pytest.raises(BackendError, match="could not be started"):
        srv.start()


# ------------------------------------------------------------------ the step, as the rule runs it
def start_step(tmp_path: Path, opts_extra: dict | None = None) -> tuple[subprocess.Popen, Path, Path]:
    server, log = tmp_path / "serve/fake.json", tmp_path / "logs/serve/fake.log"
    settings = {k: v for k, v in coder(**(opts_extra or {})).to_dict().items()
                if k not in ("limits", "plan")}
    limits = {"serve_timeout": 20.0, **((opts_extra or {}).get("limits") or {})}
    settings.pop("limits", None)
    spec = json.dumps({"settings": settings, "limits": limits})
    proc = subprocess.Popen([sys.executable, "-m", "textgauge.steps.serve", "--model", "fake",
                             "--server", str(server), "--log", str(log), "--spec", spec,
                             "--benchmark", str(tmp_path / "benchmarks/serve_model/fake.tsv")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return proc, server, log


def wait_state(path: Path, state: str, within: float = 30.0) -> dict:
    t0 = time.monotonic()
    while time.monotonic() - t0 < within:
        info = read_state(path)
        if info.get("state") == state:
            return info
        time.sleep(0.1)
    raise AssertionError(f"{path}: no {state!r} state after {within} s: {read_state(path)}")


def test_step_serves_until_sigterm_and_the_predict_side_gets_the_address(tmp_path):
    proc, server, log = start_step(tmp_path)
    info = wait_state(server, "ready")
    opts = coder()
    assert served_url(opts, "fake", str(server)) == info["base_url"]
    assert info["startup_seconds"] >= 0 and info["log"] == str(log)
    pid = info["server_pid"]
    proc.send_signal(signal.SIGTERM)  # what Snakemake sends when the consumers are done
    assert proc.wait(timeout=30) == 0
    assert gone(pid)
    assert "SIGTERM: the predict jobs are done; stopping the server" in log.read_text()
    # the server's wall time in benchmark form (Snakemake writes none for a service job)
    wall = read_benchmark(tmp_path / "benchmarks/serve_model/fake.tsv")
    assert wall is not None and wall["s"] >= info["startup_seconds"]


def test_step_killed_with_sigkill_leaves_no_server(tmp_path):
    """Snakemake kills a service whose consumer failed: the watcher stops the server."""
    proc, server, log = start_step(tmp_path)
    pid = wait_state(server, "ready")["server_pid"]
    watcher = logged_pid(log, "watcher pid")
    proc.kill()
    proc.wait(timeout=10)
    assert gone(pid, within=30), "the server outlived the killed step"
    assert gone(watcher, within=10)


def test_step_failure_is_written_for_the_predict_jobs(tmp_path):
    proc, server, log = start_step(tmp_path, {"serve_command": fake_command("--exit-code", "7")})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1, out
    info = read_state(server)
    assert info["state"] == "failed" and "exited with code 7" in info["error"]
    assert "textgauge could not serve fake" in out
    assert "exited with code 7" in log.read_text()
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="the managed server did not start: .*code 7"):
        wait_for_server(server, coder(), "fake")
    assert time.monotonic() - t0 < 5  # at once, not after serve_timeout


def test_an_address_file_deleted_with_its_failed_job_stops_the_predict_side(tmp_path):
    """Snakemake deletes the output of a service job that failed: a predict job that finds
    no address file says the server's job ended and shows its log, not after serve_timeout
    (seen in CI: the predict job waited the whole timeout)."""
    log = tmp_path / "serve.log"
    log.write_text("[textgauge] the server exited with code 3 while starting\n")
    server = tmp_path / "fake.json"
    write_state(server, "starting", log=str(log))
    threading.Timer(0.3, server.unlink).start()
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="ended before the server answered(.|\n)*code 3"):
        wait_for_server(server, coder(), "fake", poll=0.05)
    assert time.monotonic() - t0 < 10  # serve_timeout is 600 s


def test_predict_side_times_out_naming_the_option(tmp_path):
    server = tmp_path / "fake.json"
    write_state(server, "starting")
    with pytest.raises(BackendError, match=r"serve_timeout \+ 0 s; last state: starting"):
        wait_for_server(server, coder(limits={"serve_timeout": 0.3}), "fake", poll=0.05,
                        grace=0.1)
    with pytest.raises(ConfigError, match="rule serve_model"):
        served_url(coder(), "fake", None)


def test_the_cost_plan_counts_a_served_coder_as_a_local_server():
    from textgauge.planning.cost import engine_of

    assert engine_of(coder()) == "local-server"


def test_the_servers_wall_time_is_the_served_coders_gpu_time():
    """serve_model's benchmark counts as GPU-hours; its predict jobs (clients) do not."""
    from textgauge.planning.spend import benchmark_summary

    recs = [{"path": "results/benchmarks/serve_model/served.tsv", "s": 3600.0, "cpu_time": 1},
            {"path": "results/benchmarks/predict/served/gold.tsv", "s": 3000.0, "cpu_time": 1}]
    out = benchmark_summary(recs, {"served": 0})
    assert out["rules"]["serve_model"]["gpu_hours"] == 1.0
    assert out["rules"]["predict_gold"]["gpu_hours"] == 0.0
    assert out["models"]["served"]["gpu_hours"] == 1.0
